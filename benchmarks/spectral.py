"""Spectral analysis benchmark (issues #5 and #13): one table from one run.

Run: python benchmarks/spectral.py [--full] [--quick]

Rows, each next to a baseline measured in the same run:
- speed on a 256×256×2048 EELS SI: maps of 3 edges (least squares, two-area) against a per-pixel
  ``numpy.polyfit`` loop, PCA against scikit-learn's randomized PCA, accuracy against the truth;
- EELS (benchmarks/_spectral_eels.py): default windows on spectra exSpy made or ships, O K and
  Mn L2,3 integrals against exSpy's full power-law fit over clean windows (target 2 %);
  hydrogenic cross-sections and atomic ratios against exSpy (target 5 %); ZLP alignment, t/λ,
  Fourier-log against exSpy; maps of a 512×512×2048 float32 raw file (2 GiB) under a 2 GiB
  address-space limit against the in-memory result and exSpy's lazy ``remove_background``
  (skipped with ``--quick``);
- EDS (benchmarks/_spectral_eds.py, the EDS helper's rows; out-of-core at 512×512×2048 with
  ``--full``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from napari_cryomat.core import spectral as sp
from napari_cryomat.core.synthetic import spectral as syn

SHAPE = (256, 256)
SIZE = 2048
ELEMENTS = ("C", "N", "O")
BASELINE_PIXELS = 2048


CPU = {}


def timed(fn, *args, **kwargs):
    """Wall-clock seconds (reported); process CPU seconds are kept in CPU[fn name]."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    wall = time.perf_counter() - t0
    CPU[getattr(fn, "__name__", str(fn))] = time.process_time() - c0
    return out, wall


def truth_integral(d, el, window):
    sl = sp.window_slice(d["energy"], window)
    shape = syn.eels_edge_shape(d["energy"], d["onsets"][el], exponent=d["edge_exponent"], width=d["edge_width"])
    return d["truth_amplitude"][el] * shape[sl].sum()


def accuracy(d, maps):
    out = {}
    for el, m in maps.items():
        t = truth_integral(d, el, m.windows["integration"])
        out[el] = (np.corrcoef(t.ravel(), m.data.ravel())[0, 1], np.linalg.norm(m.data - t) / np.linalg.norm(t))
    return out


def baseline_maps(si, energy, windows, n_pixels):
    """Per-pixel loop: numpy.polyfit on log-log, then subtract and integrate (float64)."""
    flat = si.reshape(-1, si.shape[-1])[:n_pixels]
    for el, (bgw, intw) in windows.items():
        bs = sp.window_slice(energy, bgw)
        isl = sp.window_slice(energy, intw)
        lx = np.log(energy[bs])
        for spec in flat:
            slope, icpt = np.polyfit(lx, np.log(np.maximum(spec[bs].astype(np.float64), 0.5)), 1)
            _ = spec[isl].sum() - np.sum(np.exp(icpt) * energy[isl] ** slope)


