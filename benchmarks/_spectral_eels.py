"""EELS rows of benchmarks/spectral.py, next to exSpy (GPL, imported here only, as the baseline):

- default windows on spectra exSpy made or ships: O K and Mn L2,3 integrals against exSpy's full
  power-law fit (``remove_background(fast=False)``) over hand-picked clean windows;
- hydrogenic cross-sections against exSpy's, atomic ratio O/Mn of an exSpy-built spectrum
  (integrals and the linear model fit, next to exSpy's linear ``multifit``);
- low loss: ZLP alignment, t/λ, Fourier-log and Fourier-ratio on Poisson plural scattering of a
  known single-scattering distribution, next to exSpy's methods;
- out of core: a 512×512×2048 float32 raw file (2 GiB) mapped under a 2 GiB address-space limit
  (``resource.setrlimit(RLIMIT_AS)`` in a child process), equal to the in-memory result on a
  subset, next to exSpy's lazy ``remove_background`` on the same file under the same limit.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from math import factorial

import numpy as np

from napari_cryomat.core import eels_quant as q
from napari_cryomat.core import lowloss as ll
from napari_cryomat.core import spectral as sp
from napari_cryomat.core.synthetic import spectral as syn

E0, BETA = 200.0, 30.0
OOC_SHAPE = (512, 512, 2048)
AS_LIMIT = 2 * 2**30


def _quiet():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def _signal(data, offset, scale):
    import exspy

    s = exspy.signals.EELSSpectrum(np.ascontiguousarray(data))
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(offset), float(scale), "eV"
    s.set_microscope_parameters(beam_energy=E0, collection_angle=BETA, convergence_angle=0.0)
    return s


def _exspy_edge(name, energy, scale):
    import exspy

    c = exspy.components.EELSCLEdge(name, GOS="hydrogenic")
    c.set_microscope_parameters(E0=E0, alpha=0.0, beta=BETA, energy_scale=scale)
    c.fine_structure_active = False
    c.intensity.value = 1.0
    return c.function(energy)


def mno_spectrum(white_lines: bool, shape=(1,), seed=0):
    """A MnO-like core-loss spectrum made with exSpy's hydrogenic edges (O K, Mn L2,3) on a power
    law, equal numbers of O and Mn atoms, optional Mn white lines, Poisson noise."""
    e = sp.energy_axis(offset=350.0, scale=0.5, size=1000)
    bg = 4e5 * (e / 350.0) ** -3.2
    o, mn = _exspy_edge("O_K", e, 0.5), _exspy_edge("Mn_L3", e, 0.5)
    dose = 0.6 * bg[np.searchsorted(e, 540)] / o[np.searchsorted(e, 540)]
    lam = bg + dose * (o + mn)
    if white_lines:
        ref = dose * mn[np.searchsorted(e, 660)]
        lam = lam + 2.5 * ref * np.exp(-0.5 * ((e - 641.5) / 1.5) ** 2) + 1.2 * ref * np.exp(-0.5 * ((e - 652.5) / 1.7) ** 2)
    rng = np.random.default_rng(seed)
    return rng.poisson(np.broadcast_to(lam, tuple(shape) + e.shape)).astype(np.float32), e


def _exspy_integral(spec, e, clean, intw):
    s = _signal(spec, e[0], e[1] - e[0])
    sub = s.remove_background(signal_range=clean, background_type="PowerLaw", fast=False, show_progressbar=False)
    sl = sp.window_slice(e, intw)
    return float(np.asarray(sub.data)[..., sl].sum())


def window_rows():
    rows = []
    spec, e = mno_spectrum(True)
    maps = sp.eels_maps(spec[None], energy=e, elements="O, Mn")
    clean = {"O": (430.0, 525.0), "Mn": (575.0, 632.0)}
    old = sp.eels_maps(spec[None], energy=e, elements="Mn", detect_onsets=False)  # the old default: O not known
    for el, m in maps.items():
        ref = _exspy_integral(spec[0], e, clean[el], m.windows["integration"])
        got = float(m.data[0, 0])
        bg = m.windows["background"]
        rows.append((f"{m.feature} integral, default windows (bg {bg[0]:.0f}–{bg[1]:.0f} eV), MnO-like spectrum "
                     "built with exSpy", f"{got:.4g}", f"{ref:.4g} (exSpy full fit, clean {clean[el][0]:.0f}–"
                     f"{clean[el][1]:.0f} eV)", "within 2 %", f"{100 * (got / ref - 1):+.2f} %"))
    ob = old["Mn"].windows["background"]
    ref = _exspy_integral(spec[0], e, clean["Mn"], old["Mn"].windows["integration"])
    rows.append((f"  before: Mn L2,3 with the old default bg {ob[0]:.0f}–{ob[1]:.0f} eV (holds O K at 532)",
                 f"{float(old['Mn'].data[0, 0]):.4g}", f"{ref:.4g}", "-",
                 f"{100 * (float(old['Mn'].data[0, 0]) / ref - 1):+.2f} %"))
    rows += real_mno_rows()
    import exspy

    s = exspy.data.EELS_MnFe(add_powerlaw=True, add_noise=True, random_state=0, navigation_shape=(1,))
    d = np.asarray(s.data, np.float32).reshape(1, -1)
    ax = s.axes_manager.signal_axes[0]
    em = sp.energy_axis(offset=ax.offset, scale=ax.scale, size=ax.size)
    m = sp.eels_maps(d[None], energy=em, elements="Mn, Fe")
    bg = m["Mn"].windows["background"]  # clean here: no edge before Mn L2,3 in 400-800 eV
    ref = _exspy_integral(d[0], em, bg, m["Mn"].windows["integration"])
    rows.append((f"Mn L2,3 integral on exSpy's EELS_MnFe example, default windows (bg {bg[0]:.0f}–{bg[1]:.0f} eV)",
                 f"{float(m['Mn'].data[0, 0]):.4g}", f"{ref:.4g} (exSpy full fit, same clean window)", "within 2 %",
                 f"{100 * (float(m['Mn'].data[0, 0]) / ref - 1):+.2f} %"))
    rows.append(("  Fe L2,3 on EELS_MnFe (Mn L2 ends 58 eV before)", "clean" if m["Fe"].extra["clean"] else "flagged",
                 "-", "say so", m["Fe"].extra["message"][:110] or "window placed clear of Mn L2,3"))
    from importlib.resources import files

    import hyperspy.api as hs

    cr = hs.load(str(files("exspy") / "tests" / "drawing" / "data" / "Cr_L_cl.hspy"))
    ca = cr.axes_manager.signal_axes[0]
    ec = sp.energy_axis(offset=ca.offset, scale=ca.scale, size=ca.size)
    plan = sp.plan_eels_windows("Cr", energy=ec, spectrum=np.asarray(cr.data, np.float64))
    rows.append(("real Cr L2,3 (exSpy test data, 560–600 eV): only 14 eV before the edge", "flagged" if not
                 plan["Cr"].clean else "clean", "-", "say so", plan["Cr"].message[:110]))
    return rows


def _real_mno():
    """exSpy's real MnO core-loss spectrum (its test data: 360-770 eV, 0.2 eV/ch, 300 kV, α 24.6 mrad,
    β 13.6 mrad), read with our reader: (counts, energy, exSpy signal)."""
    from importlib.resources import files

    import exspy

    from napari_cryomat.io.spectral import read_spectral

    path = files("exspy") / "tests" / "components" / "coreloss_spectrum.msa"
    (data, meta, _kind), = read_spectral(str(path))
    spectrum = np.asarray(data, np.float64).ravel()
    energy = sp.energy_axis(offset=meta["translate"][0], scale=meta["scale"][0], size=spectrum.size)
    s = exspy.signals.EELSSpectrum(spectrum.copy())
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(energy[0]), float(energy[1] - energy[0]), "eV"
    return spectrum, energy, s


def real_mno_rows():
    """Default windows and O/Mn on the real MnO spectrum, next to exSpy's full fits."""
    spectrum, energy, s = _real_mno()
    maps = sp.eels_maps(spectrum[None, None].astype(np.float32), energy=energy, elements="O, Mn")
    clean = {"O": (430.0, 525.0), "Mn": (575.0, 632.0)}
    rows = []
    for el, m in maps.items():
        sub = s.remove_background(signal_range=clean[el], background_type="PowerLaw", fast=False,
                                  show_progressbar=False)
        ref = float(np.asarray(sub.data)[sp.window_slice(energy, m.windows["integration"])].sum())
        got, bg = float(m.data[0, 0]), m.windows["background"]
        rows.append((f"{m.feature} integral, default windows (bg {bg[0]:.0f}–{bg[1]:.0f} eV), REAL MnO (exSpy test "
                     "data)", f"{got:.4g}", f"{ref:.4g} (exSpy full fit, clean {clean[el][0]:.0f}–{clean[el][1]:.0f} "
                     "eV)", "within 2 %", f"{100 * (got / ref - 1):+.2f} %"))
        if el == "Mn":  # the window the fixed 30 eV margin after O K gave before (session 4)
            old = sp.eels_maps(spectrum[None, None].astype(np.float32), energy=energy, elements="Mn",
                               windows={"Mn": {"background": (532.0 + 31.92, bg[1])}})["Mn"]
            rows.append((f"  before: Mn L2,3 with the fixed-margin bg {532 + 31.92:.0f}–{bg[1]:.0f} eV (O K near-edge "
                         "peaks inside)", f"{float(old.data[0, 0]):.4g}", f"{ref:.4g}", "-",
                         f"{100 * (float(old.data[0, 0]) / ref - 1):+.2f} %"))
    at, _ = q.quantify_maps(maps, e0=300.0, beta=13.6, alpha=24.6)
    fit = q.fit_edges(spectrum[None, None].astype(np.float32), energy=energy, elements="O, Mn", e0=300.0, beta=13.6,
                      alpha=24.6)
    s.add_elements(("Mn", "O"))
    s.set_microscope_parameters(beam_energy=300, convergence_angle=24.6, collection_angle=13.6)
    model = s.create_model(GOS="hydrogenic")
    model.multifit(kind="smart", show_progressbar=False)
    ratio_ex = model["O_K"].intensity.value / model["Mn_L3"].intensity.value
    ratio_int = float(np.ravel(at["O"])[0] / np.ravel(at["Mn"])[0])
    ratio_fit = float(np.ravel(fit.atomic_percent["O"])[0] / np.ravel(fit.atomic_percent["Mn"])[0])
    rows.append(("  O/Mn of the real MnO, hydrogenic σ (Mn L white lines not modelled): integrals / linear fit",
                 f"{ratio_int:.2f} / {ratio_fit:.2f}", f"{ratio_ex:.2f} (exSpy smart fit, hydrogenic)", "-",
                 "no truth (MnO would be 1)"))
    return rows


