"""A clickable periodic table for picking the elements to map."""

from __future__ import annotations

from qtpy.QtWidgets import QDialog, QDialogButtonBox, QGridLayout, QPushButton, QVBoxLayout, QWidget

__all__ = ["PeriodicTableDialog", "table_position"]

#: atomic number of the first element of each period (and of the next, unseen one)
_PERIOD_STARTS = (1, 3, 11, 19, 37, 55, 87, 119)


def table_position(z: int) -> tuple[int, int]:
    """(row, column) of element ``z`` in the 18-column periodic table.

    La–Yb and Ac–No go to rows 8–9 below the table. Computed from the period lengths
    2, 8, 8, 18, 18, 32, 32.

    Examples
    --------
    >>> table_position(26)  # Fe: period 4, group 8
    (3, 7)
    """
    period = max(i for i, start in enumerate(_PERIOD_STARTS) if start <= z)
    idx = z - _PERIOD_STARTS[period]
    length = _PERIOD_STARTS[period + 1] - _PERIOD_STARTS[period]
    if length == 2:
        return period, 0 if idx == 0 else 17
    if length == 8:
        return period, idx if idx < 2 else idx + 10
    if length == 18:
        return period, idx
    # 32-long periods: two s, fourteen f (La..Yb / Ac..No) below, then Lu/Lr.. in column 3
    if idx < 2:
        return period, idx
    if idx < 16:
        return period + 3, idx + 1
    return period, idx - 14


class PeriodicTableDialog(QDialog):
    """Elements Z 1–94 (symbols from xraylib) as toggle buttons; :meth:`selected` gives the
    checked symbols in order of Z."""

    def __init__(self, selected=(), parent: QWidget | None = None):
        import xraylib

        super().__init__(parent)
        self.setWindowTitle("Pick elements")
        grid = QGridLayout()
        grid.setSpacing(2)
        self.buttons: dict[str, QPushButton] = {}
        for z in range(1, 95):
            symbol = xraylib.AtomicNumberToSymbol(z)
            button = QPushButton(symbol)
            button.setCheckable(True)
            button.setChecked(symbol in selected)
            button.setFixedWidth(34)
            grid.addWidget(button, *table_position(z))
            self.buttons[symbol] = button
        box = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(box)

    def selected(self) -> list[str]:
        return [symbol for symbol, button in self.buttons.items() if button.isChecked()]
