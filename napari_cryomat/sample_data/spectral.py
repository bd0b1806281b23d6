"""Samples: an EELS spectrum image of a layered SEI and an EDS spectrum image of FePt particles.

Each comes with its HAADF image. Truth (maps, compositions, backgrounds) is in the layers'
``metadata["truth"]``.
"""

from __future__ import annotations

from napari_cryomat.core.synthetic.spectral import eds_spectrum_image, eels_lowloss_image, eels_spectrum_image
from napari_cryomat.io.mrc import strided_contrast_limits
from napari_cryomat.io.spectral import spectrum_image_layer


def _haadf_layer(img, pixel_size, name, truth=None):
    return (
        img,
        {
            "name": name,
            "scale": (pixel_size, pixel_size),
            "units": ("angstrom", "angstrom"),
            "colormap": "gray",
            "contrast_limits": strided_contrast_limits(img),
            "metadata": {"truth": truth or {}, "kind": "HAADF"},
        },
        "image",
    )


def eels_sample():
    """EELS core-loss SI (Li K, C K, N K, O K on a power-law background, Poisson noise), its
    low-loss SI (for t/λ) and a HAADF image of a layered solid-electrolyte interphase."""
    d = eels_spectrum_image()
    lo = eels_lowloss_image(t_over_lambda=d["thickness"])
    truth = {
        "elements": list(d["onsets"]),
        "onsets_eV": d["onsets"],
        "edge_amplitude": d["truth_amplitude"],
        "concentration": d["concentration"],
        "background_A": d["truth_background"]["A"],
        "background_r": d["truth_background"]["r"],
        "edge_exponent": d["edge_exponent"],
        "edge_width_eV": d["edge_width"],
    }
    core = spectrum_image_layer(
        d["si"],
        energy_offset=d["offset"],
        energy_scale=d["scale"],
        pixel_size=d["pixel_size"],
        name="EELS SI (SEI)",
        signal_type="EELS",
        metadata={"truth": truth},
        visible=False,
    )
    low = spectrum_image_layer(
        lo["si"],
        energy_offset=lo["offset"],
        energy_scale=lo["scale"],
        pixel_size=d["pixel_size"],
        name="EELS low-loss SI (SEI)",
        signal_type="EELS",
        metadata={"truth": {"t_over_lambda": lo["t_over_lambda"]}},
        visible=False,
    )
    return [low, core, _haadf_layer(d["haadf"], d["pixel_size"], "HAADF (SEI)", {"thickness": d["thickness"]})]


#: the EDS demo's continuum rolls off below ~0.6 keV by a made-up factor exp(-(0.4 keV / E)^3) (the generator's),
#: not by the detector window and Si dead layer the identification fits: the misfit reads as a peak between
#: C Ka (0.28) and Fe L (0.70 keV), 0.44 keV on this demo; the continuum alone gives "peaks" at 0.48, 0.60, 0.76 keV
DEMO_ROLL_OFF = {"from_eV": 300.0, "to_eV": 800.0,
                 "why": "the demo's continuum: its simulated low-energy roll-off, not an element"}


def eds_sample():
    """EDS SI of FePt-like particles on carbon with Cu from the grid (Fe K, Pt L, Pt M, Cu K)
    and its HAADF image. Cliff–Lorimer k-factors and the atomic-% truth are in the metadata."""
    d = eds_spectrum_image()
    truth = {
        "atomic_percent": d["atomic_percent"],
        "net_counts": d["net_counts"],
        "lines": d["lines"],
        "k_factors": d["k_factors"],
        "mask": d["mask"],
        "fwhm_mn_ka_eV": d["fwhm_mn_ka"],
    }
    si = spectrum_image_layer(
        d["si"],
        energy_offset=d["offset"],
        energy_scale=d["scale"],
        pixel_size=d["pixel_size"],
        name="EDS SI (FePt)",
        signal_type="EDS",
        metadata={"truth": truth, "k_factors": d["k_factors"], "not_lines": [DEMO_ROLL_OFF]},
        visible=False,
    )
    return [si, _haadf_layer(d["haadf"], d["pixel_size"], "HAADF (FePt)")]
