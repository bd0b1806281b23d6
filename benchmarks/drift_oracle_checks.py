"""Checks of the drift oracle (``drift_oracle.py``): its grid posterior against the exact Kalman smoother, and a
high-dose Laplace oracle that must sit near the Bayesian bound.

    python benchmarks/drift_oracle.py --selftest
    python benchmarks/drift_oracle.py --laplace --doses 10 --seeds 300-309

The self-test is a case with a closed-form answer (Gaussian frame likelihoods: the posterior of the
oracle's forward-backward must be the Kalman smoother's). At high dose the oracle's 1/4 px grid floors
the RMS (~0.09 px); the Laplace oracle refines each frame by Newton on the exact rendered likelihood and
combines the frames by the Kalman/GLS smoother, the efficient estimator there.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np

from napari_cryomat.core.synthetic.movie import MovieSpecimen

_spec = importlib.util.spec_from_file_location("drift_oracle_for_checks", pathlib.Path(__file__).with_name(
    "drift_oracle.py"))
oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle)
stress, case_specimen, Chain, splat = oracle.stress, oracle.case_specimen, oracle.Chain, oracle.splat
_logsumexp, oracle_stack, pooled_jump = oracle._logsumexp, oracle.oracle_stack, oracle.pooled_jump


# ---------------------------------------------------------------------------------------------------
# High dose: per-frame Newton on the exact likelihood, then the Kalman/GLS smoother (Laplace oracle)
# ---------------------------------------------------------------------------------------------------

def frame_newton(spec: MovieSpecimen, frame: np.ndarray, start, iterations: int = 3, delta: float = 0.04):
    """Peak m and information matrix J (= -Hessian) of a frame's exact log-likelihood near ``start``."""
    def ll(s):
        lam = spec.render(s).astype(np.float64)
        return float((frame * np.log(lam)).sum() - lam.sum())

    s = np.asarray(start, float).copy()
    for _ in range(iterations):
        d = delta
        f0 = ll(s)
        fy = ll(s + (d, 0)), ll(s - (d, 0))
        fx = ll(s + (0, d)), ll(s - (0, d))
        fxy = ll(s + (d, d)) - ll(s + (d, -d)) - ll(s + (-d, d)) + ll(s - (d, d))
        g = np.array([fy[0] - fy[1], fx[0] - fx[1]]) / (2 * d)
        hess = np.array([[fy[0] + fy[1] - 2 * f0, fxy / 4], [fxy / 4, fx[0] + fx[1] - 2 * f0]]) / d ** 2
        move = -np.linalg.solve(hess, g)
        norm = np.hypot(*move)
        s += move * min(1.0, 0.3 / max(norm, 1e-12))
    return s, -hess


def gls_smoother(peaks, infos, step: float, velocity=None) -> np.ndarray:
    """Posterior mean of s (s_0 = 0) for Gaussian frame likelihoods N(peaks_i, infos_i⁻¹) (i >= 1) and the
    walk s_{i+1} - s_i = v + N(0, step²); v known or flat. Both axes jointly (the infos couple them)."""
    n = len(peaks)
    q = max(step, 1e-3) ** 2
    k = 2 * (n - 1) + (2 if velocity is None else 0)
    a = np.zeros((k, k))
    b = np.zeros(k)
    for i in range(1, n):
        sl = slice(2 * (i - 1), 2 * i)
        a[sl, sl] += infos[i]
        b[sl] += infos[i] @ peaks[i]
    for i in range(n - 1):
        for ax in range(2):
            row = np.zeros(k)
            row[2 * i + ax] = 1.0
            if i > 0:
                row[2 * (i - 1) + ax] = -1.0
            rhs = 0.0
            if velocity is None:
                row[2 * (n - 1) + ax] = -1.0
            else:
                rhs = velocity[ax]
            a += np.outer(row, row) / q
            b += row * rhs / q
    sol = np.linalg.solve(a, b)
    return np.vstack([[0.0, 0.0], sol[: 2 * (n - 1)].reshape(n - 1, 2)])


def run_laplace(sets, size, dose, ours: bool, h: float = 0.25, max_v: int = 400) -> list[str]:
    from napari_cryomat.core.drift import estimate_drift

    methods = (["ours"] if ours else []) + ["grid oracle", "Laplace oracle", "Laplace oracle+v"]
    head = f"{'seeds':>8} | {'BCRB':>5} | {'old BCRB':>9}" + "".join(f" | {k + ' RMS':>20} | {'/BCRB':>5} | {'jump %':>6}"
                                                      for k in methods)
    lines = [head, "-" * len(head)]
    for seeds in sets:
        rows = {k: [] for k in methods}
        old_bcrb = []
        for seed in seeds:
            case = stress.draw_case(seed)
            m = stress.make_movie(case, size, dose)
            r = oracle_stack(case, size, dose, h, max_v, movie=m)
            grid_est = r["est"]["oracle"][0]
            spec = case_specimen(case, size, dose)
            fits = [frame_newton(spec, f.astype(np.float64), s) for f, s in zip(m.frames, grid_est)]
            peaks = np.array([p for p, _ in fits])
            infos = np.array([j for _, j in fits])
            est = {"grid oracle": grid_est,
                   "Laplace oracle": gls_smoother(peaks, infos, case["step"]),
                   "Laplace oracle+v": gls_smoother(peaks, infos, case["step"], np.asarray(case["velocity"]))}
            if ours:
                est["ours"] = estimate_drift(m.frames).shifts
            bcrb = stress.bayes_crb_rms(m.clean, case["step"], stress.exact_gradients(case, size, dose, m.shifts))
            old_bcrb.append(stress.bayes_crb_rms(m.clean, case["step"]))
            for k in methods:
                rows[k].append(stress.errors(est[k], m.shifts, case["period"]) + (len(m.frames), bcrb))
            print(f"  seed {seed} dose {dose:g} BCRB={bcrb:.4f} (Fourier {old_bcrb[-1]:.4f}) "
                  + " ".join(f"{k}={rows[k][-1][0]:.4f}" for k in methods), file=sys.stderr, flush=True)
        line = (f"{seeds[0]:>3}-{seeds[-1]:<4} | {np.mean([e[3] for e in rows[methods[0]]]):5.3f} | "
                f"{np.mean(old_bcrb):9.3f}")
        for k in methods:
            line += (f" | {np.mean([e[0] for e in rows[k]]):20.4f} | "
                     f"{np.median([e[0] / e[3] for e in rows[k]]):5.2f} | {pooled_jump(rows[k]):6.2f}")
        lines.append(line)
    return [f"Drift oracle check at {dose:g} counts/px/frame, {size}² px stress stacks: the oracles must match or "
            "beat ours and sit near the BCRB (exact derivatives; old = Fourier-derivative bound of sessions 1-5); "
            "RMS px mean over stacks, /BCRB median over stacks"] + lines


