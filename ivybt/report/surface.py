"""Stability surfaces of a walk-forward run (plotly): the metric over fold x parameter value in
3D with the chosen path, per-fold heatmaps of two parameters, the chosen parameters' drift,
and the page gluing them to the stability scores.

The inputs are the walk-forward tables ``surface`` and ``folds`` (their contract is in
`ivybt.studies.stability`); the scores come from `ivybt.studies.stability.stability_scores`.
Combinations with ``valid == False`` are empty cells everywhere, like infinite values: on
the IS side those with fewer than --min-trades closed trades or no finite objective, on the
OOS side only those without a finite objective (an OOS result counts whatever its trade
count; hovering a cell shows it). plotly is imported inside the drawing functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError
from ivybt.report.grid import (
    COLORSCALE,
    MAX_TICKS,
    _finite,
    _format,
    _heatmap,
    _layout,
    _ticks,
    colorbar_title,
    robust_range,
)
from ivybt.report.grid_data import order_axes
from ivybt.report.html import LIGHT_TEMPLATE, render_html
from ivybt.studies.stability import (
    bare,
    check_side,
    chosen_values,
    fold_labels,
    format_flag,
    format_score,
    hint,
    reduced_cells,
    score_rows,
    scores_by_fold,
    surface_metric,
    surface_param,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

REDUCTIONS = ("max", "median")  # how the other parameters are summarised in one cell
PATH_COLOR = "#d62728"  # the chosen combination: path on the surface, marks on the heatmaps
MAX_FOLD_TICKS = 12  # more folds: a date label on every n-th fold only, so labels do not overlap
_Run = tuple[pd.DataFrame, pd.DataFrame, list[int], list[str]]  # surface, folds, ids, labels


def surface_figures(
    surface: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    param: str,
    metric: str,
    side: str = "oos",
    reduce: str = "max",
    params: Sequence[str],
) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs of the stability surfaces of `metric` on `side` ("is"/"oos").

    1. A 3D surface: x = fold (ticks = the fold's window dates on `side`), y = the values of
       `param`, z = `metric`. Each (fold, value) cell is the `reduce` ("max": the best the
       value reaches whatever the other parameters; "median": its typical result) of the
       valid combinations holding that value. The chosen parameter's path is drawn on it at
       (fold, chosen value, the cell's z). When another parameter varies, a dropdown switches
       between both reductions (one surface and one path per reduction; `reduce` first shown).
    2. When another parameter varies: heatmaps of `param` x the other parameter with the
       most values (ties to the first in `params`), one per fold with a slider, sharing one
       colour range; parameters beyond these two are reduced by `reduce`; an x marks the
       chosen combination (its hover gives its own metric and closed trades), and each
       cell's hover its closed trades. The axes follow the convention of every IvyBT
       heatmap (`ivybt.report.grid_data.order_axes`, as the grid report): x is the one of
       the two that comes first in `params` (the strategy's order), y the later one.
    3. The chosen value of every parameter per fold, one panel each, y = the grid's range.

    `ConfigError` (a ValueError, one line with a did-you-mean hint) for an unknown
    parameter, metric, side or reduction.
    """
    import plotly.graph_objects as go

    names = [bare(surface_param(surface, name)) for name in params]
    param = bare(surface_param(surface, param))
    if param not in names:
        raise ConfigError(f"parameter {param!r} is not in params {names}{hint(param, names)}")
    metric = surface_metric(surface, metric)
    check_side(side)
    if reduce not in REDUCTIONS:
        raise ConfigError(
            f"unknown reduce {reduce!r}{hint(reduce, REDUCTIONS)}; choose 'max' or 'median'"
        )
    fold_ids = sorted(int(k) for k in folds["fold"])
    if not fold_ids:
        raise ConfigError("the folds table has no fold: nothing to draw")
    labels = fold_labels(folds, side, fold_ids)
    counts = {n: surface["param_" + n].nunique() for n in names}
    others = [n for n in names if n != param and counts[n] > 1]
    where = f"{metric} ({side.upper()})"
    heading = f"Stability surface: {where} by fold × {param}"
    heading += f" ({reduce} over {', '.join(others)})" if others else ""
    run = (surface, folds, fold_ids, labels)
    sections = [(heading, _surface_3d(go, run, param, metric, side, reduce, others))]
    if others:
        second = max(others, key=lambda n: counts[n])  # max keeps the first of ties
        rest = [n for n in others if n != second]
        x, y = order_axes(param, second, names)
        heading = f"{where} by {x} × {y}, one heatmap per fold"
        heading += f" ({reduce} over {', '.join(rest)})" if rest else ""
        axes = (x, y, rest)
        sections.append((heading, _fold_heatmaps(go, run, axes, metric, side, reduce)))
    sections.append(("Chosen parameters per fold", _drift(go, run, names)))
    return sections


