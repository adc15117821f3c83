"""The report of a grid search: metric surfaces and the best combinations (plotly), glued into
one HTML page.

The numbers come from `ivybt.report.grid_data` (pandas only, tested without plotly); the
functions here only draw them. The grid table's contract is in `ivybt.report.grid_data`.
plotly is imported inside the drawing functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.report.backtest import format_metric
from ivybt.report.evidence import evidence_figures
from ivybt.report.grid_data import (
    axis_values,
    heatmap_axes,
    metric_column,
    param_column,
    surface_data,
    surfaces_data,
    top_combinations,
    valid_mask,
    varying_params,
)
from ivybt.report.html import LIGHT_TEMPLATE, render_html
from ivybt.report.table import table_figure

if TYPE_CHECKING:
    import plotly.graph_objects as go

TOP_N = 20  # rows of the "best combinations" table
MAX_TICKS = 15  # axes with at most this many parameter values get one tick per value
COLORSCALE = "Viridis"  # every metric: higher is brighter (and better, volatility aside)
FENCE_IQR = 3.0  # heatmap colours stop at the quartiles -/+ this many interquartile ranges
BEST_COLOR = "#d62728"  # the best combination's star on heatmaps and line on curves

# d3 formats of hover labels and colour bars; metrics not listed use _RATIO_FORMAT
_PCT_METRICS = frozenset(
    {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "avg_win", "avg_loss",
     "exposure"}
)  # fmt: skip
_COUNT_METRICS = frozenset({"n_trades"})
_MONEY_METRICS = frozenset({"gross_profit", "gross_loss"})
_RATIO_FORMAT = ".3f"
_OBJECTIVE_FILL = "#fff7d6"  # the objective's column in the table of best combinations


def grid_figures(
    table: pd.DataFrame,
    *,
    param_names: Sequence[str],
    metrics: Sequence[str],
    objective: str,
) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs drawn from the grid table; the numbers come from `grid_data`.

    Only parameters that take two or more values in `table` count as axes.

    1. Two or more such parameters: a heatmap over two of them, with a dropdown switching
       among `metrics` (plus `objective` if missing; `objective` shown first). Each cell is
       the max over the other parameters, and the title says so. One parameter: a line chart
       of the metric over it, with the same dropdown. No varying parameter: no chart.
    2. Three or more: a heatmap of `objective` over the same two axes, one slice per value of
       the third parameter (the next with the most values) chosen with a slider; parameters
       beyond the third are reduced by max. All slices share one colour range.
    3. A table of the best `TOP_N` valid combinations by `objective`.

    Axes (the convention of every IvyBT heatmap, `ivybt.report.grid_data.heatmap_axes`):
    the two varying parameters with the most distinct values; x is the one that comes first
    in the strategy's parameter order, y the later one (sma_cross: fast across, slow up).

    Colours (`robust_range`): each heatmap's colour scale spans its finite cells, clipped
    to Tukey's far-out fences (the quartiles -/+ `FENCE_IQR` interquartile ranges), so one
    outlier (a Sharpe of -40 on a combination with two trades) does not wash the rest out.
    Fences rather than fixed percentiles (xarray's p2-p98): a p2 of 25 cells still lies
    halfway to a lone outlier, and p98 would flatten the best 2% of the cells, the region
    a researcher looks at. When the range is clipped the colour bar says so; cells beyond
    take the end colours, and hovering shows every cell's own value.

    The best valid combination by `objective` (the one metrics.json names) is marked: a red
    star on its cell on every heatmap (on its own slice of the sliced heatmap), a dashed
    vertical line on curves.

    Combinations with ``valid == False`` are left out everywhere (empty cells); infinite
    values (a profit factor without losses) are drawn as empty cells too. Raises
    `ConfigError` (a ValueError) for unknown parameter or metric names.
    """
    import plotly.graph_objects as go

    names = [_bare(param_column(table, name)) for name in param_names]
    shown = _metric_list(table, metrics, objective)
    varying = varying_params(table, names)
    best = top_combinations(table, objective=shown[0], n=1)
    sections: list[tuple[str, go.Figure]] = []
    axes = heatmap_axes(table, names)
    if axes is not None:
        x, y = axes
        others = [n for n in varying if n not in (x, y)]
        heading = f"Metric surface: {x} × {y}"
        heading += f" (max over {', '.join(others)})" if others else ""
        sections.append((heading, _metric_heatmap(go, table, x, y, shown, others, best)))
        if others:
            third = max(others, key=lambda n: table[param_column(table, n)].nunique())
            rest = [n for n in others if n != third]
            heading = f"{shown[0]}: {x} × {y}, one slice per {third} value"
            heading += f"; max over {', '.join(rest)}" if rest else ""
            sections.append(
                (heading, _slice_heatmap(go, table, (x, y, third), shown[0], rest, best))
            )
    elif len(varying) == 1:
        x = varying[0]
        sections.append((f"Metric curve over {x}", _metric_line(go, table, x, shown, best)))
    top = _top_table(table, names, shown, shown[0])
    sections.append((f"Best {TOP_N} valid combinations by {shown[0]}", top))
    return sections


