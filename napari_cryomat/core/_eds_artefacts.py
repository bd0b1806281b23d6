"""Detector artefacts in an EDS sum spectrum, the bounded fit that keeps them physical, and a local line
test independent of the clipped continuum (private; used by :mod:`._eds_identify`).

Pile-up (two events counted as one at the sum of their energies) and Si escape (a line 1.74 keV lower) are
columns made from the net spectrum itself. Their amplitudes are bounded by what a detector does: left free,
these broad, spectrum-shaped columns soak up real lines (Hf Mα at 1.64 keV fitted as 240 000 counts of
pile-up in a 200 kV spectrum whose continuum clipping left a hump below 1 keV).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

SI_ESCAPE_EV, SI_K_EDGE_EV = 1739.98, 1838.9
MAX_PILE_UP = 0.05  # fraction of all events summed with another one (FePt's Super-X spectrum needs 4 %)
MAX_SI_ESCAPE = 0.02  # fraction of a line's counts in its Si escape peak (about 1 % at 2-4 keV, less above)


def artefact_columns(energy, pos, mask):
    """``({name: column}, {name: largest amplitude})`` for pile-up and Si escape. A pile-up column is the
    spectrum convolved with itself over its total (amplitude = fraction of events piled up); pulses below
    ~1 keV escape the pile-up inspector more often, so their sums get a column of their own. The escape column
    is the spectrum 1.74 keV lower (amplitude = fraction of a line's counts escaping)."""
    e = energy
    de = float(e[1] - e[0])
    n = e.size
    off = int(round(e[0] / de))  # channel k = i + j + e0/de holds the sum of channels i and j
    low = pos * (e < 1000.0)

    def summed(a, b):
        conv = np.convolve(a, b)
        out = np.zeros(n)
        k = np.arange(n) + off
        ok = (k >= 0) & (k < conv.size)
        out[ok] = conv[k[ok]]
        return out * (e > 2 * max(e[0], 100.0))

    total = max(float(pos[mask].sum()), 1.0)
    escape = np.interp(e + SI_ESCAPE_EV, e, pos, left=0.0, right=0.0) * (e + SI_ESCAPE_EV > SI_K_EDGE_EV)
    cols, caps = {}, {}
    for name, c, cap in (("pile-up", summed(low, pos) / total, MAX_PILE_UP),
                         ("pile-up (high energy)", summed(pos - low, pos - low) / total, MAX_PILE_UP),
                         ("Si escape", escape, MAX_SI_ESCAPE)):
        if np.any(c[mask] > 0):
            cols[name], caps[name] = c, cap
    return cols, caps


def bounded_nnls(a, b, upper):
    """Least squares ``a x ≈ b`` with ``0 <= x <= upper`` (``inf`` for no bound): NNLS, then any amplitude
    above its bound is held at the bound and the others refitted (exact when the bound is active)."""
    scale = np.maximum(np.abs(a).max(axis=0), 1e-30)
    held = np.zeros(a.shape[1], bool)
    x = np.zeros(a.shape[1])
    for _ in range(a.shape[1]):
        free = ~held
        x[held] = upper[held]
        if not free.any():
            break
        xf, _r = nnls(a[:, free] / scale[free], b - a[:, held] @ upper[held], maxiter=50 * a.shape[1])
        x[free] = xf / scale[free]
        over = free & (x > upper)
        if not over.any():
            break
        held |= over
    return np.minimum(x, upper)


def local_excess(problem, c, model_before):
    """Counts within ±0.6 FWHM of ``c`` above a quadratic through side bands 1.5–3.5 FWHM away (the continuum
    bends there), in the spectrum less the other elements' fitted lines, and the noise of that difference. On
    the continuum's steep onset (below ~1.1 × the energy where absorption sets in) a quadratic cannot follow it
    and the excess comes out high: a gate on it then rejects nothing there."""
    f = problem.fwhm_of(c)
    x = (problem.energy - c) / f
    win, side = np.abs(x) <= 0.6, problem.mask & (np.abs(x) >= 1.5) & (np.abs(x) <= 3.5)
    if not win.any() or (x[side] < 0).sum() < 3 or (x[side] > 0).sum() < 3:
        return np.inf, 1.0  # no room for side bands (C Kα next to the low-energy cut-off): not tested
    y = problem.s - model_before
    basis = np.stack([np.ones(side.sum()), x[side], x[side] ** 2], axis=1)
    w = 1.0 / np.sqrt(np.maximum(problem.s[side], 1.0))
    coef, *_ = np.linalg.lstsq(basis * w[:, None], y[side] * w, rcond=None)
    under = np.stack([np.ones(win.sum()), x[win], x[win] ** 2], axis=1).sum(axis=0)  # Σ over the window
    cov = np.linalg.pinv((basis * w[:, None]).T @ (basis * w[:, None]))
    excess = float(y[win].sum() - under @ coef)
    noise = float(np.sqrt(np.maximum(problem.s[win], 1.0).sum() + under @ cov @ under))
    return excess, noise


MAX_SI_FLUORESCENCE = 0.02  # Si Kα from the detector's own crystal: usually under 1 %, rarely 2 % of the counts above its edge


def si_fluorescence_note(energy, counts, mask, si_ka_counts):
    """'' or a sentence saying that a small Si Kα may be the detector's own: photons above the Si K edge absorbed in
    the crystal's dead layer emit Si Kα that is counted (the internal-fluorescence peak Velox and DM users know), at a
    fraction of the counts above the edge that a spectrum alone cannot tell from Si in the specimen."""
    above = float(counts[mask & (energy > SI_K_EDGE_EV)].sum())
    if above <= 0 or si_ka_counts <= 0 or si_ka_counts > MAX_SI_FLUORESCENCE * above:
        return ""
    return (f"; its Kα holds {100 * si_ka_counts / above:.1f} % of the counts above the Si K edge: it may be the "
            "detector's Si internal-fluorescence peak rather than Si in the specimen")
