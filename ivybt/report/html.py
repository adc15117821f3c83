"""One self-contained HTML page from plotly figures: works offline, no CDN, no external CSS.

plotly.js (~4.5 MB) is inlined exactly once, with the first figure; later figures reuse it.
This module imports neither pandas nor plotly: it calls `fig.to_html` on the figures it is given.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import ivybt

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem; color: #1f2933; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #d9dee3; }
table.summary { border-collapse: collapse; font-size: 0.95rem; }
table.summary th, table.summary td { padding: 0.25rem 0.9rem; border-bottom: 1px solid #eef1f4; }
table.summary th { text-align: left; font-weight: 600; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
section.figure { margin-bottom: 1rem; overflow-x: auto; }
ul.notes { font-size: 0.9rem; color: #52606d; }
footer { margin-top: 2rem; font-size: 0.8rem; color: #7b8794; }
"""

_FIGURE_HEIGHT = "450px"  # used only when a figure sets no layout height of its own
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}  # no link to plotly's website


_GRID = "#EBF0F8"
LIGHT_TEMPLATE: dict[str, Any] = {
    "layout": {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"color": "#2a3f5f"},
        "xaxis": {
            "gridcolor": _GRID,
            "linecolor": _GRID,
            "zerolinecolor": _GRID,
            "automargin": True,
        },
        "yaxis": {
            "gridcolor": _GRID,
            "linecolor": _GRID,
            "zerolinecolor": _GRID,
            "automargin": True,
        },
    }
}
"""plotly_white's look in the few settings these charts use: the full named template is
~0.3 s to load and deep-copy in a report, a sixth of `ivybt grid`'s whole run."""


def bars_label(data: Any) -> str:
    """ ", Renko bricks (box 2, reversal 2)" for a run on Renko bricks, "" for standard bars.

    `data` is the run configuration's data section (`ivybt.config.DataConfig`) or its JSON
    form (a manifest's ``config["data"]``). Report and console headers append it, so a
    Renko run never reads like a standard-bar one.
    """
    get = data.get if isinstance(data, dict) else lambda name: getattr(data, name, None)
    if get("bars") != "renko":
        return ""
    renko = get("renko") or {}
    field = renko.get if isinstance(renko, dict) else lambda name: getattr(renko, name, None)
    if field("box") is not None:
        box = f"box {field('box'):g}"
    elif field("atr") is not None:
        box = f"ATR({field('atr')}) x {field('atr_mult') or 1.0:g} box"
        box += ", dynamic" if field("atr_dynamic") else ""
    else:
        box = "box from the grid"
    return f", Renko bricks ({box}, reversal {field('reversal') or 2})"


def render_html(
    title: str,
    *,
    summary_rows: Sequence[tuple[str, str]],
    sections: Sequence[tuple[str, object]],
    notes: Iterable[str] = (),
    blocks: Sequence[tuple[str, str]] = (),
    style: str = "",
) -> str:
    """A complete HTML page: title, a key/value table, one heading + figure per section, notes.

    Parameters
    ----------
    title : page title and top heading (plain text; escaped).
    summary_rows : (label, already formatted value) pairs, shown as a two-column table.
    sections : (heading, plotly figure) pairs, drawn in order. plotly.js is inlined with the
        first figure only, so the page opens offline and carries the library once.
    notes : plain-text lines shown as a list after the figures (escaped).
    blocks : (heading, HTML) pairs drawn after the summary table and before the figures;
        the HTML is the caller's, inserted as it is (build it with `html.escape`).
    style : CSS added to the page's own (for the classes `blocks` use).

    Returns
    -------
    str : the page. Nothing is written here; run folders write it (`ivybt.runs.folder`).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}{style}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{html.escape(title)}</h1></header>",
    ]
    if summary_rows:
        parts.append('<table class="summary">')
        parts.extend(
            f"<tr><th>{html.escape(str(label))}</th><td>{html.escape(str(value))}</td></tr>"
            for label, value in summary_rows
        )
        parts.append("</table>")
    for heading, block in blocks:
        parts.append(
            f'<section class="block"><h2>{html.escape(heading)}</h2>\n{block}\n</section>'
        )
    for number, (heading, figure) in enumerate(sections):
        body = figure.to_html(  # type: ignore[attr-defined]
            full_html=False,
            include_plotlyjs=number == 0,
            config=_PLOTLY_CONFIG,
            default_height=_FIGURE_HEIGHT,
        )
        parts.append(
            f'<section class="figure"><h2>{html.escape(heading)}</h2>\n{body}\n</section>'
        )
    notes = list(notes)
    if notes:
        parts.append('<ul class="notes">')
        parts.extend(f"<li>{html.escape(note)}</li>" for note in notes)
        parts.append("</ul>")
    parts.append(f"<footer>IvyBT {html.escape(ivybt.__version__)}</footer>")
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)
