"""EDS identification on every real EDS file of the test corpus (issue #13: test on data we did not make).

Run: python benchmarks/eds_real.py [--no-velox]

The corpus (tests/io/corpus.py: hyperspy 1.7.6 and mrcfile sdists, the exspy wheel; fetched from PyPI when
missing) holds EDS spectra and spectrum images from Bruker (bcf, spx), Thermo Fisher Velox (emd), JEOL and
HyperSpy files, Gatan dm3/dm4 and FEI TIA (emi; the signal type taken from the energy axis). Each is opened with this plugin's reader, as File > Open does, its spectrum summed over the
scan, and identified at the beam energy and detector FWHM the file records (``metadata["acquisition"]``, as
the Spectrum imaging dock starts; 200 kV and 130 eV where the file says nothing, marked *).

Three tables:

1. Per spectrum: the elements found next to the element list the operator stored in the file (Bruker and
   HyperSpy keep it as ``Sample.elements``). That list is the baseline, not ground truth: an operator lists
   what a map was made of (a trace element of a few pixels disappears in the sum) and may leave out what is
   obvious (O in a silicate). Read the columns "found, not listed" (candidates for false elements) and
   "listed, not found" (candidates for misses) with the spectrum in view.
2. Sensitivity on exSpy's FePt and TM002 (the issue's named real spectra): the elements found at the file's
   own FWHM and beam energy (the baseline) and at FWHM ± 3 and ± 5 eV and at the dock's former 200 kV. An
   identification that changes within a detector's calibration uncertainty (a few eV) is not yet robust.
3. Every spectrum of table 1 with elements found, again at its FWHM ± 1 eV: the elements gained and lost, and how
   many spectra keep theirs.
"""

from __future__ import annotations

import fnmatch
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))

#: file name patterns of EDS data in the corpus (a file holding no EDS signal is passed over)
PATTERNS = ("*.bcf", "*.spx", "*.emd", "*.hspy", "*.msa", "*.pts", "*.eds", "*.emi", "*.dm3", "*.dm4")
#: what a reader of the table should know about a file, where its name alone does not say
NOTES = {
    "over16bit.bcf": "energy axis to 80 keV at a 10 kV beam: the file's calibration is odd",
    "Nope.bcf": "not a Bruker file",
    "test-EDS_spectrum.dm3": "holds only the detector's zero peak (counts at -0.1..0.25 keV)",
}
DEFAULT_BEAM_KEV, DEFAULT_FWHM_EV = 200.0, 130.0
#: the step of table 3: a detector's FWHM at Mn Kα is calibrated to about 1 eV, and the files state it to 0.1 eV
FWHM_STEP_EV = 1.0


def eds_spectra(path: Path):
    """(layer name, sum spectrum, energy eV, acquisition dict, operator's elements) of each EDS signal."""
    from napari_cryomat.io.spectral import read_spectral

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = read_spectral(path)
    for data, kwargs, _kind in layers:
        md = kwargs.get("metadata") or {}
        kind = (md.get("source") or {}).get("kind", "")
        if kind == "spectrum image series":  # the frames; the summed SI is a layer of its own
            continue
        si = md.get("spectrum_image") or {}
        spectrum = md.get("spectrum") or {}
        signal_type = str(si.get("signal_type") or spectrum.get("signal_type") or "")
        if not signal_type.upper().startswith("EDS"):
            continue
        if spectrum and np.ndim(spectrum.get("counts")) >= 1 and spectrum.get("unit") == "eV":
            counts = np.asarray(spectrum["counts"], dtype=np.float64)
            counts = counts.reshape(-1, counts.shape[-1]).sum(0)
            energy = np.asarray(spectrum["axis"], dtype=np.float64)
        elif si:
            axis = si["energy_axis"]
            summed = data.sum(axis=(1, 2))  # (E, Y, X) layer: numpy or dask
            counts = np.asarray(summed.compute() if hasattr(summed, "compute") else summed, dtype=np.float64)
            energy = float(axis["offset"]) + float(axis["scale"]) * np.arange(counts.size)
        else:
            continue
        listed = ((md.get("rsciio_metadata") or {}).get("Sample") or {}).get("elements")
        yield kwargs.get("name", path.name), counts, energy, dict(md.get("acquisition") or {}), listed


def identify(counts, energy, beam, fwhm):
    from napari_cryomat.core import eds

    cpu = time.process_time()
    found = eds.identify_elements(counts, energy=energy, beam_energy_kev=beam, fwhm_mn_ka=fwhm).elements
    return found, time.process_time() - cpu