def quant_rows():
    rows = []
    for el, edge in (("O", "O_K"), ("Mn", "Mn_L3")):
        ours = q.edge_cross_section(el, width=100.0, e0=E0, beta=BETA)
        e = np.arange(0.0, 100.0, 0.05)
        onset = sp.eels_edges(el)[0].onset if el == "O" else [x for x in sp.eels_edges(el) if x.name == "L2,3"][0].onset
        ref = float(_exspy_edge(edge, onset + e, 0.05).sum() * 0.05)
        rows.append((f"hydrogenic σ({el} {'K' if el == 'O' else 'L2,3'}, β 30 mrad, Δ 100 eV, 200 kV)",
                     f"{ours:.4g} barn", f"{ref:.4g} barn (exSpy hydrogenic GOS)", "-",
                     f"{100 * (ours / ref - 1):+.2f} %"))
    si, e = mno_spectrum(False, shape=(32, 32), seed=1)
    t0 = time.perf_counter()
    maps = sp.eels_maps(si, energy=e, elements="O, Mn")
    at, _ = q.quantify_maps(maps, e0=E0, beta=BETA)
    t_int = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = q.fit_edges(si, energy=e, elements="O, Mn", e0=E0, beta=BETA)
    t_fit = time.perf_counter() - t0
    r_int = np.median(at["O"] / at["Mn"])
    r_fit = np.median(fit.atomic_percent["O"] / fit.atomic_percent["Mn"])
    base, r_ex = _exspy_linear_fit(si, e)
    rows.append(("atomic ratio O/Mn (exSpy-built 32×32 SI, truth 1.00): integrals / linear fit",
                 f"{t_int:.2f} / {t_fit:.2f} s", f"{base:.1f} s (exSpy multifit lstsq, ratio {r_ex:.3f})",
                 "within 5 %", f"{r_int:.3f} / {r_fit:.3f}"))
    return rows


