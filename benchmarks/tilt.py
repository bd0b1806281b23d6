"""Tilt-series reconstruction and alignment, next to scikit-image's iradon / iradon_sart in the same run.

    python benchmarks/tilt.py              # 256³ from 61 tilts (about 10 min on 2 shared cores)
    python benchmarks/tilt.py --size 128   # quicker
    python benchmarks/tilt.py --memory     # adds the 2k x 2k x 61 -> 2k x 2k x 500 WBP (peak RSS)
    python benchmarks/tilt.py --only-memory
    python benchmarks/tilt.py --no-reconstruction --seeds 0,2,3,4,5   # alignment on 5 more phantoms
    python benchmarks/tilt.py --only-sirt --sirt-seeds 0,5              # default vs classic SIRT, noisy data
    python benchmarks/tilt.py --oracle 1,0,2,3,4,5   # what the data allow: Cramér-Rao bounds and oracles

Prints one table. Data: ``make_tilt_series`` (a catalyst-layer phantom of spheres, projected
exactly, so no method reconstructs its own forward model). Rows:

- **WBP** (``reconstruct(method="wbp")``) and scikit-image ``iradon`` (ramp filter, one Y slice at a
  time); target <= 15 s at 256³.
- **SIRT**, at most 50 iterations with positivity: the default call (λ = 1.9 from zero, stopped early where
  held-out tilts are reprojected best; its stopping iteration is printed), classic SIRT (λ = 1 from zero,
  all 50: the default before session 5) and λ = 1.9 from the WBP, and scikit-image ``iradon_sart`` (one
  iteration on 16 slices, time scaled to all slices); target <= 60 s with normalised RMS error <= 0.36.
  The error is ``|rec - truth| / |truth|`` over the voxels every tilt sees
  (``|x cosθ + z sinθ| <= n/2``), noise-free projections. ``--sirt-seeds 0,5`` adds default against
  classic on other phantoms (``--sirt-size``, 128 by default), noise-free and at 100 and 10 counts/px
  (``-log`` of Poisson counts): an early stop must not lose where the noise is low.
- **alignment**: random per-tilt shifts of up to ±20 px, 1 count/px per tilt; RMS error of the recovered
  shifts (target <= 0.5 px) and of the tilt-axis angle (target <= 0.3°). Truth and estimate both carry
  no gauge: only what no data can fix is removed (a common shift along the axis, and the part
  ``x0 cosθ + z0 sinθ`` across it, which moves the volume by (x0, z0) and so also sets the centre of
  rotation); nothing else is fitted away before the RMS is taken,
  with the axis angle given and found blind. Baseline: cosine-stretched neighbour cross-correlation
  accumulated from zero tilt (IMOD tiltxcorr's scheme) without projection matching.
- **oracle** (``--oracle SEEDS``, alone): per phantom of the alignment rows (same size, dose, shifts), the
  Cramér-Rao bound of each tilt's shift from the Poisson Fisher information of its TRUE noise-free
  projection (``sum_r (∂λ/∂s)² / λ``, exact renders of the generator; also for the 2x and 4x binned
  counts), the oracle estimator (each noisy tilt fitted by Poisson likelihood to its true projection),
  matching started from the TRUE shifts against references made from the noisy tilts (the floor each
  reference allows, and whether it holds over passes), and ours; for the axis angle the bound with the
  volume and shifts known (and with the shifts unknown too), the Poisson fit of the angle alone with the
  true volume and shifts, the bound with the VOLUME unknown (4x binned, as the blind search: told where the
  material is, and free inside the specimen's ball), and ours (blind). If an oracle missed a target, no
  method could meet it; a blind method can at best reach the volume-unknown bounds.
- **memory** (``--memory``): WBP of a 2048² x 61 series into a 500 x 2048 x 2048 volume written slab
  by slab to a file; peak resident memory of that process (target <= 8 GB).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from napari_cryomat.core import _tilt_align as al
from napari_cryomat.core import _tilt_refine, _tilt_scan, tilt
from napari_cryomat.core import _tilt_xcorr as xc
from napari_cryomat.core.synthetic.tilt import make_tilt_series, project_spheres, seen_region


def nrmse(rec, truth, region):
    return float(np.linalg.norm((rec - truth)[region]) / np.linalg.norm(truth[region]))


def skimage_slices(proj, angles, ys, *, sart: bool):
    """scikit-image on Y slices ``ys``: our (z, x) slice is its image flipped in rows (see tests)."""
    from skimage.transform import iradon, iradon_sart

    n = proj.shape[2]
    out = np.zeros((n, len(ys), n), np.float32)
    for k, y in enumerate(ys):
        sino = proj[:, y, :].T.astype(np.float64)
        if sart:
            img = iradon_sart(sino, theta=angles)
        else:
            img = iradon(sino, theta=angles, filter_name="ramp", circle=False, output_size=n)
        out[:, k, :] = img[::-1, :]
    return out


def shift_rms(est, truth):
    return float(np.sqrt(np.mean(np.sum((est - truth) ** 2, axis=1))))


def reconstruction_rows(size, n_tilts):
    s = make_tilt_series(shape=(size, size, size), n_tilts=n_tilts, seed=0)
    region = seen_region(s.volume.shape, s.angles)
    rows = []
    t = time.perf_counter()
    wbp = tilt.reconstruct(s.projections, s.angles, method="wbp")
    rows.append((f"WBP {size}³, {n_tilts} tilts", "reconstruct(wbp)", time.perf_counter() - t,
                 nrmse(wbp, s.volume, region), "<= 15 s"))
    t = time.perf_counter()
    sk = skimage_slices(s.projections, s.angles, range(size), sart=False)
    rows.append(("", "skimage iradon (per slice)", time.perf_counter() - t, nrmse(sk, s.volume, region), ""))
    del wbp, sk
    sirt = None
    for label, kw, target in (("reconstruct(sirt) default (λ = 1.9 from zero, early stop)", {}, "<= 60 s, <= 0.36"),
                              ("classic SIRT (λ = 1 from zero, all 50; the old default)",
                               {"relaxation": 1.0, "early_stop": False}, ""),
                              ("reconstruct(sirt, start='wbp', early_stop=False)",
                               {"start": "wbp", "early_stop": False}, "")):
        vol, row = sirt_row(s.projections, s.angles, kw, s.volume, region)
        rows.append(("SIRT 50 it., positivity" if target else "", label + row[0], *row[1:3], target, row[3]))
        sirt = vol if sirt is None else sirt
        del vol
    ys = np.linspace(size // 8, size - size // 8, 16).astype(int)
    t = time.perf_counter()
    sart = skimage_slices(s.projections, s.angles, ys, sart=True)
    dt = (time.perf_counter() - t) * size / len(ys)
    sub = region[:, ys, :]
    rows.append(("", "skimage iradon_sart 1 it. (16 slices, time x n/16)", dt,
                 nrmse(sart, s.volume[:, ys, :], sub), ""))
    rows.append(("", "  (reconstruct(sirt) default on the same 16 slices)", float("nan"),
                 nrmse(sirt[:, ys, :], s.volume[:, ys, :], sub), ""))
    return rows


def sirt_row(data, angles, kw, truth=None, region=None):
    """(volume, (label suffix, wall, error, CPU)) of a 50-iteration SIRT with positivity."""
    info: dict = {}
    t, c = time.perf_counter(), time.process_time()
    vol = tilt.reconstruct(data, angles, method="sirt", iterations=50, positivity=True, info=info, **kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    suffix = f": stopped at {info['iterations']}" if kw.get("early_stop", True) else ""  # where the pilot chose
    err = float("nan") if truth is None else nrmse(vol, truth, region)
    return vol, (suffix, wall, err, cpu)


def noisy_sirt_rows(size, n_tilts, seeds, doses):
    """Default SIRT against classic SIRT on noise-free and noisy line integrals (``-log`` of Poisson counts
    at ``doses`` counts/px) of other phantoms: the early stop must not lose where noise is low."""
    rows = []
    for seed in seeds:
        for dose in doses:
            s = make_tilt_series(shape=(size, size, size), n_tilts=n_tilts, seed=seed, max_shift=0,
                                 tilt_axis_angle=0, dose=dose or 1.0)
            data = s.projections if not dose else s.line_integrals()
            region = seen_region(s.volume.shape, s.angles)
            case = f"  {size}³ seed {seed}, " + ("noise-free" if not dose else f"{dose:g} counts/px")
            for label, kw in (("default", {}), ("classic (λ = 1, all 50)", {"relaxation": 1.0, "early_stop": False})):
                _, row = sirt_row(data, s.angles, kw, s.volume, region)
                rows.append((case if label == "default" else "", label + row[0], *row[1:3], "", row[3]))
    return rows


def alignment_rows(size, n_tilts, dose, max_shift):
    s = make_tilt_series(shape=(size, size, size), n_tilts=n_tilts, max_shift=max_shift, dose=dose, seed=1)
    rows = []
    # baseline: stretched neighbour cross-correlation only, with the true axis angle
    t = time.perf_counter()
    work = al.normalise(al.bin_stack(s.tilts, max(1, size // 128)))
    b = max(1, size // 128)
    shape = al.aligned_shape(work.shape[1:], s.tilt_axis_angle)
    rot = np.stack([al.resample(w, s.tilt_axis_angle, (0, 0), shape, cval=0.0) for w in work])
    tx = _tilt_scan.neighbour_chain(rot, s.angles, max_shift=max_shift / b + 2, band=xc.bandpass(shape, 0.01, 0.05),
                            win=xc.disc(shape))
    base = (tx * b) @ al.rotation(s.tilt_axis_angle).T
    rows.append((f"alignment {size}², {n_tilts} tilts, ±{max_shift:g} px, {dose:g} count/px",
                 "tiltxcorr-style neighbour chain (axis given)", time.perf_counter() - t,
                 shift_rms(base, s.shifts), "<= 0.5 px"))
    t, c = time.perf_counter(), time.process_time()
    a = tilt.align_tilt_series(s.tilts, s.angles, tilt_axis_angle=s.tilt_axis_angle)
    rows.append(("", "align_tilt_series (axis given)", time.perf_counter() - t, shift_rms(a.shifts, s.shifts), "",
                 time.process_time() - c))
    t, c = time.perf_counter(), time.process_time()
    a = tilt.align_tilt_series(s.tilts, s.angles)
    d_alpha = (a.tilt_axis_angle - s.tilt_axis_angle + 90) % 180 - 90
    rows.append(("", f"align_tilt_series (blind): axis off by {d_alpha:+.2f}° (<= 0.3°)", time.perf_counter() - t,
                 shift_rms(a.shifts, s.shifts), "", time.process_time() - c))
    rows.append(("", "no alignment (RMS of the true shifts)", 0.0, shift_rms(np.zeros_like(s.shifts), s.shifts), ""))
    return rows


def seed_rows(size, n_tilts, dose, max_shift, seeds):
    """``align_tilt_series`` on other phantoms of the same generator (seeds), axis given and blind: the
    benchmark seed alone says little about a weakly determined error mode."""
    rows = []
    for seed in seeds:
        s = make_tilt_series(shape=(size, size, size), n_tilts=n_tilts, max_shift=max_shift, dose=dose, seed=seed)
        t, c = time.perf_counter(), time.process_time()
        a = tilt.align_tilt_series(s.tilts, s.angles, tilt_axis_angle=s.tilt_axis_angle)
        rows.append((f"  seed {seed} (axis {s.tilt_axis_angle:+.1f}°)", "align_tilt_series (axis given)",
                     time.perf_counter() - t, shift_rms(a.shifts, s.shifts), "<= 0.5 px", time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        a = tilt.align_tilt_series(s.tilts, s.angles)
        d_alpha = (a.tilt_axis_angle - s.tilt_axis_angle + 90) % 180 - 90
        rows.append(("", f"align_tilt_series (blind): axis off by {d_alpha:+.2f}° (<= 0.3°)", time.perf_counter() - t,
                     shift_rms(a.shifts, s.shifts), "", time.process_time() - c))
    return rows


# -------------------------------------------------------------------------------------------------
# oracle bounds (--oracle): what the data allow, measured on the benchmark's own phantoms and dose
# -------------------------------------------------------------------------------------------------
def expected_counts(s, alpha, shifts):
    """Noise-free expected counts of the raw tilts: the generator's own exact model."""
    p = project_spheres(s.spheres, s.angles, s.tilts.shape[1:], alpha=alpha, shifts=shifts)
    return s.dose * np.exp(-s.contrast * p.astype(np.float64))


