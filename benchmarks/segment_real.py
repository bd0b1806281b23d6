"""segment_particles with its defaults where the noise is a real detector's, not white (issue #14).

    python benchmarks/segment_real.py                      # the coloured-noise suite, seeds 1-100, and the corpus files
    python benchmarks/segment_real.py --seeds=5001-5100    # another draw of the suite
    python benchmarks/segment_real.py --no-corpus          # the suite only

Rows:

- **coloured-noise suite**: ``make_particle_field`` (round, ellipse, touching, blob; Ø 5-40 px, contrast 0.1-0.5
  log-uniform, dose 20-2000 counts/px, a ramp and an undulation) with its noise coloured (``noise_falloff``: power
  falling 1-50x from zero frequency to 0.5 cycles/px, log-uniform; ``noise_shape`` Gaussian or Lorentzian); every 5th
  seed an EMPTY field (no particles), where every object is false. Mean F1 of the fields (IoU > 0.5), and the mean
  count of objects on the empty fields. Seeds 1-50 were read image by image in session 23, 5001-5100 were its decision
  draw (notes/handoff_realnoise23.md). Since session 25 the particles pass through the same transfer function as the
  noise (``signal_mtf=True``: a detector's MTF blurs what it records; before, the noise alone was coloured and
  whitening sharpened the particles' unblurred edges into rings: seed 37 F1 0.96 -> 0.07 with the true Lorentzian
  whitening). Seeds 5201 and up are fresh for this generator.
- **corpus** (needs the test corpus, ``CRYOMAT_CORPUS_DIR``): mrcfile's ``fei-extended.mrc`` (dark protein particles
  of ~100 Å, white noise; as napari shows it, flipped in Y), ``epu2.9_example.mrc`` (noise power falling 47x to
  Nyquist; a dense dark texture at 15-60 Å), hyperspy's ``TVIPS_bin4.tif`` (row stripes, no particles): objects,
  their median diameter, the settings and the caution.

Each row beside its baseline from the same run: the same defaults with the noise-colour reading switched off
(``COLOURED_ABOVE = STRIPES_ABOVE = inf``: white noise assumed, the code before session 23).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from napari_cryomat.core import _particle_blobs as _pb
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.segment import segment_particles
from napari_cryomat.core.synthetic.particles import make_particle_field

KINDS = ("round", "ellipse", "touching", "blob", "empty")


def coloured_case(seed: int) -> tuple[str, dict]:
    """(kind, keywords of make_particle_field) of suite field ``seed``."""
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % 5]
    kw = dict(diameter=float(np.exp(rng.uniform(np.log(5), np.log(40)))),
              shape_kind="round" if kind == "empty" else kind, polarity=("dark", "bright")[int(rng.integers(2))],
              contrast=float(np.exp(rng.uniform(np.log(0.1), np.log(0.5)))),
              dose=float(np.exp(rng.uniform(np.log(20), np.log(2000)))), gradient=float(rng.uniform(0, 0.3)),
              undulation=float(rng.uniform(0, 0.1)), noise_falloff=float(np.exp(rng.uniform(0, np.log(50)))),
              noise_shape=("gaussian", "lorentzian")[int(rng.integers(2))], seed=int(rng.integers(10**6)),
              signal_mtf=True)
    if kind == "empty":
        kw.update(coverage=0.0)
    return kind, kw


@contextmanager
def colour_reading(on: bool):
    """The defaults (on) or the baseline: the same code with the noise-colour reading switched off (white noise
    assumed, as before session 23)."""
    saved = _pb.COLOURED_ABOVE, _pb.STRIPES_ABOVE
    if not on:
        _pb.COLOURED_ABOVE = _pb.STRIPES_ABOVE = float("inf")
    try:
        yield
    finally:
        _pb.COLOURED_ABOVE, _pb.STRIPES_ABOVE = saved


ARMS = (("defaults", True), ("baseline: colour reading off", False))


def bench_suite(first: int, last: int):
    f1s = {arm: [] for arm, _ in ARMS}
    false = {arm: [] for arm, _ in ARMS}
    for seed in range(first, last + 1):
        kind, kw = coloured_case(seed)
        image, truth, _ = make_particle_field(**kw)
        for arm, on in ARMS:
            with colour_reading(on):
                labels = segment_particles(image, pixel_size=1.0)
            if kind == "empty":
                false[arm].append(int(labels.max()))
            else:
                f1s[arm].append(match_labels(labels, truth)["f1"])
    print(f"| coloured-noise suite, seeds {first}-{last} | F1 mean / min ({len(f1s['defaults'])} fields) | objects on "
          f"empty fields mean / max ({len(false['defaults'])}) |")
    print("|---|---|---|")
    for arm, _ in ARMS:
        fields = f"{np.mean(f1s[arm]):.3f} / {np.min(f1s[arm]):.3f}" if f1s[arm] else "-"
        empty = f"{np.mean(false[arm]):.1f} / {max(false[arm])}" if false[arm] else "-"
        print(f"| {arm} | {fields} | {empty} |")


def _corpus_images():
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "io"))
    from corpus import ensure_corpus

    root, why = ensure_corpus()
    if root is None:
        print(f"corpus: skipped ({why})")
        return
    import mrcfile
    import tifffile

    for name in ("fei-extended.mrc", "epu2.9_example.mrc", "TVIPS_bin4.tif"):
        path = next(root.rglob(name), None)
        if path is None:
            print(f"{name}: not in the corpus")
            continue
        if name.endswith(".mrc"):
            with mrcfile.open(path, permissive=True) as mrc:
                image, pixel_size = np.asarray(mrc.data, np.float32).squeeze(), float(mrc.voxel_size.x)
        else:
            image, pixel_size = tifffile.imread(path).astype(np.float32), 1.0
        if name == "fei-extended.mrc":
            image = image[::-1]  # as napari shows it
        yield name, image, pixel_size


def bench_corpus():
    print("| file | arm | objects | median Ø | time | settings | caution |")
    print("|---|---|---|---|---|---|---|")
    for name, image, pixel_size in _corpus_images():
        for arm, on in ARMS:
            t = time.perf_counter()
            with colour_reading(on):
                labels, settings = segment_particles(image, pixel_size=pixel_size, return_settings=True)
            n = int(labels.max())
            areas = np.bincount(labels.ravel())[1:]
            diameter = 2 * np.sqrt(np.median(areas) / np.pi) * pixel_size if n else 0.0
            print(f"| {name} | {arm} | {n} | {diameter:.0f} Å | {time.perf_counter() - t:.0f} s | "
                  f"{settings.describe()} | {settings.caution() or '-'} |")


def main():
    spec = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--seeds=")), "1-100")
    first, last = (int(v) for v in spec.split("-"))
    bench_suite(first, last)
    if "--no-corpus" not in sys.argv:
        bench_corpus()


if __name__ == "__main__":
    main()