def main():
    global LOAD0
    LOAD0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    t0 = time.perf_counter()
    # 5e4 counts per 0.25 eV channel at 200 eV: ~2600 at the O K edge, a realistic core-loss dose
    d = syn.eels_spectrum_image(
        shape=SHAPE, offset=200.0, scale=0.25, size=SIZE, elements=ELEMENTS, counts_at_offset=5e4, seed=3
    )
    t_gen = time.perf_counter() - t0
    si, energy = d["si"], d["energy"]

    # warm-up on a small block (imports, BLAS threads), not timed
    sp.eels_maps(si[:8, :8], energy=energy, elements=ELEMENTS)

    maps_lsq, t_lsq = timed(sp.eels_maps, si, energy=energy, elements=ELEMENTS, method="lsq")
    cpu_lsq = CPU["eels_maps"]
    maps_2a, t_2a = timed(sp.eels_maps, si, energy=energy, elements=ELEMENTS, method="two_area")
    windows = {el: (m.windows["background"], m.windows["integration"]) for el, m in maps_lsq.items()}
    _, t_base = timed(baseline_maps, si, energy, windows, BASELINE_PIXELS)
    t_base_all = t_base * (SHAPE[0] * SHAPE[1]) / BASELINE_PIXELS

    res, t_pca = timed(sp.pca, si, poisson=True, max_components=32)
    n = sp.suggest_components(res.explained_variance)
    den, t_rec = timed(sp.pca_reconstruct, res, n_components=n)
    maps_den = sp.eels_maps(den, energy=energy, elements=ELEMENTS, windows=windows)
    del den

    from sklearn.decomposition import PCA

    def sk():
        return PCA(n_components=32, svd_solver="randomized", random_state=0).fit(si.reshape(-1, SIZE))

    _, t_sk = timed(sk)
    cpu_sk = CPU["sk"]

    acc_lsq, acc_2a, acc_den = accuracy(d, maps_lsq), accuracy(d, maps_2a), accuracy(d, maps_den)

    mb = si.nbytes / 2**20
    rows.append(("EELS maps, 3 edges, least squares", f"{t_lsq:.2f} (CPU {cpu_lsq:.2f})", f"{t_base_all:.1f} (polyfit loop, {BASELINE_PIXELS} px scaled)", "≤ 2 s", f"{t_base_all / t_lsq:.0f}×"))
    rows.append(("EELS maps, 3 edges, two-area", f"{t_2a:.2f}", "same baseline", "≤ 2 s", f"{t_base_all / t_2a:.0f}×"))
    rows.append(("PCA (Poisson-normalised randomised SVD, 32+16)", f"{t_pca:.2f} (CPU {CPU['pca']:.2f})", f"{t_sk:.2f} (CPU {cpu_sk:.2f}; sklearn randomized PCA, 32)", "≤ 10 s", f"{t_sk / t_pca:.1f}×"))
    rows.append((f"PCA reconstruction ({n} components)", f"{t_rec:.2f}", "-", "-", "-"))
    for el in ELEMENTS:
        c1, r1 = acc_lsq[el]
        c2, r2 = acc_2a[el]
        c3, r3 = acc_den[el]
        rows.append((f"{el} K map vs truth: corr / rel.err", f"lsq {c1:.3f} / {r1:.3f}", f"two-area {c2:.3f} / {r2:.3f}", "-", f"PCA({n}) {c3:.3f} / {r3:.3f}"))
    sys.path.insert(0, str(Path(__file__).parent))
    import _spectral_eels

    _spectral_eels._quiet()
    rows.append(("— EELS: windows, quantification, low loss (exSpy 0.3.2 as baseline) —", "", "", "", ""))
    rows += _spectral_eels.window_rows() + _spectral_eels.quant_rows() + _spectral_eels.lowloss_rows()
    if "--quick" not in sys.argv:
        rows += _spectral_eels.out_of_core_rows()
    rows.append(("— EDS (benchmarks/_spectral_eds.py) —", "", "", "", ""))
    try:
        import _spectral_eds

        rows += _spectral_eds.row_tuples(full="--full" in sys.argv)
    except Exception as exc:  # noqa: BLE001 - the EELS table still prints
        rows.append(("EDS rows", "failed", "-", "-", f"{type(exc).__name__}: {exc}"[:120]))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# napari-cryomat spectral benchmark: SI {SHAPE[0]}×{SHAPE[1]}×{SIZE} float32 ({mb:.0f} MB), "
          f"{os.cpu_count()} CPUs visible, load average {LOAD0:.1f} at start / {load:.1f} at end, "
          f"synthetic data generated in {t_gen:.1f} s. Times are wall-clock seconds (process CPU seconds in brackets); "
          "the machine is shared, so times are pessimistic.")
    head = ("task", "napari-cryomat (s)", "baseline, same run (s)", "target", "speed-up / accuracy")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