def shift_fisher(s, shifts, delta=0.25):
    """λ, dλ/d(dy, dx) (central differences of exact renders) and the (N, 2, 2) Poisson Fisher
    information ``sum_r ∂λ ∂λᵀ / λ`` of each tilt's shift."""
    lam = expected_counts(s, s.tilt_axis_angle, shifts)
    grads = [(expected_counts(s, s.tilt_axis_angle, shifts + e) - expected_counts(s, s.tilt_axis_angle, shifts - e))
             / (2 * delta) for e in (np.array([delta, 0.0]), np.array([0.0, delta]))]
    fisher = np.stack([np.stack([np.sum(ga * gb / lam, axis=(1, 2)) for gb in grads], -1) for ga in grads], -2)
    return lam, grads, fisher


def crb_rms(fisher):
    """RMS over tilts of the smallest possible (dy, dx) error of an unbiased estimator, px."""
    return float(np.sqrt(np.mean(np.trace(np.linalg.inv(fisher), axis1=1, axis2=2))))


def binned_fisher(lam, grads, b):
    n, h, w = lam.shape
    bs = [a.reshape(n, h // b, b, w // b, b).sum(axis=(2, 4)) for a in [lam] + grads]
    return np.stack([np.stack([np.sum(ga * gb / bs[0], axis=(1, 2)) for gb in bs[1:]], -1) for ga in bs[1:]], -2)


def gauge_free(s, shifts):
    R = al.rotation(s.tilt_axis_angle)
    return al.remove_gauge(shifts @ R, s.angles) @ R.T


def oracle_shift_and_bounds(s, iterations=3):
    """Each noisy tilt matched by Poisson likelihood to its TRUE projection (Fisher scoring from the true
    shift, exact renders): (estimate, CRB rows at bins 1, 2, 4, λ and its shift derivatives at the truth)."""
    est, k = s.shifts.copy(), s.tilts.astype(np.float64)
    for it in range(iterations):
        lam, grads, fisher = shift_fisher(s, est)
        if it == 0:
            at_truth = (lam, grads, fisher)
        score = np.stack([np.sum((k / lam - 1) * g, axis=(1, 2)) for g in grads], axis=1)
        est = est + np.clip(np.linalg.solve(fisher, score[..., None])[..., 0], -2, 2)
    lam, grads, fisher = at_truth
    crbs = {1: crb_rms(fisher), 2: crb_rms(binned_fisher(lam, grads, 2)), 4: crb_rms(binned_fisher(lam, grads, 4))}
    return gauge_free(s, est), crbs, lam, grads, fisher


def oracle_axis(s, lam, grads, fisher, iterations=3, delta=0.05):
    """(CRB of the axis angle alone, CRB with every shift unknown too, error of the Poisson fit of the angle
    alone with the true volume and shifts), degrees."""
    k, a = s.tilts.astype(np.float64), s.tilt_axis_angle
    for it in range(iterations):
        lam_a = lam if it == 0 else expected_counts(s, a, s.shifts)
        da = (expected_counts(s, a + delta, s.shifts) - expected_counts(s, a - delta, s.shifts)) / (2 * delta)
        if it == 0:
            j_aa = float(np.sum(da * da / lam))
            j_as = np.stack([np.sum(da * g / lam, axis=(1, 2)) for g in grads], axis=1)[..., None]
            schur = j_aa - float(np.sum(np.swapaxes(j_as, 1, 2) @ np.linalg.solve(fisher, j_as)))
        a += float(np.sum((k / lam_a - 1) * da) / np.sum(da * da / lam_a))
    return 1 / np.sqrt(j_aa), 1 / np.sqrt(schur), a - s.tilt_axis_angle


def blind_axis_crb(s, binning=4, delta=0.05):
    """Cramér-Rao bounds of the axis angle (degrees) when the VOLUME is unknown too, from the counts binned as
    the blind search bins them: ``{"volume known": ., "told the support": ., "ball": .}``.

    Why: with the volume known the counts fix the angle to 0.02-0.04°, but a blind method must reconstruct
    the volume, and a volume can absorb most of an axis error (notes of session 20). The Fisher information
    of the angle is what is left of ``h = ∂λ/∂α`` (λ-weighted) after projecting out every change a volume
    can make: per Y row (the problem splits by row once the tilts are aligned) the weighted least-squares
    residual of h against the columns of the slice projector over the free voxels. "told the support": the
    binned voxels that hold material, dilated by one (an oracle's prior); "ball": the generator's ball,
    radius 0.42 of the size + 2 binned px (what is known of any specimen: its slab). The shifts are left
    known: freeing them changed the bound by < 1 %. Central differences of exact renders (±``delta``°). Seed 343
    (256³, 61 tilts, 1 count/px): known 0.040°, told the support 0.128°, ball 0.218°."""
    import scipy.linalg
    from scipy import ndimage

    from napari_cryomat.core._tilt_projector import SliceProjector

    def binned(a):
        n, h, w = a.shape
        return a.reshape(n, h // binning, binning, w // binning, binning).sum(axis=(2, 4))

    # rendered in the aligned frame (axis along Y, no shifts), where the slice projector's geometry holds; an
    # axis error is then a rotation about the image centre (one about another point adds a shift)
    still = np.zeros_like(s.shifts)
    lam = binned(expected_counts(s, 0.0, still))
    d_lam = (binned(expected_counts(s, delta, still)) - binned(expected_counts(s, -delta, still))) / (2 * delta)
    root = np.sqrt(lam)
    n_tilts, ny, nu = lam.shape
    size = s.volume.shape[0]
    nz = nx = size // binning
    columns = SliceProjector(s.angles, nz, nx, nu).matrix.toarray()  # (tilt x u, z x x)
    zz, xx, yy = (np.arange(k) - (k - 1) / 2 for k in (nz, nx, ny))
    ball_radius = 0.42 * size / binning + 2
    b = binning
    occupied = (s.volume != 0).reshape(nz, b, ny, b, nx, b).any(axis=(1, 3, 5))
    occupied = ndimage.binary_dilation(occupied, iterations=1)
    info = {"volume known": 0.0, "told the support": 0.0, "ball": 0.0}
    for j in range(ny):
        weight = root[:, j, :].ravel()
        h = (d_lam[:, j, :] / root[:, j, :]).ravel()  # λ^-1/2 ∂λ/∂α: its squared norm is the information
        info["volume known"] += float(h @ h)
        free = {"told the support": occupied[:, j, :].ravel(),
                "ball": ((zz[:, None] ** 2 + xx[None, :] ** 2 + yy[j] ** 2) <= ball_radius ** 2).ravel()}
        for name, mask in free.items():
            if not mask.any():
                info[name] += float(h @ h)
                continue
            # ∂λ/∂V = -contrast λ A: weighted by λ^-1/2 the volume's columns are λ^1/2 A (the constant is absorbed)
            m = columns[:, mask] * weight[:, None]
            coef = scipy.linalg.lstsq(m, h, cond=1e-10, lapack_driver="gelsy")[0]
            r = h - m @ coef
            info[name] += float(r @ r)
    return {name: 1.0 / np.sqrt(v) for name, v in info.items()}


def reference_floor(s, passes=3):
    """Matching against a reference made from the noisy tilts, started from the TRUE shifts (raw px RMS):
    the correlation stage (band-passed correlation with the leave-one-out WBP reprojection, 4x binned, one
    pass), Poisson matching in count space against that WBP reference (2x binned) and against the
    positivity-constrained fold SIRT of the last stage (4x binned), after 1 and ``passes`` passes (each
    remakes the reference from the shifts just found)."""
    R = al.rotation(s.tilt_axis_angle)
    out = {}
    for b, kind in ((4, "xcorr"), (2, "wbp"), (4, "sirt")):
        counts = al.bin_stack(s.tilts, b)
        logs = -np.log(counts + 0.05 * float(counts.mean()))
        truth = al.remove_gauge(s.shifts @ R, s.angles) / b
        shape = al.aligned_shape(counts.shape[1:], s.tilt_axis_angle)
        matcher = al.Matcher(s.angles, shape, shape[1])
        err = (lambda t: float(np.sqrt(np.mean(np.sum((t - truth) ** 2, axis=1)))) * b)
        if kind == "xcorr":
            d, _ = al.match_once(al.normalise(logs), s.angles, s.tilt_axis_angle, truth, matcher, max_shift=3,
                                 band=xc.bandpass(shape, 0.003, 0.3), win=al._match_window(shape), order=3)
            out[kind] = [err(al.remove_gauge(truth + d, s.angles))]
            continue
        t, out[kind] = truth.copy(), []
        for _ in range(passes):
            if kind == "sirt":
                t = _tilt_refine.refine(counts, s.angles, s.tilt_axis_angle, t, shape, matcher.proj, passes=1)
            else:
                aligned = np.stack([al.resample(v, s.tilt_axis_angle, ti, shape, order=3, cval=float(v.mean()))
                                    for v, ti in zip(logs, t)])
                rep = matcher.reprojections(aligned)
                t = al.remove_gauge(np.stack([_tilt_refine.poisson_shift(c, r, s.tilt_axis_angle, ti)
                                              for c, r, ti in zip(counts, rep, t)]), s.angles)
            out[kind].append(err(t))
    return out


def oracle_rows(size, n_tilts, dose, max_shift, seeds):
    """Per phantom: the Cramér-Rao bound and the oracle (true projection) for the shifts and the axis angle,
    the floor of matching against our own reference started from the truth, and ours."""
    rows = []
    for seed in seeds:
        s = make_tilt_series(shape=(size, size, size), n_tilts=n_tilts, max_shift=max_shift, dose=dose, seed=seed)
        t = time.perf_counter()
        est, crbs, lam, grads, fisher = oracle_shift_and_bounds(s)
        crb_a, crb_as, d_oracle = oracle_axis(s, lam, grads, fisher)
        dt = time.perf_counter() - t
        blind_bound = blind_axis_crb(s)
        floor = reference_floor(s)
        t, c = time.perf_counter(), time.process_time()
        ours = tilt.align_tilt_series(s.tilts, s.angles, tilt_axis_angle=s.tilt_axis_angle)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        blind = tilt.align_tilt_series(s.tilts, s.angles)
        d_alpha = (blind.tilt_axis_angle - s.tilt_axis_angle + 90) % 180 - 90
        case = f"seed {seed} shifts (px)"
        rows += [(case, "Cramér-Rao bound, true projection, Poisson (1x / 2x / 4x binned: "
                        f"{crbs[2]:.3f} / {crbs[4]:.3f})", dt, crbs[1], "<= 0.5 px"),
                 ("", "oracle: Poisson fit to the true projection", float("nan"), shift_rms(est, s.shifts), ""),
                 ("", "from the truth, vs leave-one-out WBP: correlation 4x binned, 1 pass", float("nan"),
                  floor["xcorr"][0], ""),
                 ("", "  Poisson 2x binned, 1 pass (2 / 3 passes: " + " / ".join(f"{v:.3f}" for v in floor["wbp"][1:])
                  + ")", float("nan"), floor["wbp"][0], ""),
                 ("", "from the truth, vs fold SIRT (positivity): Poisson 4x binned, 1 pass (2 / 3: "
                  + " / ".join(f"{v:.3f}" for v in floor["sirt"][1:]) + ")", float("nan"), floor["sirt"][0], ""),
                 ("", "ours: align_tilt_series (axis given)", wall, shift_rms(ours.shifts, s.shifts), "", cpu),
                 (f"seed {seed} axis angle (°)", "Cramér-Rao bound, volume and shifts known "
                  f"(shifts unknown: {crb_as:.4f})", float("nan"), crb_a, "<= 0.3°"),
                 ("", "oracle: Poisson fit of the angle alone (true volume and shifts)", float("nan"), abs(d_oracle),
                  ""),
                 ("", "Cramér-Rao bound, volume UNKNOWN, 4x binned: told where the material is (volume known "
                  f"there: {blind_bound['volume known']:.4f})", float("nan"), blind_bound["told the support"], ""),
                 ("", "Cramér-Rao bound, volume UNKNOWN inside the specimen's ball, 4x binned (a blind method's "
                  "prior)", float("nan"), blind_bound["ball"], ""),
                 ("", f"ours: align_tilt_series (blind), off by {d_alpha:+.2f}°", float("nan"), abs(d_alpha), "")]
    return rows


class RawVolumeWriter:
    """A (Z, Y, X) float32 file written Y slab by Y slab with pwrite (no memory map grows in RSS)."""

    def __init__(self, path, shape):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(np.float32), 3
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self.fd, int(np.prod(shape)) * 4)

    def __setitem__(self, key, value):
        _, ys, _ = key
        nz, ny, nx = self.shape
        for z in range(nz):
            os.pwrite(self.fd, np.ascontiguousarray(value[z], np.float32).tobytes(), (z * ny + ys.start) * nx * 4)


def _vm_hwm_gib() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the parent's pages
    held before exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def memory_child(n=2048, n_tilts=61, nz=500):
    folder = tempfile.mkdtemp(prefix="cryomat-tilt-mem-")
    tilts = np.lib.format.open_memmap(os.path.join(folder, "tilts.npy"), mode="w+", dtype=np.float32,
                                      shape=(n_tilts, n, n))
    rng = np.random.default_rng(0)
    for i in range(n_tilts):
        tilts[i] = rng.random((n, n), dtype=np.float32)
    tilts.flush()
    del tilts
    tilts = np.load(os.path.join(folder, "tilts.npy"), mmap_mode="r")
    angles = np.linspace(-60, 60, n_tilts)
    out = RawVolumeWriter(os.path.join(folder, "volume.raw"), (nz, n, n))
    t = time.perf_counter()
    tilt.reconstruct(tilts, angles, method="wbp", thickness=nz, out=out)
    dt = time.perf_counter() - t
    peak = _vm_hwm_gib()
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    os.rmdir(folder)
    print(f"{dt:.1f} {peak:.2f}")


def memory_row():
    proc = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True)
    if proc.returncode != 0:
        return ("memory 2k² x 61 -> 500 x 2k²", "reconstruct(wbp, out=file)", float("nan"), float("nan"),
                "failed: " + proc.stderr[-200:])
    dt, peak = (float(v) for v in proc.stdout.split()[-2:])
    return ("memory 2k² x 61 -> 500 x 2k²", f"reconstruct(wbp, out=file): peak RSS {peak:.2f} GiB", dt,
            float("nan"), "<= 8 GB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--dose", type=float, default=1.0)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--memory-child", action="store_true")
    ap.add_argument("--no-align", action="store_true")
    ap.add_argument("--only-memory", action="store_true")
    ap.add_argument("--no-reconstruction", action="store_true")
    ap.add_argument("--seeds", default="", help="extra phantoms for the alignment rows, e.g. 0,2,3,4,5")
    ap.add_argument("--sirt-seeds", default="", help="phantoms for default vs classic SIRT on noisy data, e.g. 0,5")
    ap.add_argument("--sirt-size", type=int, default=128, help="their size")
    ap.add_argument("--doses", default="0,100,10", help="counts/px of those rows (0: noise-free)")
    ap.add_argument("--only-sirt", action="store_true", help="only the default-vs-classic rows")
    ap.add_argument("--oracle", default="", help="only the oracle-bound rows for these phantoms, e.g. 1,0,2,3,4,5")
    args = ap.parse_args()
    if args.memory_child:
        memory_child()
        return
    t0 = time.perf_counter()
    oracle_seeds = [int(v) for v in args.oracle.split(",") if v.strip()]
    rows = oracle_rows(args.size, args.tilts, args.dose, 20.0 * args.size / 256, oracle_seeds) if oracle_seeds else []
    if not (oracle_seeds or args.only_memory or args.no_reconstruction or args.only_sirt):
        rows += reconstruction_rows(args.size, args.tilts)
    sirt_seeds = [int(v) for v in args.sirt_seeds.split(",") if v.strip()]
    if sirt_seeds and not oracle_seeds:
        rows += noisy_sirt_rows(args.sirt_size, args.tilts, sirt_seeds, [float(v) for v in args.doses.split(",")])
    if not (oracle_seeds or args.no_align or args.only_memory or args.only_sirt):
        rows += alignment_rows(args.size, args.tilts, args.dose, max_shift=20.0 * args.size / 256)
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
        rows += seed_rows(args.size, args.tilts, args.dose, 20.0 * args.size / 256, seeds)
    if args.memory or args.only_memory:
        rows.append(memory_row())
    print(f"napari-cryomat tilt-series benchmark — {os.cpu_count()} CPUs visible (shared machine)")
    head = ("case", "method", "wall (s)", "CPU (s)", "error", "target")
    # rows are (case, method, wall, error, target[, CPU]): CPU seconds of this process where measured
    rows = [(r[0], r[1], r[2], r[5] if len(r) > 5 else float("nan"), r[3], r[4]) for r in rows]

    def fmt(v):
        return "" if isinstance(v, float) and np.isnan(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))

    table = [head] + [tuple(fmt(v) for v in r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for k, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("error: normalised RMS error of the volume inside the region every tilt sees (reconstruction rows);"
          " RMS of the recovered shift error in px (alignment rows).")
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