def main(argv: list[str]) -> None:
    from corpus import ensure_corpus

    root, why = ensure_corpus()
    if root is None:
        print(f"no corpus: {why}")
        return
    # matched without case: JEOL writes .EDS
    files = sorted(p for p in root.rglob("*") if p.is_file() and any(fnmatch.fnmatch(p.name.lower(), pat) for pat in PATTERNS))
    if "--no-velox" in argv:
        files = [p for p in files if p.suffix != ".emd"]
    print("## 1. Identification on real EDS files, next to the elements the operator stored in the file")
    print("(* = not recorded in the file: 200 kV / 130 eV used, as the dock's defaults)\n")
    print("| file | signal | counts | kV | FWHM eV | operator's list | found | found, not listed | listed, not found | CPU s | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sensitivity, identified = {}, []
    for path in files:
        try:
            spectra = list(eds_spectra(path))
        except Exception as exc:  # noqa: BLE001 - a file this reader refuses is reported, the rest go on
            if path.suffix in (".bcf", ".spx", ".pts", ".eds"):
                print(f"| {path.name} | refused: {str(exc)[:80]} | | | | | | | | | {NOTES.get(path.name, '')} |")
            continue
        for name, counts, energy, acq, listed in spectra:
            if "xray_tube_kv" in acq:  # the dock refuses: identification models electron-excited EDS
                print(f"| {path.name} | {name} | {counts.sum():.3g} | tube {acq['xray_tube_kv']:g} | | "
                      f"{', '.join(listed) if listed else '–'} | not identified: micro-XRF, as the file records | "
                      f"| | | {NOTES.get(path.name, '')} |", flush=True)
                continue
            beam = acq.get("beam_energy_kev")
            fwhm = acq.get("eds_fwhm_mn_ka_ev")
            b, f = beam or DEFAULT_BEAM_KEV, fwhm or DEFAULT_FWHM_EV
            found, cpu = identify(counts, energy, b, f)
            listed_set = set(listed or [])
            extra = sorted(set(found) - listed_set) if listed else "–"
            missing = sorted(listed_set - set(found)) if listed else "–"
            print(f"| {path.name} | {name} | {counts.sum():.3g} | {b:g}{'' if beam else '*'} | "
                  f"{f:.1f}{'' if fwhm else '*'} | {', '.join(listed) if listed else '–'} | {', '.join(found)} | "
                  f"{', '.join(extra) if listed else '–'} | {', '.join(missing) if listed else '–'} | {cpu:.1f} | "
                  f"{NOTES.get(path.name, '')} |", flush=True)
            if path.name in ("EDS_TEM_FePt_nanoparticles.hspy", "EDS_SEM_TM002.hspy"):
                sensitivity[path.name] = (counts, energy, b, f)
            if found:
                identified.append((path.name, name, counts, energy, b, f, found))
    print("\n## 2. exSpy's FePt and TM002: the elements found at the file's own FWHM and beam (baseline) and off them\n")
    print("| spectrum | setting | found | same as baseline |")
    print("|---|---|---|---|")
    for name, (counts, energy, beam, fwhm) in sensitivity.items():
        base, _ = identify(counts, energy, beam, fwhm)
        print(f"| {name} | file: {fwhm:.1f} eV, {beam:g} kV | {', '.join(base)} | baseline |")
        settings = [(fwhm + d, beam, f"FWHM {d:+g} eV") for d in (-5, -3, 3, 5)]
        if beam != DEFAULT_BEAM_KEV:
            settings.append((fwhm, DEFAULT_BEAM_KEV, f"{DEFAULT_BEAM_KEV:g} kV (the dock's former default)"))
        for f, b, label in settings:
            found, _ = identify(counts, energy, b, f)
            print(f"| {name} | {label} | {', '.join(found)} | {'yes' if set(found) == set(base) else '**no**'} |",
                  flush=True)
    print(f"\n## 3. Every identified spectrum at its FWHM ± {FWHM_STEP_EV:g} eV (about what a detector's resolution is known to)\n")
    print("| file | signal | FWHM eV | gained at -1 | lost at -1 | gained at +1 | lost at +1 |")
    print("|---|---|---|---|---|---|---|")
    stable = 0
    for file_name, name, counts, energy, beam, fwhm, base in identified:
        cells = []
        for step in (-FWHM_STEP_EV, FWHM_STEP_EV):
            found, _ = identify(counts, energy, beam, fwhm + step)
            cells += [", ".join(sorted(set(found) - set(base))), ", ".join(sorted(set(base) - set(found)))]
        stable += not any(cells)
        print(f"| {file_name} | {name} | {fwhm:.1f} | {' | '.join(cells)} |", flush=True)
    print(f"\n{stable} of {len(identified)} spectra give the same elements at FWHM ± {FWHM_STEP_EV:g} eV.")


if __name__ == "__main__":
    main(sys.argv[1:])