def grid_sections(
    table: pd.DataFrame,
    *,
    param_names: Sequence[str],
    metrics: Sequence[str],
    objective: str,
    evidence: Mapping[str, Any] | None = None,
) -> list[tuple[str, go.Figure]]:
    """Every (heading, figure) of the grid report, in its order: `grid_figures`, then the
    overfitting evidence (`ivybt.report.evidence.evidence_figures`). report.html and
    `GridResult.plot()` both draw these."""
    figures = grid_figures(table, param_names=param_names, metrics=metrics, objective=objective)
    return figures + evidence_figures(evidence)


def robust_range(values: np.ndarray) -> tuple[dict[str, float], bool]:
    """({"zmin", "zmax"}, clipped) of a heatmap's colour scale over `values`.

    The range of the finite values, clipped to Tukey's far-out fences: Q1 - k IQR and
    Q3 + k IQR, k = `FENCE_IQR`, quartiles by numpy's linear interpolation. `clipped` is True
    when a fence cuts the range (some cell lies beyond it). ({}, False) when there are fewer
    than two distinct finite values (plotly's own range).

    Examples
    --------
    >>> robust_range(np.array([-40.0, 0.1, 0.2, 0.3, 0.4, 0.5]))
    ({'zmin': -0.625, 'zmax': 0.5}, True)
    """
    finite = np.asarray(values, dtype="float64").ravel()
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {}, False
    low, high = float(finite.min()), float(finite.max())
    if not high > low:
        return {}, False
    q1, q3 = (float(v) for v in np.percentile(finite, (25.0, 75.0)))
    fence_low, fence_high = q1 - FENCE_IQR * (q3 - q1), q3 + FENCE_IQR * (q3 - q1)
    zmin, zmax = max(low, fence_low), min(high, fence_high)
    if not zmax > zmin:  # most cells equal: the quartiles coincide
        return {"zmin": low, "zmax": high}, False
    return {"zmin": zmin, "zmax": zmax}, (zmin > low or zmax < high)


def colorbar_title(metric: str, clipped: bool) -> str:
    """The colour bar's title: the metric, and a note when its range is clipped."""
    if not clipped:
        return metric
    note = f"clipped to quartiles<br>± {FENCE_IQR:g} IQR"
    return f"{metric}<br><span style='font-size:10px'>{note}</span>"


def _metric_list(table: pd.DataFrame, metrics: Sequence[str], objective: str) -> list[str]:
    objective = metric_column(table, objective)
    chosen = [metric_column(table, m) for m in metrics]
    return [objective, *dict.fromkeys(m for m in chosen if m != objective)]