def _exspy_linear_fit(si, e):
    s = _signal(si, e[0], e[1] - e[0])
    s.add_elements(("O", "Mn"))
    m = s.create_model(GOS="hydrogenic", auto_background=True, auto_add_edges=True)
    for c in m:
        if hasattr(c, "fine_structure_active"):
            c.fine_structure_active = False
    m["PowerLaw"].r.value = 3.2
    m["PowerLaw"].r.free = False
    t0 = time.perf_counter()
    m.multifit(optimizer="lstsq", show_progressbar=False)
    t = time.perf_counter() - t0
    o = m["O_K"].intensity.map["values"]
    mn = m["Mn_L3"].intensity.map["values"]
    return t, float(np.median(o / mn))


def _plural(tau, size=2048, step=0.1, seed=0):
    e = sp.energy_axis(offset=-10.0, scale=step, size=size)
    i0 = int(np.argmin(np.abs(e)))
    z = np.exp(-0.5 * (e / (0.8 / 2.3548)) ** 2)
    z /= z.sum()
    s = (e > 1) * (e * 4.0 * 22.0**2 / ((e**2 - 22.0**2) ** 2 + (e * 4.0) ** 2))
    s /= s.sum()
    spec, term = np.zeros_like(e), z.copy()
    for n in range(10):
        spec += 1e6 * np.exp(-tau) * tau**n / factorial(n) * term
        term = np.convolve(term, s)[i0 : i0 + e.size]
    truth = 1e6 * np.exp(-tau) * tau * np.convolve(z, s)[i0 : i0 + e.size]
    return e, np.random.default_rng(seed).poisson(spec).astype(np.float32), truth


