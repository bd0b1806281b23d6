"""The plots' one-line legends wrap between entries, never inside one."""

from __future__ import annotations

from napari_cryomat.widgets._base.plots import legend_html

ENTRIES = [("gaussian (runs off the top)", "#4f8ff7", "&#8212;&#9679;"),
           ("spectral", "#f03060", "&#8212;&#9679;"), ("chosen", "#ffff00", "&#9733;")]


def _lines(html: str, width: float) -> list[str]:
    from qtpy.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setHtml(html)
    doc.setTextWidth(width)
    doc.documentLayout().documentSize()  # lays the text out
    lines = []
    block = doc.begin()
    while block.isValid():
        layout = block.layout()
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            lines.append(block.text()[line.textStart():line.textStart() + line.textLength()].strip())
        block = block.next()
    return lines


def _ideal_width(html: str) -> float:
    from qtpy.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setHtml(html)
    return doc.idealWidth()


def test_legend_wraps_between_entries_not_inside_one(qapp):
    html = legend_html(ENTRIES)
    whole = ["\u2014\u25cf gaussian (runs off the top)", "\u2014\u25cf spectral", "\u2605 chosen"]
    # from the width of the widest entry alone (narrower, Qt must break inside one) to one line
    widest = max(_ideal_width(legend_html([entry])) for entry in ENTRIES)
    one_line = _ideal_width(html)
    assert one_line > widest + 50
    wrapped = 0
    for width in range(int(widest) + 2, int(one_line) + 10, 4):
        lines = _lines(html, width)
        wrapped += len(lines) > 1
        for line in lines:
            # every line is a run of whole entries
            # word joiners hold a symbol's characters together; no-break spaces the words of a name
            rest = line.replace("\u2060", "").replace("\u00a0", " ")
            while rest:
                start = next((e for e in whole if rest.startswith(e)), None)
                assert start is not None, f"at {width} px a line splits an entry: {lines}"
                rest = rest[len(start):].lstrip()
    assert wrapped > 10
