"""summary.html of a batch: every job in a sortable table linking its report, the best jobs
by the batch's objective, and charts comparing the jobs.

The page works offline: the table is sorted by a few lines of inline JavaScript (click a
heading; again to reverse), and plotly.js is inlined once with the first chart
(`ivybt.report.html.render_html`). Data first, drawing second: `best_jobs` and
`table_rows` take the summary table (`ivybt.runs.batch_log.summary_frame`) and return
plain data; `batch_sections` draws the charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.report.backtest import format_metric
from ivybt.report.html import LIGHT_TEMPLATE, render_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

TABLE_COLUMNS = (
    "job",
    "command",
    "strategy",
    "symbols",
    "interval",
    "params",
    "state",
    "basis",
    "best_params",
    "total_return",
    "sharpe",
    "max_drawdown",
    "n_trades",
    "pbo",
    "dsr",
    "wfe",
    "seconds",
    "error",
)
"""The columns of the page's table of jobs (summary.parquet has more)."""
BEST_ROWS = 10
COMMAND_COLOURS = {
    "backtest": "#1f77b4",
    "grid": "#ff7f0e",
    "optimize": "#2ca02c",
    "walkforward": "#9467bd",
}
_TWO_DECIMALS = ("pbo", "dsr", "wfe")
_STYLE = """
table.jobs { border-collapse: collapse; font-size: 0.85rem; }
table.jobs th, table.jobs td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #eef1f4;
  white-space: nowrap; }
table.jobs th { text-align: left; font-weight: 600; background: #e4e7eb; cursor: pointer;
  position: sticky; top: 0; }
table.jobs th[aria-sort=ascending]::after { content: " \\25B2"; }
table.jobs th[aria-sort=descending]::after { content: " \\25BC"; }
table.jobs td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.jobs tr.failed td { color: #b42318; }
section.block { margin-bottom: 1rem; overflow-x: auto; }
"""
_SORT_JS = """<script>
(() => {
  for (const table of document.querySelectorAll('table.sortable')) {
    const headings = [...table.tHead.rows[0].cells];
    headings.forEach((th, column) => th.addEventListener('click', () => {
      const ascending = th.getAttribute('aria-sort') !== 'ascending';
      headings.forEach(h => h.removeAttribute('aria-sort'));
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      const body = table.tBodies[0];
      const key = row => row.cells[column].dataset.sort ?? row.cells[column].textContent;
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === '' || y === '') return (x === '') - (y === '');  // empty cells last
        const nx = Number(x), ny = Number(y);
        const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(row => body.appendChild(row));
    }));
  }
})();
</script>"""


def best_jobs(summary: pd.DataFrame, objective: str, n: int = BEST_ROWS) -> pd.DataFrame:
    """The `n` finished jobs with the highest `objective`, best first."""
    if summary.empty or objective not in summary:
        return summary.head(0)
    done = summary[(summary["state"] == "finished") & summary[objective].notna()]
    return done.sort_values(objective, ascending=False, kind="stable").head(n)


def table_rows(
    summary: pd.DataFrame, columns: Sequence[str] = TABLE_COLUMNS
) -> list[list[tuple[str, str, str | None]]]:
    """Each job's cells for the page's table: (shown text, sort key, link or None)."""
    rows = []
    for record in summary.to_dict("records"):
        cells = []
        for name in columns:
            value = record.get(name)
            link = record.get("report") if name == "job" else None
            link = link if isinstance(link, str) and link else None
            cells.append((_shown(name, value), _sort_key(value), link))
        rows.append(cells)
    return rows