def _surface_3d(
    go: Any, run: _Run, param: str, metric: str, side: str, reduce: str, others: list[str]
) -> go.Figure:
    surface, folds, fold_ids, labels = run
    column = "param_" + param
    values = np.unique(surface[column].dropna().to_numpy(dtype="float64"))
    chosen = chosen_values(folds, param, fold_ids)
    own = _chosen_rows(surface, folds, side, metric, fold_ids)
    fmt = _format(metric)
    reductions = REDUCTIONS if others else (reduce,)
    grid_text = np.broadcast_to(np.asarray(labels, dtype=object), (len(values), len(fold_ids)))
    fig = go.Figure()
    titles = []
    for how in reductions:
        cells = reduced_cells(surface, side, metric, ["fold", column], how)
        pivot = cells.unstack("fold").reindex(index=values, columns=fold_ids)
        z = _finite(pivot.to_numpy(dtype="float64"))
        over = f"{how} over {', '.join(others)}" if others else ""
        titles.append(
            f"{metric} ({side.upper()}) by fold ({side.upper()} window dates) × {param}"
            + (f", {over}" if over else "")
        )
        fig.add_trace(
            go.Surface(
                x=fold_ids,
                y=values,
                z=z,
                customdata=grid_text,
                name=f"{metric} ({how})" if others else metric,
                visible=how == reduce,
                colorscale=COLORSCALE,
                colorbar={"title": {"text": metric}, "tickformat": _format(metric, axis=True)},
                hovertemplate=(
                    f"fold %{{x}} (%{{customdata}})<br>{param} %{{y}}<br>"
                    f"{metric} %{{z:{fmt}}}" + (f" ({over})" if over else "") + "<extra></extra>"
                ),
            )
        )
        row = {v: i for i, v in enumerate(values)}
        path_z = [
            z[row[v], i] if not np.isnan(v) else np.nan for i, v in enumerate(chosen.tolist())
        ]
        fig.add_trace(
            go.Scatter3d(
                x=fold_ids,
                y=chosen,
                z=path_z,
                customdata=np.column_stack([labels, own["text"], own["trades"]]),
                name=f"chosen {param}",
                visible=how == reduce,
                mode="lines+markers",
                line={"color": PATH_COLOR, "width": 6},
                marker={"color": PATH_COLOR, "size": 6},
                hovertemplate=(
                    f"fold %{{x}} (%{{customdata[0]}})<br>chosen {param} %{{y}}<br>"
                    f"cell {metric} %{{z:{fmt}}}<br>chosen combination's {metric} "
                    "%{customdata[1]}, %{customdata[2]} closed trades<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=680,
        title={"text": titles[reductions.index(reduce)], "x": 0, "font": {"size": 14}},
        margin={"l": 10, "r": 10, "t": 90, "b": 10},
        showlegend=False,
        scene={
            "xaxis": {"title": {"text": ""}} | _fold_ticks(fold_ids, labels),
            "yaxis": {"title": {"text": param}, "tickvals": values if len(values) <= MAX_TICKS
                      else None},
            "zaxis": {"title": {"text": metric}, "tickformat": _format(metric, axis=True)},
            "camera": {"eye": {"x": 1.15, "y": -2.0, "z": 1.05},
                       "center": {"x": 0, "y": 0, "z": -0.1}},
            "aspectmode": "manual", "aspectratio": {"x": 1.6, "y": 1.0, "z": 0.7},
        },
    )  # fmt: skip
    if len(reductions) > 1:
        buttons = [
            {
                "label": f"{how} over {', '.join(others)}",
                "method": "update",
                "args": [
                    {"visible": [h == how for h in reductions for _ in range(2)]},
                    {"title.text": titles[k]},
                ],
            }
            for k, how in enumerate(reductions)
        ]
        menu = {"buttons": buttons, "active": reductions.index(reduce), "x": 1.0, "y": 1.02,
                "xanchor": "right", "yanchor": "bottom"}  # fmt: skip
        fig.update_layout(updatemenus=[menu])
    return fig


def _chosen_rows(
    surface: pd.DataFrame, folds: pd.DataFrame, side: str, metric: str, fold_ids: list[int]
) -> pd.DataFrame:
    """Per fold of `fold_ids`, the chosen combination's own `metric` on `side` as text
    ("n/a" when undefined or no choice) and its closed trades ("n/a" without a choice)."""
    rows = surface.loc[surface["side"] == side].set_index(["fold", "combo"])
    combos = folds.set_index("fold")["combo"].reindex(fold_ids)
    text, trades = [], []
    for k, c in combos.items():
        key = (k, int(c)) if pd.notna(c) else None
        row = rows.loc[key] if key is not None and key in rows.index else None
        text.append("n/a" if row is None else format_score(row[metric], _format(metric)))
        trades.append("n/a" if row is None else format_score(row["n_trades"], ",.0f"))
    return pd.DataFrame({"text": text, "trades": trades}, index=fold_ids)


def _fold_heatmaps(
    go: Any, run: _Run, axes: tuple[str, str, list[str]], metric: str, side: str, reduce: str
) -> go.Figure:
    surface, folds, fold_ids, labels = run
    x, y, rest = axes
    xs = np.unique(surface["param_" + x].dropna().to_numpy(dtype="float64"))
    ys = np.unique(surface["param_" + y].dropna().to_numpy(dtype="float64"))
    full = pd.MultiIndex.from_product([fold_ids, ys], names=["fold", "param_" + y])

    def per_fold(name: str) -> list[np.ndarray]:
        cells = reduced_cells(surface, side, name, ["fold", "param_" + y, "param_" + x], reduce)
        wide = cells.unstack("param_" + x).reindex(index=full, columns=xs)
        return np.split(wide.to_numpy(dtype="float64"), len(fold_ids))

    pivots = [
        pd.DataFrame(part, index=pd.Index(ys, name=y), columns=pd.Index(xs, name=x))
        for part in per_fold(metric)
    ]
    # one colour range for every fold, clipped like the grid's (`robust_range`) so that one
    # fold's outlier cannot wash the others out
    zrange, clipped = robust_range(np.concatenate([p.to_numpy().ravel() for p in pivots]))
    marks = (chosen_values(folds, x, fold_ids), chosen_values(folds, y, fold_ids))
    own = _chosen_rows(surface, folds, side, metric, fold_ids)
    trade_parts = per_fold("n_trades")
    trades_label = f"n_trades ({reduce} over {', '.join(rest)})" if rest else "n_trades"
    over = f", {reduce} over {', '.join(rest)}" if rest else ""
    titles = [
        f"{metric} ({side.upper()}) by {x} × {y}, fold {k} ({label}){over}"
        for k, label in zip(fold_ids, labels, strict=True)
    ]
    fig = go.Figure()
    for i, pivot in enumerate(pivots):
        cells = _heatmap(go, pivot, metric, visible=i == 0, **zrange)
        cells.colorbar.title.text = colorbar_title(metric, clipped)
        cells.customdata = trade_parts[i]
        cells.hovertemplate = cells.hovertemplate.replace(
            "<extra>", f"<br>{trades_label} %{{customdata}}<extra>"
        )
        fig.add_trace(cells)
        point = [] if np.isnan(marks[0][i]) else [i]
        chosen = f"{metric} ({side.upper()}) {own['text'].iloc[i]}, {own['trades'].iloc[i]}"
        fig.add_trace(
            go.Scatter(
                x=marks[0][point],
                y=marks[1][point],
                mode="markers",
                name="chosen",
                visible=i == 0,
                showlegend=False,
                marker={"symbol": "x", "size": 14, "color": PATH_COLOR,
                        "line": {"color": "white", "width": 1.5}},
                hovertemplate=f"chosen in-sample: {x} %{{x}}, {y} %{{y}}<br>{chosen} "
                "closed trades<extra></extra>",
            )
        )  # fmt: skip
    steps = [
        {
            "label": str(k),
            "method": "update",
            "args": [
                {"visible": [j // 2 == i for j in range(2 * len(fold_ids))]},
                {"title.text": titles[i]},
            ],
        }
        for i, k in enumerate(fold_ids)
    ]
    _layout(fig, title=titles[0] if titles else metric, x=x, y=y, height=620)
    if pivots:
        _ticks(fig, pivots[0])
    slider = {"active": 0, "currentvalue": {"prefix": "fold "}, "pad": {"t": 50}, "steps": steps}
    fig.update_layout(sliders=[slider])
    return fig


def _drift(go: Any, run: _Run, names: list[str]) -> go.Figure:
    from plotly.subplots import make_subplots

    surface, folds, fold_ids, labels = run

    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, name in enumerate(names, start=1):
        grid = surface["param_" + name].astype("float64")
        low, high = float(grid.min()), float(grid.max())
        pad = 0.08 * (high - low) or 0.5
        fig.add_trace(
            go.Scatter(
                x=fold_ids,
                y=chosen_values(folds, name, fold_ids),
                customdata=labels,
                mode="lines+markers",
                name=name,
                line={"width": 1.5},
                marker={"size": 7},
                hovertemplate=f"fold %{{x}} (%{{customdata}})<br>{name} %{{y}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=name, range=[low - pad, high + pad], row=row, col=1)
    fig.update_xaxes(_fold_ticks(fold_ids, labels), row=len(names), col=1)
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=max(300, 120 + 170 * len(names)),
        margin={"l": 70, "r": 20, "t": 30, "b": 60},
        showlegend=False,
    )
    return fig


def _fold_ticks(fold_ids: list[int], labels: list[str]) -> dict[str, list[Any]]:
    step = -(-len(fold_ids) // MAX_FOLD_TICKS)
    return {"tickvals": fold_ids[::step], "ticktext": labels[::step]}


def _score_table(go: Any, scores: Mapping[str, Any], labels: list[str]) -> go.Figure:
    table = scores_by_fold(dict(scores))
    header = ["fold", "OOS window", "IS→OOS rank corr.", "chosen in OOS top decile",
              "IS rank corr. with next fold", "chosen in next IS top decile"]  # fmt: skip
    columns = [
        [str(k) for k in table["fold"]],
        labels[: len(table)],
        [format_score(v, ".3f") for v in table["is_oos_rank_corr"]],
        [format_flag(v) for v in table["in_oos_top_decile"]],
        [format_score(v, ".3f") for v in table["is_rank_corr_next"]],
        [format_flag(v) for v in table["stays_top_decile_next"]],
    ]
    fig = go.Figure(
        go.Table(
            header={"values": [f"<b>{h}</b>" for h in header], "fill": {"color": "#e4e7eb"}},
            cells={"values": columns, "align": ["right", "left", *["right", "center"] * 2],
                   "fill": {"color": "white"}, "line": {"color": "#eef1f4"}},
        )
    )  # fmt: skip
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=min(90 + 24 * max(len(table), 1), 600),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def surface_report_html(
    surface: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    title: str,
    param: str,
    metric: str,
    side: str,
    params: Sequence[str],
    scores: Mapping[str, Any],
    reduce: str = "max",
    notes: Iterable[str] = (),
) -> str:
    """The stability page as one offline HTML string (plotly.js inlined once); nothing is
    written. The summary table holds the scores of `stability_scores` (NaN or None shown as
    "n/a"), then the `surface_figures`, a table of the scores per fold, and notes on the
    reductions and the invalid combinations, then `notes`."""
    import plotly.graph_objects as go

    sections = surface_figures(
        surface, folds, param=param, metric=metric, side=side, reduce=reduce, params=params
    )
    fold_ids = [int(k) for k in scores.get("folds", sorted(folds["fold"]))]
    table = _score_table(go, scores, fold_labels(folds, "oos", fold_ids))
    sections.append(("Stability scores per fold", table))
    names = [bare(p) for p in params]
    others = [n for n in names if n != bare(param)]
    lines = [
        f"Surface cells: each (fold, {bare(param)} value) cell is the {reduce} of {metric} "
        f"over the combinations of {', '.join(others) or 'no other parameter'} valid on the "
        f"{side.upper()} window. 'max' shows the best that value reaches whatever the other "
        "parameters; 'median' shows its typical result (the dropdown switches). The chosen "
        "path sits on the cell's value; its hover also gives the chosen combination's own.",
        "Heatmaps: parameters besides the two axes are reduced the same way; all folds share "
        "one colour range; the x marks the combination chosen in-sample; hovering a cell "
        "shows its closed trades. Axes as in the grid report: x is the parameter that comes "
        "first in the strategy's order.",
        "Scores are defined in docs/stability.md. Rank correlations are Spearman's over the "
        "combinations valid on both surfaces (n/a with fewer than 3 or a constant surface).",
        *notes,
    ]
    n_invalid = int((~surface["valid"].fillna(False).astype(bool)).sum())
    if n_invalid:
        lines.append(
            f"{n_invalid} of {len(surface)} (fold, side, combination) rows are not valid "
            "(in-sample: fewer closed trades than --min-trades, or no finite objective; "
            "out-of-sample: no finite objective, whatever the trade count): empty cells, left "
            "out of every score."
        )
    return render_html(title, summary_rows=score_rows(scores), sections=sections,
                       notes=lines)  # fmt: skip