def _format(metric: str, *, axis: bool = False) -> str:
    if metric in _PCT_METRICS:
        return ".1%" if axis else ".2%"
    if metric in _COUNT_METRICS:
        return ",.0f"
    if metric in _MONEY_METRICS:
        return ",.0f" if axis else ",.2f"
    return ".2f" if axis else _RATIO_FORMAT


def _heatmap(go: Any, pivot: pd.DataFrame, metric: str, **kwargs: Any) -> Any:
    """A heatmap trace of `pivot`; without `zmin`/`zmax` in `kwargs`, its colours span
    `robust_range` of the cells and the colour bar says so."""
    x, y = pivot.columns.name, pivot.index.name
    z = _finite(pivot.to_numpy(dtype="float64"))
    given = {k: kwargs.pop(k) for k in ("zmin", "zmax") if k in kwargs}
    zrange, clipped = (given, False) if given else robust_range(z)
    title = colorbar_title(metric, clipped)
    return go.Heatmap(
        z=z,
        x=pivot.columns.to_numpy(),
        y=pivot.index.to_numpy(),
        name=metric,
        colorscale=COLORSCALE,
        colorbar={"title": {"text": title}, "tickformat": _format(metric, axis=True)},
        hoverongaps=False,
        hovertemplate=(
            f"{x} %{{x}}<br>{y} %{{y}}<br>{metric} %{{z:{_format(metric)}}}<extra></extra>"
        ),
        **zrange,
        **kwargs,
    )


def _best_marker(
    go: Any, best: pd.DataFrame, x: str, y: str, objective: str, **kwargs: Any
) -> Any:
    """A red star on the best combination's (x, y) cell."""
    row = best.iloc[0]
    x_value, y_value = float(row[param_column(best, x)]), float(row[param_column(best, y)])
    text = f"best by {objective}: {objective} {format_metric(objective, row[objective])}"
    return go.Scatter(
        x=[x_value],
        y=[y_value],
        mode="markers",
        name=f"best by {objective}",
        showlegend=False,
        marker={"symbol": "star", "size": 18, "color": BEST_COLOR,
                "line": {"color": "white", "width": 1.5}},
        hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{text}<extra></extra>",
        **kwargs,
    )  # fmt: skip


def _metric_heatmap(
    go: Any,
    table: pd.DataFrame,
    x: str,
    y: str,
    metrics: list[str],
    others: list[str],
    best: pd.DataFrame,
) -> go.Figure:
    reduced = f", max over {', '.join(others)}" if others else ""
    star = f"; ★ best by {metrics[0]}" if len(best) else ""
    titles = [f"{m} by {x} × {y}{reduced}{star}" for m in metrics]
    pivots = surfaces_data(table, x=x, y=y, metrics=metrics, reduce="max")
    traces = [_heatmap(go, pivots[m], m, visible=k == 0) for k, m in enumerate(metrics)]
    if len(best):
        traces.append(_best_marker(go, best, x, y, metrics[0]))
    fig = go.Figure(traces)  # one validation of the list, not one per add_trace
    _layout(fig, title=titles[0], x=x, y=y, height=560)
    _ticks(fig, pivots[metrics[0]])
    _dropdown(fig, metrics, titles, always=len(best))
    _note_if_empty(fig, table)
    return fig


def _metric_line(
    go: Any, table: pd.DataFrame, x: str, metrics: list[str], best: pd.DataFrame
) -> go.Figure:
    titles = [f"{m} by {x}" for m in metrics]
    curves = surfaces_data(table, x=x, metrics=metrics)
    traces = [
        go.Scatter(
            x=curve[x].to_numpy(),
            y=_finite(curve[metric].to_numpy(dtype="float64")),
            mode="lines+markers",
            name=metric,
            visible=k == 0,
            line={"color": "#1f77b4", "width": 1.5},
            marker={"size": 6},
            hovertemplate=f"{x} %{{x}}<br>{metric} %{{y:{_format(metric)}}}<extra></extra>",
        )
        for k, (metric, curve) in enumerate(curves.items())
    ]
    fig = go.Figure(traces)
    _layout(fig, title=titles[0], x=x, y=metrics[0], height=450)
    values = curves[metrics[0]][x]  # every curve's x: each distinct value of x
    if len(values) <= MAX_TICKS:
        fig.update_xaxes(tickvals=values.to_numpy())
    fig.update_yaxes(tickformat=_format(metrics[0], axis=True))
    if len(best):
        fig.add_vline(
            x=float(best.iloc[0][param_column(best, x)]),
            line={"color": BEST_COLOR, "width": 1.5, "dash": "dash"},
            annotation_text=f"best by {metrics[0]}",
            annotation_position="top",
        )
    _dropdown(fig, metrics, titles, yaxis=True)
    _note_if_empty(fig, table)
    return fig


