"""Local thickness: accuracy on plates and rods of known thickness, and speed at 256³, next to baselines.

Baselines, measured in the same run:

- "porespy-style": porespy's ``local_thickness`` algorithm re-implemented plainly (porespy pulls in
  vtk, 566 MB): for every radius r (1-voxel steps, largest first) the voxels within r of
  ``{distance >= r}`` get 2r; one full Euclidean distance transform per radius.
- "brute force": the definition itself, every voxel against every ball centre (small volumes only):
  how far our distance-ridge painting is from the exact maximum.

    python benchmarks/morph3d.py            # the table (about 2 min on 2 cores)
    python benchmarks/morph3d.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core.morph3d import local_thickness


def _shape(kind, shape, thickness, rng):
    g = np.indices(shape).reshape(3, -1).T.astype(float) - ((np.array(shape) - 1) / 2 + rng.uniform(-1, 1, 3))
    n = rng.normal(size=3)
    n /= np.linalg.norm(n)
    along = g @ n
    radial = np.linalg.norm(g - along[:, None] * n, axis=1)
    reach = min(shape) / 2 - 2
    if kind == "plate":
        inside = (np.abs(along) < thickness / 2) & (radial < reach)
    else:
        inside = (radial < thickness / 2) & (np.abs(along) < reach - thickness / 2)  # 2.7+ diameters long
    return inside.reshape(shape)


def porous(shape, seed=0):
    """A random porous solid (half the volume): a smoothed random field thresholded at its median."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random(shape, dtype=np.float32), 4)
    return field > np.median(field)


def plates_and_rods(shape, seed=0):
    """Randomly oriented plates and rods of 4-24 voxels placed side by side."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, bool)
    cell = 64
    for z in range(0, shape[0] - cell + 1, cell):
        for y in range(0, shape[1] - cell + 1, cell):
            for x in range(0, shape[2] - cell + 1, cell):
                kind = "plate" if rng.random() < 0.5 else "rod"
                out[z:z + cell, y:y + cell, x:x + cell] = _shape(kind, (cell,) * 3, rng.uniform(4, 24), rng)
    return out


def porespy_style(mask, step=1.0):
    """porespy's algorithm: for each radius r (largest first), dilate {dt >= r} by r with an EDT."""
    dt = ndi.distance_transform_edt(mask)
    out = np.zeros(mask.shape, np.float32)
    for r in np.arange(np.floor(dt.max()), 0, -step):
        seeds = dt >= r
        reached = (ndi.distance_transform_edt(~seeds) < r) & mask & (out == 0)
        out[reached] = 2 * r
    return out


def brute_force(mask):
    """The definition: each voxel gets max 2*dt(c) over all voxels c with |x - c| < dt(c)."""
    dt = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1, 1:-1]
    pts = np.argwhere(mask).astype(np.float32)
    r = dt[mask].astype(np.float32)
    best = np.zeros(len(pts), np.float32)
    for s in range(0, len(pts), 512):
        d2 = ((pts[s:s + 512, None, :] - pts[None, :, :]) ** 2).sum(-1)
        best[s:s + 512] = np.where(d2 < r[None, :] ** 2, r[None, :], 0).max(1)
    out = np.zeros(mask.shape, np.float32)
    out[mask] = 2 * best
    return out


def _timed(fn, *args, **kwargs):
    """Result and "wall s (CPU s)": on a shared machine the CPU time of this (single-threaded)
    process is what the wall time would be with the cores to itself."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, f"{time.perf_counter() - t0:.1f} ({time.process_time() - c0:.1f})"


def accuracy(n_cases, size, rng):
    rows = {}
    for kind in ("plate", "rod"):
        errors = []
        for _ in range(n_cases):
            thickness = rng.uniform(4, 16)
            m = _shape(kind, (size,) * 3, thickness, rng)
            errors.append(float(np.median(local_thickness(m, voxel_size=1.0)[m])) - thickness)
        rows[kind] = np.array(errors)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    big, small, tiny, n_cases = (128, 96, 24, 6) if args.quick else (256, 128, 32, 20)
    rng = np.random.default_rng(2026)
    rows = []

    acc = accuracy(n_cases, 64, rng)
    for kind, e in acc.items():
        rows.append((f"{kind}s, random tilt + thickness 4-16 vx", f"{n_cases} x 64³", "local_thickness", "-",
                     f"{np.mean(e):+.2f} / {np.abs(e).max():.2f}"))

    m = porous((tiny,) * 3, seed=1)
    exact, t_exact = _timed(brute_force, m)
    ours, t_ours = _timed(local_thickness, m, voxel_size=1.0)
    diff = np.abs(ours - exact)[m]
    rows.append(("porous, vs the exact definition", f"{tiny}³", "brute force", t_exact, "0 (reference)"))
    rows.append(("", f"{tiny}³", "local_thickness", t_ours,
                 f"median {np.median(diff):.2f}, {np.mean(diff <= 1.0):.1%} within 1 vx"))

    for name, make in (("porous (50 % solid)", porous), ("plates + rods", plates_and_rods)):
        m = make((small,) * 3)
        base, t_base = _timed(porespy_style, m)
        ours, t_small = _timed(local_thickness, m, voxel_size=1.0)
        diff = (ours - base)[m]
        rows.append((name, f"{small}³", "porespy-style (1 vx bins)", t_base, "-"))
        rows.append(("", f"{small}³", "local_thickness", t_small,
                     f"mean {np.mean(diff):+.2f} vs porespy-style"))
        m = make((big,) * 3)
        _, t_big = _timed(local_thickness, m, voxel_size=1.0)
        rows.append(("", f"{big}³", "local_thickness", t_big, "target <= 20 s"))

    header = ("case", "size", "method", "wall s (CPU s)", "error (voxels): mean / max |median - truth|")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"Local thickness (2 cores, shared machine: load average {os.getloadavg()[0]:.1f})")
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
