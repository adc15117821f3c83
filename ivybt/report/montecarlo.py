"""The page of a Monte Carlo study (`ivybt montecarlo RUN_DIR`): the equity fan, then the
histograms of total return, max drawdown and Sharpe over the resampled paths.

`montecarlo_sections` draws every figure of the page; `MonteCarloResult.plot()` returns the
same. The numbers come from `ivybt.runs.montecarlo.MonteCarloResult`; plotly is imported
inside the drawing functions only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ivybt.report.html import LIGHT_TEMPLATE, render_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

METRICS = ("total_return", "max_drawdown", "sharpe")
_LABELS = {"total_return": "total return", "max_drawdown": "max drawdown", "sharpe": "Sharpe"}
RUN_COLOR = "#d62728"
MonteCarloData = Any
"""A Monte Carlo study's numbers, as `ivybt.runs.montecarlo.MonteCarloResult` holds them: the
fan, percentiles, the run's observed values, the share of worse paths and the labels."""


def montecarlo_sections(result: MonteCarloData) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs of the page: the equity fan (5-95% and 25-75% bands, median,
    the run), then one histogram per metric with the run and p5 / p95 marked."""
    import plotly.graph_objects as go

    sections = [("Equity fan: 5-95% and 25-75% of paths, median, the run", _fan(go, result))]
    for name in METRICS:
        basis = f" ({result.sharpe_basis})" if name == "sharpe" else ""
        sections.append(
            (f"Distribution of {_LABELS.get(name, name)}{basis}", _histogram(go, result, name))
        )
    return sections


def montecarlo_html(result: MonteCarloData) -> str:
    """The study's page as one offline HTML page (plotly.js inlined once); nothing written."""
    src, cash = result.source, result.source["initial_cash"]
    rows = [("Run", f"{src['command']} {src['folder']}"),
            ("Method", f"{result.method} bootstrap, {result.n:,} paths, seed {result.seed}"),
            ("Resampled", f"{result.resampled} per path"),
            ("The run", result.run_label)]  # fmt: skip
    for name in METRICS:
        fmt, label = (".2f" if name == "sharpe" else ".1%"), _LABELS.get(name, name)
        cells = " / ".join(_fmt(v, fmt) for v in result.percentiles.loc[name])
        seen = _fmt(result.observed[name], fmt)
        rows += [(f"{label}: p5 / p25 / p50 / p75 / p95", cells),
                 (f"{label}: the run (share of paths worse)",
                  f"{seen} ({_fmt(result.share_worse[name], '.0%')})")]  # fmt: skip
    notes = [*result.readings(),
             "Returns are compounded (equity x (1 + r)), never dollar PnL added: resampled "
             "dollar PnL can fall below -100% (Jesse #607).",
             f"Fan: quantiles of the first {result.fan_paths:,} paths at {len(result.fan):,} "
             f"steps (equity from {cash:,.0f}); histograms use all {result.n:,} paths.",
             "Percentiles: linear interpolation over paths with a finite value; 'worse' is "
             "a lower return or Sharpe, or a deeper drawdown, than the run's own."]  # fmt: skip
    if result.n_open:
        notes.append(
            "The trade still open at the last bar is resampled with the closed ones, marked "
            "at the last close as the backtest marks it, so the run's own line equals the "
            "backtest's total return."
        )
    bars = src.get("bars", "standard")
    title = f"Monte Carlo ({result.method} bootstrap): {src['strategy']} on {src['symbol']}" + (
        "" if bars == "standard" else f", {bars}"
    )
    return render_html(title, summary_rows=rows, sections=montecarlo_sections(result), notes=notes)


def _fan(go: Any, result: MonteCarloData) -> Any:
    fan, x, cash = result.fan, list(result.fan["x"]), result.source["initial_cash"]
    fig = go.Figure()
    bands = (("p5", "p95", "rgba(31,119,180,0.15)", "5-95%"),
             ("p25", "p75", "rgba(31,119,180,0.35)", "25-75%"))  # fmt: skip
    for low, high, color, label in bands:
        fig.add_trace(go.Scatter(x=x, y=fan[low] * cash, line={"width": 0}, showlegend=False,
                                 hoverinfo="skip"))  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=fan[high] * cash, fill="tonexty", fillcolor=color,
                                 line={"width": 0}, name=label, hoverinfo="skip"))  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=fan["p50"] * cash, name="median",
                             line={"color": "#1f77b4", "width": 1.5, "dash": "dash"}))  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=fan["observed"] * cash, name=result.run_label,
                             line={"color": RUN_COLOR, "width": 1.6}))  # fmt: skip
    fig.update_layout(template=LIGHT_TEMPLATE, height=460, yaxis_type="log",
                      yaxis_title="account value (log scale)",
                      xaxis_title="time" if result.method == "block" else "trade number",
                      margin={"l": 80, "r": 20, "t": 30, "b": 50},
                      legend={"orientation": "h", "y": 1.08})  # fmt: skip
    return fig


def _histogram(go: Any, result: MonteCarloData, name: str) -> Any:
    values = getattr(result, name)
    scale = 1.0 if name == "sharpe" else 100.0
    values = values[np.isfinite(values)] * scale
    counts, edges = np.histogram(values, bins=60) if values.size else (np.zeros(0), np.zeros(1))
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                           marker={"color": "#9aa5b1"}, name="paths"))  # fmt: skip
    p5, p95 = result.percentiles.loc[name, ["p5", "p95"]].to_numpy(dtype=np.float64)
    marks = [(result.observed[name], "the run", RUN_COLOR, "solid", "top"),
             (float(p5), "p5", "#1f77b4", "dot", "top left"),
             (float(p95), "p95", "#1f77b4", "dot", "top right")]  # fmt: skip
    for value, text, color, dash, where in marks:
        if math.isfinite(value):
            fig.add_vline(x=value * scale, line={"color": color, "width": 2, "dash": dash},
                          annotation_text=text, annotation_position=where)  # fmt: skip
    unit = "" if name == "sharpe" else " (%)"
    fig.update_layout(template=LIGHT_TEMPLATE, height=320, bargap=0, showlegend=False,
                      xaxis_title=f"{_LABELS.get(name, name)}{unit}", yaxis_title="paths",
                      margin={"l": 70, "r": 20, "t": 45, "b": 50})  # fmt: skip
    return fig


def _fmt(value: Any, fmt: str) -> str:
    number = float(value)
    return format(number, fmt) if math.isfinite(number) else "n/a"