def _slice_heatmap(
    go: Any,
    table: pd.DataFrame,
    axes: tuple[str, str, str],
    objective: str,
    rest: list[str],
    best: pd.DataFrame,
) -> go.Figure:
    x, y, third = axes
    values = axis_values(table, third).to_numpy()
    pivots = [
        surface_data(table, x=x, y=y, metric=objective, reduce="max", fixed={third: v})
        for v in values
    ]
    cells = np.concatenate([_finite(p.to_numpy()).ravel() for p in pivots])
    zrange, clipped = robust_range(cells)
    reduced = f", max over {', '.join(rest)}" if rest else ""
    titles = [f"{objective} by {x} × {y} at {third} = {v:g}{reduced}" for v in values]
    traces = []
    for k, pivot in enumerate(pivots):
        trace = _heatmap(go, pivot, objective, visible=k == 0, **zrange)
        trace.colorbar.title.text = colorbar_title(objective, clipped)
        traces.append(trace)
    on_slice = [False] * len(values)
    if len(best):
        best_value = float(best.iloc[0][param_column(best, third)])
        on_slice = [bool(np.isclose(v, best_value, rtol=1e-12, atol=1e-12)) for v in values]
        titles = [t + ("; ★ best by " + objective if on else "")
                  for t, on in zip(titles, on_slice, strict=True)]  # fmt: skip
        traces.append(_best_marker(go, best, x, y, objective, visible=on_slice[0]))
    marker = [[on] for on in on_slice] if len(best) else [[] for _ in values]
    steps = [
        {
            "label": f"{v:g}",
            "method": "update",
            "args": [{"visible": _onehot(len(values), k) + marker[k]}, {"title.text": titles[k]}],
        }
        for k, v in enumerate(values)
    ]
    fig = go.Figure(traces)
    _layout(fig, title=titles[0], x=x, y=y, height=620)
    _ticks(fig, pivots[0])
    fig.update_layout(
        sliders=[
            {
                "active": 0,
                "currentvalue": {"prefix": f"{third} = "},
                "pad": {"t": 50},
                "steps": steps,
            }
        ]
    )
    _note_if_empty(fig, table)
    return fig


def _top_table(
    table: pd.DataFrame, names: list[str], metrics: list[str], objective: str
) -> go.Figure:
    top = top_combinations(table, objective=objective, n=TOP_N)
    header = ["rank", "row", *names, *metrics]
    columns: list[list[str]] = [
        [str(k + 1) for k in range(len(top))],
        [str(label) for label in top.index],
    ]
    columns += [[_param_text(v) for v in top[param_column(table, n)]] for n in names]
    columns += [[format_metric(m, v) for v in top[m]] for m in metrics]
    fills = [_OBJECTIVE_FILL if h == objective else "white" for h in header]
    fig = table_figure(header, columns, fills=fills)
    if len(top) == 0:
        _note(fig, "No valid combination")
    return fig


def _param_text(value: float) -> str:
    number = float(value)
    if np.isnan(number):
        return "n/a"
    return f"{int(number):d}" if number.is_integer() else f"{number:g}"


def _finite(values: np.ndarray) -> np.ndarray:
    """±inf (a profit factor with no loss) drawn as an empty cell: plotly.js cannot colour it."""
    return np.where(np.isfinite(values), values, np.nan)


