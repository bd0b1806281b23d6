"""The one-window ellipse fits the segmentation's batched fits are held to (tests only).

The product fits every object's window at once (``_segment_particles._fit_ellipses_each``, a batched
Levenberg-Marquardt); these are the plain one-window versions, with scipy's MINPACK ``least_squares``, as
``fit_outlines`` and ``_fit_pair_outlines`` were before sessions 25 and 27: an independent reference.
"""

import numpy as np
from scipy import ndimage as ndi

from napari_cryomat.core._segment_particles import (
    PAIR_FIT_MAX_EVALUATIONS,
    PAIR_FIT_TOLERANCE,
    _ellipse_edge,
    _moment_starts,
    _window_box,
)


def _moment_start(ys, xs):
    """The ellipse parameters of the pixels (ys, xs) (see _moment_starts)."""
    return _moment_starts(np.ones((1, ys.size), bool), ys[None].astype(float), xs[None].astype(float))[0]


def _fit_ellipses(yy, xx, data, starts, prior_mean, prior_sd, lo, hi, noise):
    """``(parameters, cost, within)`` of the joint least-squares fit of (len(``starts``) - 2) / 5 soft ellipses, a
    contrast and a background level to ``data`` at the pixels (yy, xx), in units of the pixel ``noise``, with the
    Gaussian prior (``prior_mean``, ``prior_sd``) on each ellipse's log radius and aspect terms; cost = half the sum of
    the squared residuals, prior included; within: the parameters inside (``lo``, ``hi``). ``starts``: each ellipse's
    5 parameters, then contrast and level. Levenberg-Marquardt (MINPACK). The segmentation fits all windows at once
    (_fit_ellipses_each); this one-window fit is the reference the tests hold it to."""
    from scipy.optimize import least_squares
    from scipy.special import expit

    k = (len(starts) - 2) // 5
    cols = np.concatenate([[5 * j + 2, 5 * j + 3, 5 * j + 4] for j in range(k)])
    mean, sd = np.tile(prior_mean, k), np.tile(prior_sd, k)
    prior_rows = np.zeros((3 * k, 5 * k + 2))
    prior_rows[np.arange(3 * k), cols] = 1.0 / sd
    last = {}

    def model(q):  # least_squares asks for the residuals and then the Jacobian at the same point
        if last.get("q") is None or not np.array_equal(last["q"], q):
            edges = [_ellipse_edge(q[5 * j:5 * j + 5], yy, xx) for j in range(k)]
            inside = [expit(g) for g, _ in edges]
            outside = np.prod([1.0 - s for s in inside], axis=0)
            union = 1.0 - outside
            jac = [(q[5 * k] * np.prod([1.0 - s for i, s in enumerate(inside) if i != j], axis=0)
                    * inside[j] * (1.0 - inside[j]))[:, None] * edges[j][1] for j in range(k)]
            jac = np.concatenate(jac + [union[:, None], np.ones((union.size, 1))], axis=1)
            last.update(q=q.copy(), value=q[5 * k] * union + q[5 * k + 1], jac=jac)
        return last["value"], last["jac"]

    def residuals(q):
        return np.r_[(data - model(q)[0]) / noise, (q[cols] - mean) / sd]

    def jacobian(q):
        return np.vstack([-model(q)[1] / noise, prior_rows])

    start = np.clip(starts, lo + 1e-6, hi - 1e-6)
    fit = least_squares(residuals, start, jac=jacobian, method="lm", max_nfev=PAIR_FIT_MAX_EVALUATIONS,
                        ftol=PAIR_FIT_TOLERANCE, xtol=PAIR_FIT_TOLERANCE)
    return fit.x, float(fit.cost), bool(np.all((fit.x >= lo) & (fit.x <= hi)))


def _fit_window(labels, box, k, flat):
    """The fit's window around object ``k`` of ``labels`` (its ``box`` grown by PAIR_FIT_MARGIN px): (window, the
    object's pixels, the usable pixels (other objects' grown by a pixel left out), y and x of the window's pixels, the
    background level: the median of ``flat`` over the usable pixels of no object)."""
    win = _window_box(box, labels.shape)
    obj = labels[win] == k
    usable = ~ndi.binary_dilation((labels[win] != 0) & ~obj)
    yy, xx = np.indices(obj.shape, dtype=float)
    around = usable & (labels[win] == 0)
    offset = float(np.median(flat[win][around])) if around.any() else 0.0
    return win, obj, usable, yy, xx, offset
