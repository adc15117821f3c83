"""Plotly tables whose every header and cell fits its column.

plotly.js clips a table cell's text at the column's edge ("total_returr", "ax_drawdov") and
splits columns evenly by default. `table_figure` breaks long headers at underscores and
spaces, sizes each column in pixels from its longest line (header in bold, cells), and gives
the figure the width the columns add up to, so nothing is clipped at any window width: a
table wider than the page scrolls sideways in its section (`ivybt.report.html`) instead.

Widths are estimated from the text, without a browser, with per-character advances at least
as wide as those of the fonts plotly asks for or falls back to (Open Sans, Verdana, Arial,
DejaVu Sans); tests/test_browser_reports.py measures the drawn text in Chromium.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ivybt.report.html import LIGHT_TEMPLATE

if TYPE_CHECKING:
    import plotly.graph_objects as go

FONT_SIZE = 12  # px, plotly's default
CELL_PADDING = 8  # px on each side of a cell's text (plotly.js's cell text offset)
WRAP_AT = 9  # header lines are joined up to this many characters (or the longest word)
HEADER_FILL = "#e4e7eb"
ROW_HEIGHT = 22  # px per cell line
MARGIN = 10  # px around the table

_NARROW = frozenset("ijlt.,:;'|!()[]{}/\\ f r")
_WIDE = frozenset("mwMW%@#&—")


def text_width(text: str, *, bold: bool = False, font_size: float = FONT_SIZE) -> float:
    """An upper estimate of `text`'s drawn width in pixels (one line, markup left out)."""
    plain = html.unescape(text.replace("<b>", "").replace("</b>", ""))
    em = 0.0
    for char in plain:
        if char in _NARROW:
            em += 0.42
        elif char in _WIDE:
            em += 1.1
        elif char.isupper():
            em += 0.8
        else:
            em += 0.68
    return em * font_size * (1.12 if bold else 1.0)


def wrap_header(label: str, *, width: int = WRAP_AT) -> list[str]:
    """`label` as header lines: split at underscores and spaces, then joined (with the
    separator) while a line stays within `width` characters or the longest word."""
    words: list[str] = []
    seps: list[str] = []
    current = ""
    for char in label:
        if char in "_ ":
            words.append(current)
            seps.append(char)
            current = ""
        else:
            current += char
    words.append(current)
    limit = max(width, *(len(w) for w in words))
    lines = [words[0]]
    for sep, word in zip(seps, words[1:], strict=True):
        if len(lines[-1]) + 1 + len(word) <= limit:
            lines[-1] += sep + word
        else:
            lines.append(word)
    return lines


def column_widths(header: Sequence[Sequence[str]], columns: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width in pixels: its widest header line (bold) or cell, plus padding."""
    widths = []
    for lines, cells in zip(header, columns, strict=True):
        widest = max(
            [text_width(line, bold=True) for line in lines]
            + [text_width(str(cell)) for cell in cells]
        )
        widths.append(int(widest + 2 * CELL_PADDING + 2))
    return widths


def table_figure(
    header: Sequence[str],
    columns: Sequence[Sequence[str]],
    *,
    fills: Sequence[str] | None = None,
    align: str | Sequence[str] = "right",
    max_height: int = 700,
) -> go.Figure:
    """A plotly table of already formatted `columns` under `header`, nothing clipped.

    Parameters
    ----------
    header : one label per column; long labels are broken at underscores and spaces
        (`wrap_header`) and shown in bold.
    columns : one sequence of cell strings per column, all of one length.
    fills : a background colour per column (default white).
    align : "left", "center" or "right", or one per column.
    max_height : the figure's height cap in pixels; longer tables scroll inside.

    Returns
    -------
    plotly Figure with one `go.Table`, `columnwidth` in pixels (`column_widths`) and a layout
    width equal to their sum plus margins.
    """
    import plotly.graph_objects as go

    lines = [wrap_header(str(label)) for label in header]
    widths = column_widths(lines, columns)
    n_rows = max((len(c) for c in columns), default=0)
    header_lines = max((len(label) for label in lines), default=1)
    header_height = ROW_HEIGHT * header_lines + 6
    figure = go.Figure(
        go.Table(
            columnwidth=widths,
            header={
                "values": ["<br>".join(f"<b>{line}</b>" for line in label) for label in lines],
                "fill": {"color": HEADER_FILL},
                "align": "center",
                "height": header_height,
                "font": {"size": FONT_SIZE},
            },
            cells={
                "values": [list(c) for c in columns],
                "align": list(align) if not isinstance(align, str) else align,
                "fill": {"color": list(fills) if fills is not None else "white"},
                "height": ROW_HEIGHT,
                "font": {"size": FONT_SIZE},
            },
        )
    )
    layout: dict[str, Any] = {
        "template": LIGHT_TEMPLATE,
        "width": sum(widths) + 2 * MARGIN,
        "height": min(header_height + ROW_HEIGHT * max(n_rows, 1) + 2 * MARGIN + 4, max_height),
        "margin": {"l": MARGIN, "r": MARGIN, "t": MARGIN, "b": MARGIN},
    }
    figure.update_layout(**layout)
    return figure