def _onehot(n: int, k: int) -> list[bool]:
    return [i == k for i in range(n)]


def _dropdown(
    fig: go.Figure,
    metrics: list[str],
    titles: list[str],
    *,
    yaxis: bool = False,
    always: int = 0,
) -> None:
    """A dropdown showing one metric's trace at a time; the `always` traces after the
    metrics' (the best combination's marker) stay visible."""
    buttons = []
    for k, metric in enumerate(metrics):
        relayout: dict[str, Any] = {"title.text": titles[k]}
        if yaxis:
            relayout |= {
                "yaxis.title.text": metric,
                "yaxis.tickformat": _format(metric, axis=True),
            }
        buttons.append(
            {
                "label": metric,
                "method": "update",
                "args": [{"visible": _onehot(len(metrics), k) + [True] * always}, relayout],
            }
        )
    fig.update_layout(
        updatemenus=[
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": 0,
                "direction": "down",
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
            }
        ]
    )


def _ticks(fig: go.Figure, pivot: pd.DataFrame) -> None:
    """A tick at every parameter value when there are few, so no tick falls between values."""
    if len(pivot.columns) <= MAX_TICKS:
        fig.update_xaxes(tickvals=pivot.columns.to_numpy())
    if len(pivot.index) <= MAX_TICKS:
        fig.update_yaxes(tickvals=pivot.index.to_numpy())


def _layout(fig: go.Figure, *, title: str, x: str, y: str, height: int) -> None:
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=height,
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        margin={"l": 70, "r": 20, "t": 90, "b": 50},
        xaxis_title=x,
        yaxis_title=y,
    )


def _note_if_empty(fig: go.Figure, table: pd.DataFrame) -> None:
    if not valid_mask(table).any():
        _note(fig, "No valid combination: every cell is empty")


def _note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#52606d"},
        bgcolor="rgba(255,255,255,0.8)",
    )


def _bare(column: str) -> str:
    return column.removeprefix("param_")


# -- page ----------------------------------------------------------------------------------


def grid_report_html(
    *,
    title: str,
    table: pd.DataFrame,
    param_names: Sequence[str],
    metrics: Sequence[str],
    objective: str,
    summary: Mapping[str, object] | Sequence[tuple[str, object]],
    notes: Iterable[str] = (),
    evidence: Mapping[str, Any] | None = None,
) -> str:
    """The grid-search report as one offline HTML page (plotly.js inlined once); nothing
    is written.

    `summary` rows ((label, value) pairs or a mapping) come first: strings are shown as
    given, numbers through `format_metric` keyed by the label (a metric name such as "cagr"
    gets its format, "5.12%"; other labels 4 significant digits). Then the `grid_figures`,
    then `notes`, followed by a note on how many combinations were left out as invalid and
    one on the heatmaps' colour range and best-combination marker.
    """
    pairs = summary.items() if isinstance(summary, Mapping) else summary
    rows = [(str(k), v if isinstance(v, str) else format_metric(str(k), v)) for k, v in pairs]
    notes = list(notes)
    n_invalid = int((~valid_mask(table)).sum())
    if n_invalid:
        notes.append(
            f"{n_invalid} of {len(table)} combinations are not valid (too few trades) and "
            "are left out: empty cells in the surfaces, absent from the table."
        )
    sections = grid_sections(
        table, param_names=param_names, metrics=metrics, objective=objective, evidence=evidence
    )
    if any(trace.type == "heatmap" for _, fig in sections for trace in fig.data):
        notes.append(
            "Heatmap colours span the cells' values clipped to Tukey's far-out fences "
            f"(quartiles ± {FENCE_IQR:g} IQR), so one outlier does not wash the rest out; "
            "the colour bar says when cells lie beyond them (drawn in the end colours; "
            f"hovering shows each value). The red star marks the best valid combination by "
            f"{objective}."
        )
    return render_html(title, summary_rows=rows, sections=sections, notes=notes)