def lowloss_rows():
    rows = []
    rng = np.random.default_rng(4)
    tau = 0.3 + 0.9 * rng.random((128, 128))
    d = syn.eels_lowloss_image(t_over_lambda=tau, offset=-10.0, scale=0.1, size=1024, total_counts=2e5)
    e = d["energy"]
    drift = rng.uniform(-1.5, 1.5, tau.shape).astype(np.float32)
    k = np.round(drift / 0.1).astype(int)
    base = d["si"]
    si = np.empty_like(base)
    for s in np.unique(k):  # integer-channel drift: exact truth for both methods
        sel = k == s
        si[sel] = np.roll(base[sel], s, axis=-1)
    t0 = time.perf_counter()
    aligned, shifts = ll.align_zlp(si, energy=e)
    t_ours = time.perf_counter() - t0
    err = np.abs(shifts - k * 0.1).max()
    sig = _signal(si, e[0], 0.1)
    t0 = time.perf_counter()
    sig.align_zero_loss_peak(subpixel=True, calibrate=True, print_stats=False, show_progressbar=False, crop=False)
    t_ex = time.perf_counter() - t0
    rows.append(("ZLP alignment 128×128×1024 (drift ±1.5 eV)", f"{t_ours:.2f}", f"{t_ex:.2f} (exSpy align_zero_loss_peak)",
                 "-", f"{t_ex / t_ours:.0f}×; max centre error {err * 1000:.0f} meV"))
    t0 = time.perf_counter()
    t_map, _, thr = ll.thickness_map(aligned, energy=e)
    t_t = time.perf_counter() - t0
    sig2 = _signal(aligned, e[0], 0.1)
    t0 = time.perf_counter()
    tex = sig2.estimate_thickness(threshold=thr)
    t_tex = time.perf_counter() - t0
    rows.append(("t/λ log-ratio map (same SI, aligned)", f"{t_t:.2f}", f"{t_tex:.2f} (exSpy estimate_thickness)", "-",
                 f"|t/λ − truth| median {np.median(np.abs(t_map - tau)):.3f}; vs exSpy "
                 f"{np.nanmax(np.abs(t_map - np.asarray(tex.data))):.1e}"))
    lam_i = ll.mean_free_path(e0=E0, beta=BETA, alpha=10.0, density=2.2)
    lam_m = ll.mean_free_path(e0=E0, beta=BETA, zeff=6.0, method="malis")
    rows.append(("λ carbon 200 kV β 30 (α 10) mrad: Iakoubovskii / Malis", f"{lam_i:.1f} / {lam_m:.1f} nm", "-", "-", "-"))
    ef, spec, truth = _plural(1.2)
    band = (ef > 3) & (ef < 150)
    t0 = time.perf_counter()
    ours = ll.fourier_log_deconvolve(np.broadcast_to(spec, (64, 64, spec.size)), energy=ef, zlp_threshold=2.5)
    t_fl = time.perf_counter() - t0
    err_ours = np.abs(ours[0, 0][band] - truth[band]).sum() / truth[band].sum()
    s = _signal(np.broadcast_to(spec, (64, 64, spec.size)).copy(), ef[0], 0.1)
    zlp = s.deepcopy()
    zlp.data[..., np.searchsorted(ef, 2.5):] = 0
    t0 = time.perf_counter()
    ex = s.fourier_log_deconvolution(zlp)
    t_ex = time.perf_counter() - t0
    exd = np.asarray(ex.data)[0, 0]
    err_ex = np.abs(exd[band] - truth[band]).sum() / truth[band].sum()
    rows.append(("Fourier-log, 64×64×2048, t/λ 1.2 (vs known SSD ⊗ ZLP)", f"{t_fl:.2f}",
                 f"{t_ex:.2f} (exSpy fourier_log_deconvolution)", "-",
                 f"L1 error ours {100 * err_ours:.1f} % / exSpy {100 * err_ex:.1f} %"))
    return rows