def batch_sections(summary: pd.DataFrame, *, objective: str) -> list[tuple[str, go.Figure]]:
    """The charts of summary.html: the finished jobs ranked by `objective` (one bar each,
    coloured by command) and each job's total return against its maximum drawdown."""
    import plotly.graph_objects as go

    done = summary[summary["state"] == "finished"] if not summary.empty else summary
    ranked = (
        done[done[objective].notna()].sort_values(objective, kind="stable") if len(done) else done
    )
    bars = go.Figure()
    scatter = go.Figure()
    for command, colour in COMMAND_COLOURS.items():
        part = ranked[ranked["command"] == command] if len(ranked) else ranked
        if len(part):
            bars.add_trace(
                go.Bar(
                    x=part[objective].tolist(),
                    y=part["job"].tolist(),
                    orientation="h",
                    name=command,
                    marker={"color": colour},
                    customdata=part["basis"].tolist(),
                    hovertemplate=f"%{{y}}<br>{objective} %{{x:.3f}}"
                    "<br>%{customdata}<extra></extra>",
                )
            )
        points = (
            done[
                (done["command"] == command)
                & done["total_return"].notna()
                & done["max_drawdown"].notna()
            ]
            if len(done)
            else done
        )
        if len(points):
            scatter.add_trace(
                go.Scatter(
                    x=points["max_drawdown"].tolist(),
                    y=points["total_return"].tolist(),
                    mode="markers",
                    name=command,
                    marker={"color": colour, "size": 9},
                    text=points["job"].tolist(),
                    customdata=points["basis"].tolist(),
                    hovertemplate="%{text}<br>total return %{y:.1%}, max drawdown %{x:.1%}"
                    "<br>%{customdata}<extra></extra>",
                )
            )
    empty = {
        "text": "no finished job yet",
        "showarrow": False,
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
    }
    bars.update_layout(
        template=LIGHT_TEMPLATE,
        height=max(300, 60 + 22 * len(ranked)),
        xaxis_title=objective,
        yaxis={
            "automargin": True,
            "type": "category",
            "categoryorder": "array",
            "categoryarray": ranked["job"].tolist() if len(ranked) else [],
        },
        barmode="overlay",
        legend_title_text="command",
        margin={"l": 10, "r": 10, "t": 30},
        annotations=[] if len(ranked) else [empty],
    )
    scatter.update_layout(
        template=LIGHT_TEMPLATE,
        height=450,
        xaxis_title="max drawdown",
        yaxis_title="total return",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        legend_title_text="command",
        annotations=[] if len(done) else [empty],
    )
    return [(f"Jobs by {objective}", bars), ("Total return against maximum drawdown", scatter)]


def batch_report_html(
    summary: pd.DataFrame, *, title: str, objective: str, source: str = ""
) -> str:
    """The whole summary.html page (nothing is written here)."""
    states = summary["state"].value_counts().to_dict() if len(summary) else {}
    shown_states = ", ".join(f"{n} {state}" for state, n in states.items())
    seconds = float(summary["seconds"].sum()) if "seconds" in summary else 0.0
    rows = [
        ("Jobs", f"{len(summary)} ({shown_states or 'none'})"),
        ("Ranked by", objective),
        ("Job time, all workers", f"{seconds:,.1f} s"),
    ]
    if source:
        rows.insert(0, ("Batch file", source))
    best = best_jobs(summary, objective)
    blocks = [
        (
            f"Best jobs by {objective}",
            _table_html(
                best,
                [
                    "job",
                    "command",
                    "strategy",
                    "symbols",
                    "basis",
                    "best_params",
                    objective,
                    "total_return",
                    "max_drawdown",
                    "pbo",
                    "dsr",
                ],
                sortable=False,
            ),
        ),
        ("Every job (click a heading to sort)", _table_html(summary, TABLE_COLUMNS) + _SORT_JS),
    ]
    notes = [
        "basis: 'backtest' is one parameter set on the whole range; 'in-sample best' is a "
        "grid's or search's best combination on the bars it was chosen on, an optimistic "
        "figure to read with its PBO and DSR; 'out-of-sample' is a walk-forward's stitched "
        "out-of-sample windows (pbo and dsr: the mean over its folds).",
        "Each job's name links to its report.html; its run folder is jobs/<name>/.",
    ]
    return render_html(
        title,
        summary_rows=rows,
        sections=batch_sections(summary, objective=objective),
        notes=notes,
        blocks=blocks,
        style=_STYLE,
    )


def _table_html(frame: pd.DataFrame, columns: Sequence[str], *, sortable: bool = True) -> str:
    columns = [name for name in dict.fromkeys(columns) if name in frame or frame.empty]
    if frame.empty:
        return "<p>No job yet.</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    body = []
    for record, cells in zip(frame.to_dict("records"), table_rows(frame, columns), strict=True):
        shown = []
        for name, (text, key, link) in zip(columns, cells, strict=True):
            content = html.escape(text)
            if link:
                content = f'<a href="{html.escape(link, quote=True)}">{content}</a>'
            numeric = name in _NUMBERS
            attributes = f' data-sort="{html.escape(key, quote=True)}"' if numeric else ""
            attributes += ' class="number"' if numeric else ""
            shown.append(f"<td{attributes}>{content}</td>")
        state = html.escape(str(record.get("state", "")), quote=True)
        body.append(f'<tr class="{state}">{"".join(shown)}</tr>')
    kind = "jobs sortable" if sortable else "jobs"
    return (
        f'<table class="{kind}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


_NUMBERS = frozenset({*METRIC_NAMES, "pbo", "dsr", "wfe", "seconds", "n_evaluated"})
"""Summary columns shown as numbers (docs/metrics.md's metrics and the study statistics)."""


def _shown(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if name == "seconds":
        return f"{float(value):,.1f} s"
    if name in _TWO_DECIMALS:
        return f"{float(value):.2f}"
    if name in _NUMBERS:
        return format_metric(name, value)
    return str(value)


def _sort_key(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, int | float) else str(value)
