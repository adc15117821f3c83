"""The report of one backtest: metrics and figures (plotly), glued into one HTML page.

`backtest_figures` only draws the tables of `ivybt.report.backtest_data.backtest_report_data`
(pandas only, tested without plotly). `backtest_report_html` builds those tables from the
backtest's frames (the contract is in `ivybt.report.backtest_data`), draws them and hands them to
`ivybt.report.html.render_html`. plotly is imported inside the drawing functions only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.report.backtest_data import backtest_report_data
from ivybt.report.html import LIGHT_TEMPLATE, render_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

GL_THRESHOLD = 20_000  # traces with more points than this are drawn with WebGL (Scattergl)

LONG_COLOR = "#2ca02c"
SHORT_COLOR = "#d62728"
EXIT_COLOR = "#3e4c59"
OPEN_COLOR = "#ff7f0e"
STRATEGY_COLOR = "#1f77b4"
BENCHMARK_COLOR = "#9aa5b1"

SECTION_HEADINGS = (
    "Price with entries and exits",
    "Equity vs buy-and-hold",
    "Drawdown",
    "Net PnL of closed trades",
)

# key -> (label, kind); kinds: pct (fraction shown as %), ratio, int, money
_METRICS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("Volatility (annualized)", "pct"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "calmar": ("Calmar ratio", "ratio"),
    "n_trades": ("Trades", "int"),
    "win_rate": ("Win rate", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "avg_win": ("Average win", "pct"),
    "avg_loss": ("Average loss", "pct"),
    "exposure": ("Exposure", "pct"),
    "gross_profit": ("Gross profit", "money"),
    "gross_loss": ("Gross loss", "money"),
}


# -- metrics -------------------------------------------------------------------------------


def format_metric(key: str, value: object) -> str:
    """`value` as shown in the report: fractions as % with 2 decimals, ratios with 2 decimals,
    counts as integers, currency with 2 decimals; NaN or None as "n/a"."""
    kind = _METRICS.get(key, (key, "general"))[1]
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a" if value is None else str(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if kind == "pct":
        return f"{number * 100:.2f}%"
    if kind == "ratio":
        return f"{number:.2f}"
    if kind == "int":
        return f"{round(number):d}"
    if kind == "money":
        return f"{number:,.2f}"
    return f"{number:.4g}"


def metrics_text(metrics: Mapping[str, object], names: Iterable[str]) -> str:
    """ "total_return 37.27%, sharpe 0.19": the `names` found in `metrics`, formatted as in
    the report (for short `repr`s and one-line summaries)."""
    return ", ".join(f"{name} {format_metric(name, metrics[name])}" for name in names
                     if name in metrics)  # fmt: skip


def format_metrics(metrics: Mapping[str, object]) -> list[tuple[str, str]]:
    """(label, formatted value) rows: the known metrics in a fixed order, then any others."""
    rows = [
        (label, format_metric(key, metrics[key]))
        for key, (label, _) in _METRICS.items()
        if key in metrics
    ]
    rows.extend((key, format_metric(key, v)) for key, v in metrics.items() if key not in _METRICS)
    return rows


# -- figures -------------------------------------------------------------------------------


def backtest_figures(data: Mapping[str, pd.DataFrame]) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs drawn from `backtest_report_data(...)`; nothing is computed here.

    1. close with entries (long: green triangle-up, short: red triangle-down), exits (x) and
       the open trade's mark (orange ring); 2. equity vs buy-and-hold; 3. drawdown in percent;
    4. histogram of closed trades' net PnL, wins green and losses red. With no trades the
    price and histogram figures carry a note instead. Series longer than `GL_THRESHOLD`
    points use `go.Scattergl`.
    """
    import plotly.graph_objects as go

    figures = (
        _price_figure(go, data["price"], data["markers"]),
        _equity_figure(go, data["equity"]),
        drawdown_figure(go, data["drawdown"]),
        _pnl_figure(go, data["trade_pnl"]),
    )
    return list(zip(SECTION_HEADINGS, figures, strict=True))


def _scatter(go: Any, n_points: int) -> Any:
    return go.Scattergl if n_points > GL_THRESHOLD else go.Scatter


def _x(times: pd.Index | pd.Series) -> np.ndarray:
    """Timestamps as short ISO strings at their own wall-clock time ("2020-01-02" for daily
    bars, "2020-01-02T14:30" intraday): plotly shows no time zones, and strings serialize ~20
    times faster than tz-aware Timestamps, which plotly deep-copies one object at a time."""
    stamps = pd.DatetimeIndex(times)
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    values = stamps.to_numpy(dtype="datetime64[ns]")
    ns = values.view("int64")
    unit = "ms"
    for candidate, step in (("D", 86_400 * 10**9), ("m", 60 * 10**9), ("s", 10**9)):
        if (ns % step == 0).all():
            unit = candidate
            break
    return np.datetime_as_string(values, unit=unit)


def _layout(fig: go.Figure, *, yaxis_title: str, height: int = 450) -> None:
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
        yaxis_title=yaxis_title,
    )


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