# ------------------------------------------------------------------------------------ out of core
def _ooc_child(path: str, which: str, limited: bool = True) -> None:
    """Run in a child (under RLIMIT_AS when ``limited``): map the raw file, print a JSON line."""
    import resource

    if limited:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    _quiet()
    e = sp.energy_axis(offset=200.0, scale=0.25, size=OOC_SHAPE[2])
    raw = sp.RawSpectrumImage(path, OOC_SHAPE)
    out = {"which": which}
    t0 = time.perf_counter()
    try:
        if which == "ours":
            maps = sp.eels_maps(raw, energy=e, elements="C, N, O", max_bytes=2**26)
            out["seconds"] = time.perf_counter() - t0
            np.save(path + ".ours.npy", np.stack([maps[el].data for el in ("C", "N", "O")]))
            out["windows"] = {el: maps[el].windows for el in maps}
        else:
            import dask
            import dask.array as da

            dask.config.set(scheduler="threads", num_workers=2)
            s = _signal(da.from_array(raw, chunks=(32, 512, OOC_SHAPE[2])), 200.0, 0.25).as_lazy()
            wins = json.loads(os.environ["CRYOMAT_OOC_WINDOWS"])
            res = []
            for el in ("C", "N", "O"):
                bg, intw = wins[el]["background"], wins[el]["integration"]
                sub = s.remove_background(signal_range=tuple(bg), background_type="PowerLaw", fast=True,
                                          show_progressbar=False)
                res.append(sub.isig[intw[0]:intw[1] - 1e-6].sum(-1).data.compute())
            out["seconds"] = time.perf_counter() - t0
            np.save(path + ".exspy.npy", np.stack(res))
        out["peak_rss_mb"] = _peak_rss_mb()
    except MemoryError as exc:
        out["error"] = f"MemoryError {exc}"[:200]
    except Exception as exc:  # noqa: BLE001 - reported in the table
        out["error"] = f"{type(exc).__name__}: {exc}"[:200]
    print(json.dumps(out))


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since its exec (VmHWM): ru_maxrss would also count the
    pages of the parent it was forked from."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _write_raw(path: str) -> None:
    d = syn.eels_spectrum_image(shape=(64, OOC_SHAPE[1]), offset=200.0, scale=0.25, size=OOC_SHAPE[2],
                                elements=("C", "N", "O"), counts_at_offset=5e4, seed=3)
    with open(path, "wb") as f:
        for _ in range(OOC_SHAPE[0] // 64):
            d["si"].tofile(f)


def _run_child(path: str, which: str, env=None, limited: bool = True) -> dict:
    cmd = [sys.executable, __file__, "--ooc-child", path, which, "limited" if limited else "unlimited"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": (proc.stderr or proc.stdout)[-300:]}


def out_of_core_rows(folder: str | None = None):
    """The out-of-core row; the 2 GiB file is removed afterwards unless ``folder`` was given (kept for reruns)."""
    own = folder is None
    folder = folder or tempfile.mkdtemp(prefix="cryomat-ooc-")
    path = os.path.join(folder, "si_512x512x2048.raw")
    try:
        return _out_of_core_rows(path)
    finally:
        if own:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _out_of_core_rows(path: str):
    if not os.path.exists(path) or os.path.getsize(path) != int(np.prod(OOC_SHAPE)) * 4:
        _write_raw(path)
    gib = os.path.getsize(path) / 2**30
    ours = _run_child(path, "ours")
    rows = []
    if "error" in ours:
        return [("EELS maps out of core", "failed", "-", "completes", ours["error"])]
    got = np.load(path + ".ours.npy")
    sub = np.fromfile(path, np.float32, count=64 * 512 * OOC_SHAPE[2]).reshape(64, 512, OOC_SHAPE[2])
    e = sp.energy_axis(offset=200.0, scale=0.25, size=OOC_SHAPE[2])
    ref = sp.eels_maps(sub, energy=e, elements="C, N, O", windows=ours["windows"])
    diff = max(float(np.abs(got[k][:64] - ref[el].data).max()) for k, el in enumerate(("C", "N", "O")))
    env = dict(os.environ, CRYOMAT_OOC_WINDOWS=json.dumps(ours["windows"]))
    ex = _run_child(path, "exspy", env)
    mbps = gib * 1024 / ours["seconds"]
    if "error" in ex:
        free = _run_child(path, "exspy", env, limited=False)
        base = f"under the limit: {ex['error'][:40]}…"
        if "error" not in free:
            base += (f"; without it {free['seconds']:.1f} ({gib * 1024 / free['seconds']:.0f} MB/s, peak RSS "
                     f"{free['peak_rss_mb']:.0f} MB; exSpy lazy remove_background, fast)")
    else:
        base = f"{ex['seconds']:.1f} ({gib * 1024 / ex['seconds']:.0f} MB/s; exSpy lazy remove_background, fast)"
    rows.append((f"EELS maps C/N/O of a {gib:.1f} GiB raw SI under a {AS_LIMIT / 2**30:.0f} GiB address-space limit",
                 f"{ours['seconds']:.1f} ({mbps:.0f} MB/s, peak RSS {ours['peak_rss_mb']:.0f} MB)", base, "completes",
                 f"= in-memory on 64 rows: max |Δ| {diff:.1e} counts"))
    for suffix in (".ours.npy", ".exspy.npy"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return rows


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--ooc-child":
    _ooc_child(sys.argv[2], sys.argv[3], sys.argv[4] == "limited")
