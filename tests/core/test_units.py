"""The one units module: conversions and axis calibration."""

import math

import pytest

from napari_cryomat.core import units as U


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(1, "nm", 10), (1, "nanometer", 10), (2, "µm", 2e4), (2, "um", 2e4), (1, "Å", 1), (1, "angstrom", 1),
     (3, "pm", 0.03), (1e-10, "m", 1), (1, "micron", 1e4)],
)
def test_lengths(value, unit, expected):
    assert U.length_to_angstrom(value, unit) == pytest.approx(expected)


def test_reciprocal_energy_time():
    assert U.reciprocal_to_inverse_angstrom(2, "1/nm") == pytest.approx(0.2)
    assert U.reciprocal_to_inverse_angstrom(1, "nm^-1") == pytest.approx(0.1)
    assert U.energy_to_ev(1.5, "keV") == 1500
    assert U.time_to_seconds(20, "ms") == pytest.approx(0.02)


def test_unknown_units_are_named():
    with pytest.raises(ValueError, match="'eV' is not a length"):
        U.length_to_angstrom(1, "eV")


@pytest.mark.parametrize(
    ("scale", "unit", "kind", "step", "napari_unit"),
    [(0.2, "nm", "length", 2.0, "angstrom"), (0.05, "1/nm", "reciprocal", 0.005, "1/angstrom"),
     (0.01, "keV", "energy", 10.0, "eV"), (0.5, "ms", "time", 5e-4, "s"), (1, "<undefined>", "pixel", 1, "pixel"),
     (math.nan, "nm", "pixel", 1, "pixel"), (0, "nm", "pixel", 1, "pixel"), (None, "nm", "pixel", 1, "pixel")],
)
def test_calibrate_axis(scale, unit, kind, step, napari_unit):
    cal = U.calibrate_axis(scale, unit)
    assert (cal.kind, cal.unit) == (kind, napari_unit)
    assert cal.scale == pytest.approx(step)


def test_wavelength_axis_stays_in_nm():
    cal = U.calibrate_axis(0.5, "nm", spectral_length_is_wavelength=True)
    assert (cal.kind, cal.scale, cal.unit) == ("wavelength", 0.5, "nm")


@pytest.mark.parametrize(("label", "unit", "expected"),
                         [("t", None, True), ("Frame", None, True), ("z", None, False), ("0", "s", True),
                          ("0", "angstrom", False)])
def test_time_axis_guess(label, unit, expected):
    assert U.is_time_axis(label, unit) is expected


def test_readable_lengths_say_a_position_in_one_unit_that_reads_at_a_glance():
    from napari_cryomat.core.units import readable_lengths

    assert readable_lengths(120.0, 4567.4) == "120, 4567 Å"  # a TEM field: Å, as everywhere in the plugin
    assert readable_lengths(5158872.0, 10317744.0) == "516, 1032 µm"  # hyperspy's Bruker SEM map
    assert readable_lengths(0.0, 25000.0) == "0.0, 2.5 µm"
    assert readable_lengths(2.5e8) == "25.0 mm"
    assert readable_lengths(-30000.0) == "-3.0 µm"
    with pytest.raises(ValueError, match="angstrom"):
        readable_lengths(1.0, float("nan"))
