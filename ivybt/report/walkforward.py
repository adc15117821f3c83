"""The walk-forward report (report.html) and its stability-surface page.

report.html: the summary (stitched OOS metrics next to buy-and-hold over the same bars, WFE,
stability scores), the fold table, the stitched OOS equity against buy-and-hold, WFE per
fold, then the stability surfaces of `ivybt.report.surface` (3D surface with the chosen
path, per-fold heatmaps, parameter drift). The surfaces show the objective on the OOS side,
over the first searched parameter; `ivybt surface RUN_DIR` draws any other.
Both pages embed plotly.js once and open offline; `ivybt.runs.walkforward` writes them.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from ivybt.bars.timeline import bars_note
from ivybt.report.backtest import format_metric
from ivybt.report.html import LIGHT_TEMPLATE, render_html
from ivybt.report.surface import surface_figures, surface_report_html
from ivybt.report.table import table_figure
from ivybt.report.universe import universe_sections, universe_summary, universe_symbols
from ivybt.studies.walkforward import WFE_MIN_IS_CAGR


class WalkForwardData(Protocol):
    """What the pages read of a walk-forward run (`ivybt.runs.walkforward.WalkForwardResult`
    is one): its configuration, joint space, fold table, surface, stitched OOS equity and
    metrics.json."""

    config: Any
    space: Any
    folds: pd.DataFrame
    surface: pd.DataFrame
    oos_equity: pd.DataFrame
    metrics: dict[str, Any]
    data: dict[str, Any]

    @property
    def objective(self) -> str: ...


_FOLD_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades")


def surface_page_name(side: str, metric: str, param: str) -> str:
    """File name of a stability-surface page inside the run folder."""
    return f"surface-{side}-{metric}-{param}.html"


def surface_page_html(result: WalkForwardData, *, param: str, metric: str, side: str) -> str:
    """The stability page of one (parameter, metric, side)."""
    return surface_report_html(
        result.surface, result.folds, title=f"Stability surface: {metric} over {param} ({side})",
        param=param, metric=metric, side=side, params=list(result.space.names),
        scores=result.metrics["stability"],
    )  # fmt: skip


def walkforward_sections(
    result: WalkForwardData, *, param: str | None = None
) -> list[tuple[str, Any]]:
    """Every (heading, figure) of report.html, in its order; `param` None: the default
    surface parameter. report.html and `WalkForwardResult.plot()` both draw these."""
    import plotly.graph_objects as go

    param = default_param(result) if param is None else param
    sections: list[tuple[str, Any]] = [
        ("Folds", _fold_table(go, result)),
        ("Stitched out-of-sample equity vs buy-and-hold", _equity(go, result.oos_equity)),
        ("Walk-forward efficiency (CAGR) per fold", _wfe(go, result.folds)),
    ]
    selection = result.metrics.get("universe_selection")
    if selection:
        sections += universe_sections(result.folds, selection["by"])
    sections += surface_figures(result.surface, result.folds, param=param,
                                metric=result.objective, side="oos",
                                params=list(result.space.names))  # fmt: skip
    return sections


def walkforward_report_html(result: WalkForwardData, *, param: str) -> str:
    """report.html as one offline page; nothing is written."""
    sections = walkforward_sections(result, param=param)
    notes = [
        "Windows are half-open bar ranges [start, end); each fold is traded from flat, its "
        "indicators warmed up on the bars before its window.",
        "Stitched equity: each fold's OOS window with its chosen parameters, starting with "
        "the equity the previous fold ended with; overlapping windows are cut at the next "
        "fold's start.",
        "WFE (CAGR) = OOS CAGR / IS CAGR of the chosen parameters, n/a with an IS CAGR below "
        f"{WFE_MIN_IS_CAGR:.2%} a year (a ratio to about nothing is noise); overall: "
        f"{result.metrics['wfe_rule']}.",
        f"--min-trades ({_min_trades(result)}) filters the in-sample choice only: every "
        "out-of-sample cell is shown and scored whatever its trade count (n_trades on hover).",
        "Stability scores are defined in docs/stability.md.",
        *_universe_notes(result),
        *bars_note(result.config),
        *(result.metrics.get("overfitting") or {}).get("readings", []),
    ]
    return render_html(
        f"{result.config.strategy.name} walk-forward on {result.data.get('symbol', '')}",
        summary_rows=_summary_rows(result), sections=sections, notes=notes,
    )  # fmt: skip


def _universe_notes(result: WalkForwardData) -> list[str]:
    selection = result.metrics.get("universe_selection")
    if not selection:
        return []
    return [
        f"Universe: {selection['described']}. Each fold ranks the symbols by their in-sample "
        "results with the fold's chosen parameters (each symbol alone in the account) and "
        "trades only the chosen ones out of sample; the dotted line and 'OOS with every "
        "symbol' trade every symbol with the same parameters, so the difference is what "
        "choosing the universe was worth. The fold table's OOS metrics and the stability "
        "surfaces are every symbol's (the parameters' verdict); universe_oos_* in "
        "folds.parquet are the chosen universe's."
    ]


def _min_trades(result: WalkForwardData) -> int:
    study = result.config.study
    return 1 if study is None else study.min_trades


def default_param(result: WalkForwardData) -> str:
    """The searched parameter with the most values (the first on a tie)."""
    names = list(result.space.names)
    counts = [len(set(result.space.combos[:, k])) for k in range(len(names))]
    return names[counts.index(max(counts))]


def _summary_rows(result: WalkForwardData) -> list[tuple[str, str]]:
    metrics = result.metrics
    oos, hold = metrics["oos"] or {}, metrics["buy_and_hold"] or {}
    rows = [
        ("Folds", f"{metrics['n_folds']} ({metrics['n_combinations']:,} combinations each)"),
        ("Objective, selection, search",
         f"{metrics['objective']}, {metrics['select']}, {metrics['search']}"),
        ("WFE (CAGR, stitched OOS)", _text(metrics["wfe"], ".2f")),
    ]  # fmt: skip
    for name in ("total_return", "cagr", "sharpe", "max_drawdown"):
        shown = f"{_metric(name, oos.get(name))} ({_metric(name, hold.get(name))})"
        rows.append((f"OOS {name} (buy-and-hold)", shown))
    rows.append(("OOS n_trades", _metric("n_trades", oos.get("n_trades"))))
    rows += universe_summary(metrics.get("universe_selection"))
    stability = metrics["stability"]
    for key, label in (("is_oos_rank_corr", "IS->OOS rank correlation (mean)"),
                       ("is_persistence", "IS persistence (mean)")):  # fmt: skip
        value = stability.get(key)
        rows.append((label, _text(value.get("mean") if isinstance(value, dict) else value, ".3f")))
    rows.append(("Chosen in OOS top decile", _text(stability.get("top_decile_rate"), ".0%")))
    overfitting = metrics.get("overfitting") or {}
    rows.append(("Mean in-sample PBO (CSCV)", _text(overfitting.get("mean_pbo"), ".2f")))
    rows.append(("Mean deflated Sharpe ratio", _text(overfitting.get("mean_dsr"), ".2f")))
    return rows


def _fold_table(go: Any, result: WalkForwardData) -> Any:
    folds = result.folds
    names = list(result.space.names)
    header = ["fold", "IS", "OOS", *names, *(f"IS {m}" for m in _FOLD_METRICS),
              *(f"OOS {m}" for m in _FOLD_METRICS), "WFE (CAGR)"]  # fmt: skip
    columns = [
        [str(v) for v in folds["fold"]],
        [_span(a, b) for a, b in zip(folds["is_first"], folds["is_last"], strict=True)],
        [_span(a, b) for a, b in zip(folds["oos_first"], folds["oos_last"], strict=True)],
        *[[_param(v) for v in folds[f"param_{n}"]] for n in names],
        *[[_metric(m, v) for v in folds[f"is_{m}"]] for m in _FOLD_METRICS],
        *[[_metric(m, v) for v in folds[f"oos_{m}"]] for m in _FOLD_METRICS],
        [_text(v, ".2f") for v in folds["wfe"]],
    ]
    symbols = universe_symbols(folds)
    if symbols:  # --select-universe: the symbols each fold traded out of sample
        header.append("universe")
        columns.append([", ".join(s for s in symbols if row[f"universe_{s}"]) or "none (cash)"
                        for _, row in folds.iterrows()])  # fmt: skip
    return table_figure(header, columns, max_height=640)  # sized so nothing is clipped


def _equity(go: Any, equity: pd.DataFrame) -> Any:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=equity["time"], y=equity["buy_and_hold"], name="buy-and-hold",
                             line={"color": "#9aa5b1", "width": 1.2}))  # fmt: skip
    if "all_symbols" in equity:  # --select-universe: the same parameters on every symbol
        fig.add_trace(go.Scatter(x=equity["time"], y=equity["all_symbols"],
                                 name="every symbol (no universe choice)",
                                 line={"color": "#ff7f0e", "width": 1.2,
                                       "dash": "dot"}))  # fmt: skip
    fig.add_trace(go.Scatter(x=equity["time"], y=equity["equity"], name="walk-forward OOS",
                             line={"color": "#1f77b4", "width": 1.5},
                             customdata=equity["fold"],
                             hovertemplate="%{x}<br>%{y:,.0f}<br>fold %{customdata}"
                             "<extra></extra>"))  # fmt: skip
    fig.update_layout(template=LIGHT_TEMPLATE, height=420, yaxis_title="account value",
                      margin={"l": 70, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": 1.08})  # fmt: skip
    return fig


def _wfe(go: Any, folds: pd.DataFrame) -> Any:
    labels = [f"{k}: {_span(a, b)}" for k, a, b in
              zip(folds["fold"], folds["oos_first"], folds["oos_last"], strict=True)]  # fmt: skip
    hover = "%{x}<br>WFE (CAGR) %{y:.2f}<extra></extra>"
    fig = go.Figure(go.Bar(x=labels, y=folds["wfe"], marker={"color": "#1f77b4"},
                           hovertemplate=hover))  # fmt: skip
    fig.update_layout(template=LIGHT_TEMPLATE, height=320, yaxis_title="WFE (CAGR)",
                      margin={"l": 70, "r": 20, "t": 20, "b": 80})  # fmt: skip
    return fig


def _span(first: pd.Timestamp, last: pd.Timestamp) -> str:
    return f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"


def _param(value: Any) -> str:
    number = float(value)
    if number != number:
        return "none"
    return f"{int(number)}" if number.is_integer() else f"{number:g}"


def _metric(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format_metric(name, float(value)).strip()


def _text(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(float(value), fmt)
