"""Beam-damage benchmark (issue #16): critical dose recovered, FRPR thresholds, speed. One run, one table.

    python benchmarks/dose.py            # the table
    python benchmarks/dose.py --quick    # fewer series

Critical dose: randomised synthetic dose series (core.synthetic.dose.beam_damage_series), one per
seed, drawn over lattice (hexagonal, square), period 5-8 Å, critical dose of the finest shell
5-40 e/Å², dose per frame 0.5-4 e/Å², 24-60 frames, frame 256², grain 30-60 % of the field.
Each Bragg shell's fitted Dc is compared with the truth: "within 10 %" is the fraction of shells
within 10 % of it, "cover" the fraction whose 95 % interval holds it. Baseline in the same run:
``core.fourier.bragg_intensity_series`` (median annulus background, unweighted fit) on the same
spots, one shell at a time.

FRPR: two identical noisy images (must be 0°), and 40 pairs of independent Poisson images: the mean
residual over rings (90° expected) and the observed spread against the predicted one
(``RingComparison.random_spread``).

Speed: ``dose_series`` on 40 frames of 1024² next to the baseline pair (``drift.frc_vs_dose`` for the
FRC, ``fourier.bragg_intensity_series`` for the spots) on the same frames.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_cryomat.core import dose
from napari_cryomat.core.drift import frc_vs_dose
from napari_cryomat.core.fourier import bragg_intensity_series
from napari_cryomat.core.synthetic.dose import beam_damage_series


def draw_case(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    return dict(
        shape=(256, 256),
        n_frames=int(rng.integers(24, 61)),
        lattice=str(rng.choice(["hexagonal", "square"])),
        period=float(rng.uniform(5.0, 8.0)),
        critical_dose=float(rng.uniform(5.0, 40.0)),
        dose_per_frame=float(rng.uniform(0.5, 4.0)),
        grain_fraction=float(rng.uniform(0.3, 0.6)),
        seed=seed,
    )


def baseline_dc(sample, g: np.ndarray) -> float | None:
    res = bragg_intensity_series(sample.frames, g, pixel_size=sample.pixel_size, dose_per_frame=sample.dose_per_frame)
    return res.critical_dose


def critical_dose_rows(n_cases: int) -> list[str]:
    ours, base, cover, span, missing = [], [], [], [], 0
    for seed in range(n_cases):
        case = draw_case(seed)
        s = beam_damage_series(**case)
        r = dose.dose_series(s.frames, pixel_size=s.pixel_size, dose_per_frame=s.dose_per_frame)
        found = {round(sh.d_spacing, 1) for sh in r.shells}
        missing += sum(round(t.d_spacing, 1) not in found for t in s.shells)
        for shell in r.shells:
            truth = min(s.shells, key=lambda t: abs(t.d_spacing - shell.d_spacing))
            if abs(truth.d_spacing - shell.d_spacing) > 0.05 * truth.d_spacing or shell.fit is None:
                continue
            ours.append(shell.fit.dc / truth.critical_dose - 1)
            cover.append(shell.fit.dc_low <= truth.critical_dose <= shell.fit.dc_high)
            b = baseline_dc(s, shell.g)
            base.append(np.nan if b is None else b / truth.critical_dose - 1)
            span.append(s.frame_dose[-1] / truth.critical_dose)
    ours, base, cover, span = np.array(ours), np.array(base), np.array(cover), np.array(span)

    def row(name, err, sel, extra=""):
        ok = np.isfinite(err) & sel
        if not ok.any():
            return f"| {name:<44} | {0:>6} | — | — | — | — |"
        return (f"| {name:<44} | {ok.sum():>6} | {np.mean(np.abs(err[ok]) <= 0.10):>9.0%} | "
                f"{np.median(np.abs(err[ok])):>10.1%} | {np.median(err[ok]):>+12.1%} | {extra:>10} |")

    lines = [
        f"Critical dose on {n_cases} random series ({missing} true shells not found); span = last dose / true Dc (2: the decay followed to 1/e²):",
        "| method, series                               | shells | ≤10 % off | median err | median signed | 95 % cover |",
        "|----------------------------------------------|--------|-----------|------------|---------------|------------|",
    ]
    for label, sel in (("span >= 2", span >= 2), ("span 1-2", (span >= 1) & (span < 2)),
                       ("span < 1", span < 1), ("all", span > 0)):
        lines.append(row(f"dose_series, {label}", ours, sel, f"{np.mean(cover[sel]):.0%}" if sel.any() else "—"))
        lines.append(row(f"baseline bragg_intensity_series, {label}", base, sel, "—"))
    return lines


def frpr_rows() -> list[str]:
    rng = np.random.default_rng(7)
    a = rng.poisson(3.0, (512, 512)).astype(np.float32)
    same = dose.ring_comparison(a, a).frpr
    z, means = [], []
    for _ in range(40):
        rc = dose.ring_comparison(rng.poisson(3.0, (256, 256)), rng.poisson(3.0, (256, 256)))
        z.append((rc.frpr - 90.0) / rc.random_spread)
        means.append(rc.frpr.mean())
    z = np.concatenate(z)
    return [
        "FRPR thresholds:",
        "| pair                         | mean residual | observed / predicted spread |",
        "|------------------------------|---------------|-----------------------------|",
        f"| identical images             | {same.max():>12.2e}° | — |",
        f"| independent noise (40 pairs) | {np.mean(means):>12.2f}° | {z.std():.3f} (1 = as predicted) |",
    ]


def speed_rows() -> list[str]:
    s = beam_damage_series((1024, 1024), 40, seed=3)
    t0 = time.perf_counter()
    r = dose.dose_series(s.frames, pixel_size=1.0, dose_per_frame=2.0)
    t_ours = time.perf_counter() - t0
    g = np.concatenate([sh.g for sh in r.shells]) if r.shells else np.array([[0.1, 0.0]])
    t0 = time.perf_counter()
    frc_vs_dose(s.frames, np.zeros((40, 2)), pixel_size=1.0, dose_per_frame=2.0, steps=10)
    bragg_intensity_series(s.frames, g, pixel_size=1.0, dose_per_frame=2.0)
    t_base = time.perf_counter() - t0
    return [
        "Speed, 40 frames of 1024² (2 cores):",
        "| method                                              | seconds |",
        "|-----------------------------------------------------|---------|",
        f"| dose_series (FRC+FRPR per point, spots, fits)       | {t_ours:>7.2f} |",
        f"| baseline frc_vs_dose + bragg_intensity_series       | {t_base:>7.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 series instead of 30")
    args = parser.parse_args()
    lines = critical_dose_rows(8 if args.quick else 30) + [""] + frpr_rows() + [""] + speed_rows()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
