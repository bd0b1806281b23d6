"""The features table of an objects layer: core column names <-> column names with units.

The core (:mod:`napari_cryomat.core.measure`, :mod:`~napari_cryomat.core.tracking`) speaks plain
names (``area``, ``centroid_x``) in Å; the table a user sees, exports and finds in
``layer.features`` carries the unit in the name (``area (Å²)``), as napari's features table and
a CSV reader show it. Pure pandas, no Qt, no napari.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"label": [1, 2], "area": [4.0, 8.0], "solidity": [1.0, 0.9]})
>>> list(with_units(table, "Å").columns)
['index', 'label', 'area (Å²)', 'solidity']
>>> list(core_names(with_units(table, "Å")).columns)
['label', 'area', 'solidity']
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["INDEX", "base_name", "column_for", "core_names", "unit_of", "with_units"]

#: napari's key from a label value to its row of ``Labels.features`` (the status bar reads it).
INDEX = "index"

# power of the length unit of each measured quantity (1: Å, 2: Å², 3: Å³)
_LENGTH_POWER = {
    "centroid_z": 1, "centroid_y": 1, "centroid_x": 1, "perimeter": 1, "equivalent_diameter": 1,
    "major_axis_length": 1, "minor_axis_length": 1, "feret_diameter_max": 1,
    "area": 2, "surface_area": 2, "volume": 3,
}
_OTHER_UNITS = {"orientation": "°"}
_POWER_SIGN = {1: "", 2: "²", 3: "³"}
_WITH_UNIT = re.compile(r"^(?P<name>.+?) \((?P<unit>[^()]*)\)$")


def unit_of(name: str, length_unit: str = "Å") -> str | None:
    """Unit of the core quantity ``name`` ("Å²" for ``area``), None for a pure number."""
    if name in _LENGTH_POWER:
        return f"{length_unit}{_POWER_SIGN[_LENGTH_POWER[name]]}"
    return _OTHER_UNITS.get(name)


def _named(name: str, length_unit: str) -> str:
    unit = unit_of(name, length_unit)
    return f"{name} ({unit})" if unit else name


def base_name(column: str) -> str:
    """``"area (Å²)"`` -> ``"area"``; a name without a unit is returned as is."""
    match = _WITH_UNIT.match(str(column))
    return match.group("name") if match else str(column)


def with_units(table: pd.DataFrame, length_unit: str = "Å", *, key: str = "label") -> pd.DataFrame:
    """The core's table as layer features: units in the column names, and napari's ``index``
    column (the label value of each row, taken from column ``key``) in front.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`~napari_cryomat.core.measure.measure` (or ``measure_series``,
        ``link_table``), plain column names, lengths in ``length_unit``.
    length_unit : str
        "Å" for a calibrated layer, "px" for one in napari's unit-less pixels.
    key : str
        Column holding the label value of each row in the layer the features belong to.
    """
    features = table.rename(columns={c: _named(c, length_unit) for c in table.columns})
    features = features.drop(columns=[INDEX], errors="ignore")
    features.insert(0, INDEX, table[key].to_numpy() if key in table else [])
    return features.reset_index(drop=True)


def core_names(features: pd.DataFrame) -> pd.DataFrame:
    """Layer features back to the core's plain names (napari's ``index`` column dropped)."""
    table = features.drop(columns=[INDEX], errors="ignore")
    return table.rename(columns={c: base_name(c) for c in table.columns})


def column_for(features: pd.DataFrame, name: str) -> str | None:
    """The column of ``features`` holding core quantity ``name`` (with its unit), or None."""
    for column in features.columns:
        if base_name(column) == name:
            return column
    return None