def _price_figure(go: Any, price: pd.DataFrame, markers: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    scatter = _scatter(go, len(price))
    fig.add_trace(
        scatter(
            x=_x(price.index),
            y=price["close"],
            mode="lines",
            name="close",
            line={"color": STRATEGY_COLOR, "width": 1.2},
        )
    )
    entry = (markers["kind"] == "entry").to_numpy(dtype=bool)
    long_ = (markers["side"] == "long").to_numpy(dtype=bool)
    is_open = markers["is_open"].to_numpy(dtype=bool)
    groups = (
        ("long entry", entry & long_, "triangle-up", LONG_COLOR, 10),
        ("short entry", entry & ~long_, "triangle-down", SHORT_COLOR, 10),
        ("exit", ~entry & ~is_open, "x", EXIT_COLOR, 8),
        ("open trade (marked at last bar)", ~entry & is_open, "circle-open", OPEN_COLOR, 14),
    )
    for name, mask, symbol, color, size in groups:
        rows = markers.loc[mask]
        if len(rows) == 0:
            continue
        fig.add_trace(
            _scatter(go, len(rows))(
                x=_x(rows["time"]),
                y=rows["price"],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "color": color, "size": size, "line": {"width": 2}},
                customdata=np.column_stack([rows["trade"], rows["side"], rows["net_pnl"]]),
                hovertemplate=(
                    "%{x}<br>price %{y:.4f}<br>trade %{customdata[0]} (%{customdata[1]})"
                    "<br>net PnL %{customdata[2]:,.2f}<extra>" + name + "</extra>"
                ),
            )
        )
    _layout(fig, yaxis_title="price", height=500)
    if len(markers) == 0:
        _note(fig, "No trades in this backtest")
    return fig


def _equity_figure(go: Any, curves: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    scatter = _scatter(go, len(curves))
    for column, name, color in (
        ("buy_and_hold", "buy-and-hold", BENCHMARK_COLOR),
        ("strategy", "strategy", STRATEGY_COLOR),
    ):
        fig.add_trace(
            scatter(
                x=_x(curves.index),
                y=curves[column],
                mode="lines",
                name=name,
                line={"color": color, "width": 1.5},
            )
        )
    _layout(fig, yaxis_title="account value")
    return fig


def drawdown_figure(go: Any, drawdown: pd.DataFrame) -> go.Figure:
    """Drawdown (a frame with a `drawdown` column, <= 0) in percent, shaded to zero."""
    fig = go.Figure(
        _scatter(go, len(drawdown))(
            x=_x(drawdown.index),
            y=drawdown["drawdown"] * 100.0,
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": SHORT_COLOR, "width": 1},
            fillcolor="rgba(214,39,40,0.3)",
            hovertemplate="%{x}<br>%{y:.2f}%<extra></extra>",
        )
    )
    _layout(fig, yaxis_title="drawdown", height=300)
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    return fig


def _pnl_figure(go: Any, trade_pnl: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    closed = trade_pnl.loc[~trade_pnl["is_open"].to_numpy(dtype=bool)]
    _layout(fig, yaxis_title="trades", height=350)
    fig.update_xaxes(title_text="net PnL per trade")
    if len(closed) == 0:
        _note(fig, "No trades in this backtest" if len(trade_pnl) == 0 else "No closed trades")
        return fig
    bins = _bins(closed["net_pnl"].to_numpy(dtype="float64"))
    for outcome, name, color in (("win", "wins", LONG_COLOR), ("loss", "losses", SHORT_COLOR)):
        values = closed.loc[closed["outcome"] == outcome, "net_pnl"]
        fig.add_trace(
            go.Histogram(
                x=values,
                name=f"{name} ({len(values)})",
                xbins=bins,
                marker={"color": color, "line": {"color": "white", "width": 1}},
            )
        )
    fig.update_layout(barmode="stack", bargap=0.02)
    return fig


def _bins(values: np.ndarray) -> dict[str, float]:
    """Common bins for wins and losses, with zero on a bin edge."""
    lo, hi = float(values.min()), float(values.max())
    n_bins = min(50, max(5, math.ceil(math.sqrt(len(values)))))
    size = (hi - lo) / n_bins if hi > lo else max(abs(hi), 1.0) / 5
    start = math.floor(lo / size) * size  # a multiple of size: 0 is an edge
    return {"start": start, "end": hi + size, "size": size}


# -- page ----------------------------------------------------------------------------------


def backtest_sections(
    prices: pd.DataFrame, equity: pd.DataFrame, trades: pd.DataFrame, *, exits: bool = False
) -> list[tuple[str, go.Figure]]:
    """Every (heading, figure) of the backtest report: `backtest_figures` of
    `backtest_report_data(prices, equity, trades)`, and with `exits` (a run with stops) the
    exits by reason. report.html and `BacktestResult.plot()` both draw these."""
    sections = backtest_figures(backtest_report_data(prices, equity, trades))
    if exits:
        from ivybt.report.exits import exits_section

        sections.append(exits_section(trades))
    return sections


def backtest_report_html(
    *,
    title: str,
    prices: pd.DataFrame,
    equity: pd.DataFrame,
    trades: pd.DataFrame,
    metrics: Mapping[str, object],
    notes: Iterable[str] = (),
    exits: bool = False,
) -> str:
    """The backtest report as one offline HTML page (plotly.js inlined once); nothing written.

    A metrics table (`format_metrics`), the four `backtest_figures`, then `notes`; a note on
    the open trade is added when there is one.
    """
    sections = backtest_sections(prices, equity, trades, exits=exits)  # checks frames first
    notes = list(notes)
    n_open = int(trades["is_open"].sum()) if len(trades) else 0
    if n_open:
        notes.append(
            f"{n_open} trade(s) still open at the last bar: marked at the last price, shown "
            "with an orange ring and left out of the PnL histogram."
        )
    return render_html(title, summary_rows=format_metrics(metrics), sections=sections, notes=notes)