# ---------------------------------------------------------------------------------------------------
# Self-test: a case with a closed-form answer (Gaussian likelihoods: the Kalman smoother)
# ---------------------------------------------------------------------------------------------------

def kalman_posterior(obs, sigma: float, step: float, velocity=None):
    """Exact posterior mean and variance of s_i (one axis) for Gaussian observations obs_i ± sigma (i >= 1),
    s_0 = 0, s_{i+1} - s_i = v + N(0, step²); v known, or flat (``velocity`` None)."""
    n = len(obs)
    k = n - 1 + (velocity is None)  # unknowns s_1..s_{n-1} (+ v)
    a = np.zeros((k, k))
    b = np.zeros(k)
    for i in range(1, n):
        a[i - 1, i - 1] += 1 / sigma ** 2
        b[i - 1] += obs[i] / sigma ** 2
    for i in range(n - 1):  # (s_{i+1} - s_i - v)² / step²: row of coefficients over the unknowns
        row = np.zeros(k)
        rhs = 0.0
        row[i] = 1.0
        if i > 0:
            row[i - 1] = -1.0
        if velocity is None:
            row[-1] = -1.0
        else:
            rhs = velocity
        a += np.outer(row, row) / step ** 2
        b += row * rhs / step ** 2
    cov = np.linalg.inv(a)
    mean = cov @ b
    return np.r_[0.0, mean[: n - 1]], np.r_[0.0, np.diag(cov)[: n - 1]]


def selftest() -> list[str]:
    """The grid posterior against the exact Kalman posterior, for a fast walk (sampled Gaussian kernel, grid
    1/4 px) and a slow one (lazy 3-point kernel, grid 1/8 px: a posterior narrower than the grid spacing is
    not resolved by it), with the velocity known and flat. Returns the report lines; raises on a mismatch
    above 0.03 px in a mean or a standard deviation."""
    lines = []
    for step, h in ((0.3, 0.25), (0.1, 0.125)):
        rng = np.random.default_rng(5)
        n, sigma, v = 8, 0.7, (0.4, -0.25)
        truth = np.cumsum(np.r_[[[0.0, 0.0]], v + rng.normal(0, step, (n - 1, 2))], axis=0)
        obs = truth + rng.normal(0, sigma, truth.shape)
        lo, big = -8.0, int(16 / h)
        grid = lo + h * np.arange(big)
        ll = np.stack([-((grid[:, None] - o[0]) ** 2 + (grid[None, :] - o[1]) ** 2) / (2 * sigma ** 2) for o in obs])
        ll[0] = 0.0
        chain = Chain(ll.astype(np.float32), lo, h, step)
        for known in (True, False):
            smaps = np.zeros_like(ll, dtype=float)
            if known:
                splat(smaps, chain.posterior(np.array(v))[1], chain, np.array(v), 1.0)
            else:  # flat prior on v over a grid (±1 px/frame: > 8 posterior sds): evidence-weighted mixture
                axis = np.arange(-1.0, 1.0 + 1e-9, 2 * h / (n - 1))
                vs = [np.array([a, b]) for a in axis for b in axis]
                logz = np.array([chain.forward(u)[0] for u in vs])
                w = np.exp(logz - _logsumexp(logz))
                for u, wi in zip(vs, w):
                    if wi > 1e-8:
                        splat(smaps, chain.posterior(u)[1], chain, u, wi)
            p = smaps / smaps.sum((1, 2), keepdims=True)
            for axis_i in (0, 1):
                marg = p.sum(2 - axis_i)
                mean = (marg * grid).sum(1)
                var = (marg * grid ** 2).sum(1) - mean ** 2
                km, kv = kalman_posterior(obs[:, axis_i], sigma, step, v[axis_i] if known else None)
                dm, ds = np.abs(mean - km).max(), np.abs(np.sqrt(var[1:]) - np.sqrt(kv[1:])).max()
                lines.append(f"walk {step} px, velocity {'known' if known else 'flat '}, axis {axis_i}: max |mean - "
                             f"Kalman| {dm:.4f} px, max |sd - Kalman sd| {ds:.4f} px (Kalman sd "
                             f"{np.sqrt(kv[1:]).mean():.3f})")
                if dm > 0.03 or ds > 0.03:
                    raise AssertionError(lines[-1])
    return lines
