"""The report of one portfolio backtest: metrics, figures (plotly) and a filterable trade table,
glued into one HTML page.

`portfolio_figures` only draws the tables of
`ivybt.report.portfolio_data.portfolio_report_data` (pandas only, tested without plotly; the
contract with the portfolio run is there). `portfolio_report_html` builds those tables, draws
them and hands them to `ivybt.report.html.render_html`. plotly is imported inside the drawing
functions only.

The sections, in order (`SECTION_HEADINGS`): equity against an equal-weight buy-and-hold of
the universe, drawdown, gross and net exposure, the weights heatmap (time x symbol), the
contribution of each symbol, and the trades. In the HTML page the trades are an HTML table
with three filters (symbol, side, outcome) run by a few lines of inline JavaScript
(`TradeTable`); `portfolio_sections` (a result's `.plot()`) draws the same rows as a plotly
table, since a notebook's figure has no page to run the filters in.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.report.backtest import (
    BENCHMARK_COLOR,
    LONG_COLOR,
    SHORT_COLOR,
    STRATEGY_COLOR,
    _x,
    drawdown_figure,
    format_metric,
    format_metrics,
)
from ivybt.report.exits import exits_section
from ivybt.report.factor import factor_sections
from ivybt.report.html import LIGHT_TEMPLATE, render_html
from ivybt.report.portfolio_data import FILTERS, portfolio_report_data
from ivybt.report.table import CELL_PADDING, ROW_HEIGHT, column_widths, table_figure, wrap_header

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ivybt.studies.factor import FactorView

GL_THRESHOLD = 20_000  # traces with more points than this are drawn with WebGL (Scattergl)

EQUITY_HEADING = "Equity vs equal-weight buy-and-hold"
DRAWDOWN_HEADING = "Drawdown"
EXPOSURE_HEADING = "Gross and net exposure"
WEIGHTS_HEADING = "Weights (time x symbol)"
CONTRIBUTION_HEADING = "Contribution by symbol"
TRADES_HEADING = "Trades"
SECTION_HEADINGS = (
    EQUITY_HEADING,
    DRAWDOWN_HEADING,
    EXPOSURE_HEADING,
    WEIGHTS_HEADING,
    CONTRIBUTION_HEADING,
    TRADES_HEADING,
)

NET_COLOR = "#ff7f0e"
NOT_LISTED_COLOR = "#e4e7eb"  # the heatmap's background: cells where a symbol is not listed
WEIGHT_COLORSCALE = [  # ColorBrewer RdBu with white at 0: shorts red, longs blue
    [0.0, "#b2182b"],
    [0.2, "#d6604d"],
    [0.35, "#f4a582"],
    [0.5, "#ffffff"],
    [0.65, "#92c5de"],
    [0.8, "#4393c3"],
    [1.0, "#2166ac"],
]

# portfolio_metrics key -> (label, how format_metric shows it)
_PORTFOLIO_METRICS: dict[str, tuple[str, str]] = {
    "n_symbols": ("Symbols", "n_trades"),
    "turnover": ("Turnover (annualized)", "exposure"),
    "avg_gross": ("Average gross exposure", "exposure"),
    "max_gross": ("Maximum gross exposure", "exposure"),
    "avg_net": ("Average net exposure", "exposure"),
    "max_net": ("Maximum net exposure", "exposure"),
}


# -- figures -------------------------------------------------------------------------------


def portfolio_figures(data: Mapping[str, pd.DataFrame]) -> list[tuple[str, go.Figure]]:
    """(heading, figure) pairs drawn from `portfolio_report_data(...)`; nothing is computed.

    1. equity against the equal-weight buy-and-hold (linear/log buttons); 2. drawdown in
    percent; 3. gross and net exposure; 4. the weights heatmap: x time, y symbol, the signed
    weight on a diverging scale centred on 0 (red short, blue long), grey where a symbol is
    not listed; 5. net PnL per symbol (bars) above the contribution table; 6. the shown
    trades as a plotly table (the HTML page draws them as `TradeTable` instead). Series longer
    than `GL_THRESHOLD` points use `go.Scattergl`.
    """
    return [*_chart_sections(data), (TRADES_HEADING, _trades_figure(data["trades"]))]


def _chart_sections(data: Mapping[str, pd.DataFrame]) -> list[tuple[str, go.Figure]]:
    """The first five sections of `portfolio_figures`: all but the trades."""
    import plotly.graph_objects as go

    figures = (
        _equity_figure(go, data["equity"]),
        drawdown_figure(go, data["drawdown"]),
        _exposure_figure(go, data["exposure"]),
        _weights_figure(go, data["weights"]),
        _contribution_figure(go, data["contribution"]),
    )
    return list(zip(SECTION_HEADINGS[:5], figures, strict=True))


def _scatter(go: Any, n_points: int) -> Any:
    return go.Scattergl if n_points > GL_THRESHOLD else go.Scatter


def _layout(fig: go.Figure, *, yaxis_title: str, height: int = 450) -> None:
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        height=height,
        margin={"l": 70, "r": 20, "t": 30, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0},
        yaxis_title=yaxis_title,
    )


def _equity_figure(go: Any, curves: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    scatter = _scatter(go, len(curves))
    x = _x(curves.index)
    for column, name, color in (
        ("buy_and_hold", "equal-weight buy-and-hold", BENCHMARK_COLOR),
        ("strategy", "portfolio", STRATEGY_COLOR),
    ):
        fig.add_trace(
            scatter(
                x=x,
                y=curves[column],
                mode="lines",
                name=name,
                line={"color": color, "width": 1.5},
                hovertemplate="%{x}<br>%{y:,.2f}<extra>" + name + "</extra>",
            )
        )
    _layout(fig, yaxis_title="account value")
    fig.update_layout(
        margin={"t": 64},  # the scale buttons sit above the plot, below plotly's mode bar
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "showactive": True,
                "active": 0,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
                "pad": {"r": 0, "t": 0, "b": 0},
                "buttons": [
                    {"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                    {"label": "log", "method": "relayout", "args": [{"yaxis.type": "log"}]},
                ],
            }
        ],
    )
    return fig


def _exposure_figure(go: Any, exposure: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    scatter = _scatter(go, len(exposure))
    x = _x(exposure.index)
    for column, name, color in (("gross", "gross (sum |w|)", STRATEGY_COLOR),
                                ("net", "net (sum w)", NET_COLOR)):  # fmt: skip
        fig.add_trace(
            scatter(
                x=x,
                y=exposure[column],
                mode="lines",
                name=name,
                line={"color": color, "width": 1.2},
                hovertemplate="%{x}<br>%{y:.2%}<extra>" + column + "</extra>",
            )
        )
    _layout(fig, yaxis_title="fraction of equity", height=320)
    fig.update_yaxes(tickformat=".0%")
    return fig


def _weights_figure(go: Any, weights: pd.DataFrame) -> go.Figure:
    symbols = [str(s) for s in weights.columns]
    fig = go.Figure(
        go.Heatmap(
            z=weights.to_numpy(dtype="float64").T,
            x=_x(weights.index),
            y=symbols,
            colorscale=WEIGHT_COLORSCALE,
            zmid=0.0,
            hoverongaps=False,
            colorbar={"title": {"text": "weight"}, "tickformat": ".0%"},
            hovertemplate="%{y}<br>%{x}<br>weight %{z:.2%}<extra></extra>",
            ygap=1,
        )
    )
    height = min(900, max(260, 90 + 26 * len(symbols)))
    _layout(fig, yaxis_title="", height=height)
    fig.update_layout(plot_bgcolor=NOT_LISTED_COLOR)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    return fig


_CONTRIBUTION_HEADER = ("symbol", "net PnL", "return contribution", "closed trades", "win rate",
                        "exposure", "listing")  # fmt: skip
_BAR_HEIGHT = 320  # px of the bar chart above the contribution table
_GAP = 70  # px between the bar chart and the table (the bars' category labels)
_LEFT = 80  # px left of the bar chart, for its y axis
_RIGHT = 20


def contribution_columns(contribution: pd.DataFrame) -> list[list[str]]:
    """The contribution table's cells, as shown (one list per `_CONTRIBUTION_HEADER` column)."""
    listing = [_span(a, b) for a, b in
               zip(contribution["first"], contribution["last"], strict=True)]  # fmt: skip
    return [
        [str(s) for s in contribution.index],
        [_money(v) for v in contribution["pnl"]],
        [_pct(v) for v in contribution["return_contribution"]],
        [_count(v) for v in contribution["trades"]],
        [_pct(v) for v in contribution["win_rate"]],
        [_pct(v) for v in contribution["exposure"]],
        listing,
    ]


def _contribution_figure(go: Any, contribution: pd.DataFrame) -> go.Figure:
    from plotly.subplots import make_subplots

    from ivybt.report.table import FONT_SIZE, HEADER_FILL

    columns = contribution_columns(contribution)
    lines = [wrap_header(label) for label in _CONTRIBUTION_HEADER]
    widths = column_widths(lines, columns)
    header_height = ROW_HEIGHT * max(len(label) for label in lines) + 6
    table_height = min(header_height + ROW_HEIGHT * max(len(contribution), 1) + 4, 560)
    plot_height = _BAR_HEIGHT + _GAP + table_height
    fig = make_subplots(
        rows=2,
        cols=1,
        specs=[[{"type": "xy"}], [{"type": "table"}]],
        row_heights=[_BAR_HEIGHT, table_height],
        vertical_spacing=_GAP / plot_height,
    )
    pnl = contribution["pnl"].to_numpy(dtype="float64")
    fig.add_trace(
        go.Bar(
            x=columns[0],
            y=pnl,
            name="net PnL",
            marker={"color": [LONG_COLOR if v > 0 else SHORT_COLOR for v in pnl]},
            customdata=np.column_stack(columns[2:6]) if len(contribution) else None,
            hovertemplate=(
                "%{x}<br>net PnL %{y:,.2f}<br>return contribution %{customdata[0]}"
                "<br>closed trades %{customdata[1]}<br>win rate %{customdata[2]}"
                "<br>exposure %{customdata[3]}<extra></extra>"
            ),
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
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
                "values": columns,
                "align": ["left", *["right"] * 5, "left"],
                "fill": {"color": "white"},
                "height": ROW_HEIGHT,
                "font": {"size": FONT_SIZE},
            },
        ),
        row=2,
        col=1,
    )
    # the figure is as wide as the table's columns need (a little more, so plotly's rounding
    # never clips) or as the bars need, whichever is wider; the table keeps its own width
    table_width = sum(widths) * 1.02 + 2 * CELL_PADDING
    plot_width = math.ceil(max(table_width, 16 * len(contribution) + 120, 640))
    fig.update_traces(domain={"x": [0.0, min(1.0, table_width / plot_width)]},
                      selector={"type": "table"})  # fmt: skip
    fig.update_layout(
        template=LIGHT_TEMPLATE,
        width=plot_width + _LEFT + _RIGHT,
        height=plot_height + 30 + 10,
        margin={"l": _LEFT, "r": _RIGHT, "t": 30, "b": 10},
        yaxis_title="net PnL",
    )
    fig.update_yaxes(automargin=False, row=1, col=1)
    return fig


_TRADE_HEADER = ("#", "symbol", "side", "outcome", "entry", "exit", "units", "entry price",
                 "exit price", "fees", "net PnL", "return", "bars")  # fmt: skip


def trade_columns(trades: pd.DataFrame) -> list[list[str]]:
    """The trade table's cells, as shown (one list per column of `_TRADE_HEADER`); times are
    the bars' wall-clock times ("2020-01-02", "2020-01-02 14:30")."""
    if len(trades) == 0:
        return [[] for _ in _TRADE_HEADER]

    def times(column: str) -> list[str]:
        return [str(t).replace("T", " ") for t in _x(trades[column])]

    return [
        [str(n) for n in trades["trade"]],
        [str(s) for s in trades["symbol"]],
        [str(s) for s in trades["side"]],
        [str(o) for o in trades["outcome"]],
        times("entry_time"),
        times("exit_time"),
        [_number(v, ",.4f") for v in trades["units"]],
        [_number(v, ",.4f") for v in trades["entry_price"]],
        [_number(v, ",.4f") for v in trades["exit_price"]],
        [_number(v, ",.2f") for v in trades["fees"]],
        [_number(v, ",.2f") for v in trades["net_pnl"]],
        [_pct(v) for v in trades["return"]],
        [str(int(v)) for v in trades["bars_held"]],
    ]


def _trades_figure(trades: pd.DataFrame) -> go.Figure:
    columns = trade_columns(trades)
    align = ["right", "left", "left", "left", "left", "left", *["right"] * 7]
    return table_figure(_TRADE_HEADER, columns, align=align, max_height=600)


# -- the trade table (HTML) ----------------------------------------------------------------

_TRADE_CSS = """
.trades-block .trade-filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center;
  margin: 0.25rem 0 0.5rem; font-size: 0.9rem; }
.trades-block .trade-filters select { margin-left: 0.3rem; }
.trades-block .trade-count, .trades-block .trade-note { color: #52606d; font-size: 0.9rem; }
.trades-block .trade-scroll { max-height: 600px; overflow: auto; border: 1px solid #e4e7eb; }
table.trades { border-collapse: collapse; font-size: 0.85rem; white-space: nowrap; }
table.trades th { position: sticky; top: 0; background: #e4e7eb; padding: 0.3rem 0.6rem; }
table.trades td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #eef1f4;
  text-align: right; font-variant-numeric: tabular-nums; }
table.trades td.text { text-align: left; }
table.trades tr.win td.outcome { color: #2ca02c; }
table.trades tr.loss td.outcome { color: #d62728; }
table.trades tr.open td.outcome { color: #ff7f0e; }
"""

# Filters the rows of the table in this script's block: a row stays visible when it matches
# every select that is not "all" (its data-symbol, data-side, data-outcome attributes).
_TRADE_JS = """(() => {
  const block = document.currentScript.closest('.trades-block');
  const selects = [...block.querySelectorAll('select[data-filter]')];
  const rows = [...block.querySelectorAll('tbody tr')];
  const count = block.querySelector('.trade-count');
  const apply = () => {
    let shown = 0;
    for (const row of rows) {
      const keep = selects.every(s => !s.value || row.dataset[s.dataset.filter] === s.value);
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    }
    count.textContent = `${shown} of ${rows.length} trades shown`;
  };
  selects.forEach(s => s.addEventListener('change', apply));
  apply();
})();"""


def trade_table_html(data: Mapping[str, pd.DataFrame]) -> str:
    """The trades of `portfolio_report_data(...)` as an HTML block: three <select> filters
    (symbol, side, outcome; "all" by default), a count of the rows shown, a note when only the
    last trades are shown, and the table (one row per trade, oldest entry first, with
    ``data-symbol``, ``data-side`` and ``data-outcome`` attributes). Inline CSS and vanilla
    JavaScript; nothing is loaded from anywhere."""
    trades, filters, sizes = data["trades"], data["filters"], data["sizes"].iloc[0]
    parts = [f"<style>{_TRADE_CSS}</style>", '<div class="trades-block">']
    controls = []
    for name in FILTERS:
        values = filters.loc[filters["filter"] == name, "value"].tolist()
        options = ['<option value="">all</option>'] + [
            f'<option value="{html.escape(str(v))}">{html.escape(str(v))}</option>' for v in values
        ]
        controls.append(
            f'<label>{name}<select data-filter="{name}" name="{name}">{"".join(options)}'
            "</select></label>"
        )
    count = f"{len(trades)} of {len(trades)} trades shown"
    parts.append(
        '<div class="trade-filters">' + "".join(controls)
        + f'<span class="trade-count">{count}</span></div>'
    )  # fmt: skip
    total, shown = int(sizes["trades"]), int(sizes["trades_shown"])
    if total > shown:
        parts.append(
            f'<p class="trade-note">The last {shown:,} of {total:,} trades by entry time; '
            "the run's trades table holds them all.</p>"
        )
    if total == 0:
        parts.append('<p class="trade-note">No trades in this backtest.</p>')
    parts.append('<div class="trade-scroll"><table class="trades"><thead><tr>')
    parts.extend(f"<th>{html.escape(label)}</th>" for label in _TRADE_HEADER)
    parts.append("</tr></thead><tbody>")
    columns = trade_columns(trades)
    text = {1, 2, 3, 4, 5}  # left-aligned columns
    for i in range(len(trades)):
        symbol, side, outcome = columns[1][i], columns[2][i], columns[3][i]
        cells = "".join(
            f'<td class="{"text " if k in text else ""}{"outcome" if k == 3 else ""}">'
            f"{html.escape(column[i])}</td>"
            for k, column in enumerate(columns)
        )
        parts.append(
            f'<tr class="{outcome}" data-symbol="{html.escape(symbol)}" data-side="{side}"'
            f' data-outcome="{outcome}">{cells}</tr>'
        )
    parts.append("</tbody></table></div>")
    parts.append(f"<script>{_TRADE_JS}</script>")
    parts.append("</div>")
    return "\n".join(parts)


class TradeTable:
    """A section of raw HTML for `render_html`, which draws each section with
    ``section.to_html(full_html=False, include_plotlyjs=..., ...)``: this returns its HTML and
    ignores those arguments, so it must not be the page's first section (plotly.js is inlined
    with the first). Jupyter shows it too (`_repr_html_`)."""

    def __init__(self, body: str) -> None:
        self.body = body

    def to_html(self, **_: Any) -> str:
        return self.body

    def _repr_html_(self) -> str:
        return self.body


# -- page ----------------------------------------------------------------------------------


def portfolio_sections(
    equity: pd.DataFrame,
    weights: pd.DataFrame,
    contributions: pd.DataFrame,
    trades: pd.DataFrame,
) -> list[tuple[str, go.Figure]]:
    """Every (heading, figure) of the portfolio report, in `SECTION_HEADINGS` order:
    `portfolio_figures` of `portfolio_report_data(equity, weights, contributions, trades)`.
    A result's `.plot()` draws these; report.html draws the same, with the trades as the
    filterable `trade_table_html` instead of a plotly table."""
    return portfolio_figures(portfolio_report_data(equity, weights, contributions, trades))


def portfolio_summary_rows(
    metrics: Mapping[str, object], portfolio_metrics: Mapping[str, object]
) -> list[tuple[str, str]]:
    """(label, formatted value) rows: the backtest metrics (`format_metrics`), then the
    portfolio's (symbols, annualized turnover, average and maximum gross and net exposure
    as % of equity), then any other portfolio metric."""
    rows = format_metrics(metrics)
    for key, (label, kind) in _PORTFOLIO_METRICS.items():
        if key in portfolio_metrics:
            rows.append((label, format_metric(kind, portfolio_metrics[key])))
    rows.extend((key, format_metric(key, value)) for key, value in portfolio_metrics.items()
                if key not in _PORTFOLIO_METRICS)  # fmt: skip
    return rows


def portfolio_notes(data: Mapping[str, pd.DataFrame]) -> list[str]:
    """The page's notes on what it shows: the heatmap's downsampling, the open trades, the
    trade table's cut."""
    sizes = data["sizes"].iloc[0]
    notes = [
        "Exposure and weights are fractions of equity at each close; gross is the sum of "
        "|weights|, net their sum (shorts count negative).",
    ]
    step, bars = int(sizes["heatmap_step"]), int(sizes["bars"])
    if step > 1:
        notes.append(
            f"Weights heatmap: {bars:,} bars drawn as {int(sizes['heatmap_columns']):,} "
            f"columns, each the weights at the last bar of {step} consecutive bars."
        )
    notes.append("Weights heatmap: grey cells are bars where a symbol is not listed.")
    trades = data["trades"]
    n_open = int(trades["is_open"].sum()) if len(trades) else 0
    if n_open:
        notes.append(
            f"{n_open} trade(s) still open at the last bar: marked at the last price, outcome "
            "'open'; their PnL counts in the symbols' contribution."
        )
    total, shown = int(sizes["trades"]), int(sizes["trades_shown"])
    if total > shown:
        notes.append(f"Trade table: the last {shown:,} of {total:,} trades by entry time.")
    return notes


def portfolio_report_html(
    *,
    title: str,
    equity: pd.DataFrame,
    weights: pd.DataFrame,
    contributions: pd.DataFrame,
    trades: pd.DataFrame,
    metrics: Mapping[str, object],
    portfolio_metrics: Mapping[str, object],
    notes: Iterable[str] = (),
    factor: FactorView | None = None,
    exits: bool = False,
) -> str:
    """The portfolio report as one offline HTML page (plotly.js inlined once); nothing written.

    The metrics and portfolio metrics (`portfolio_summary_rows`), the five figures of
    `portfolio_figures`, the filterable trade table (`trade_table_html`), then `notes` and
    the report's own (`portfolio_notes`); for a cross-sectional strategy, its `factor` view
    (`ivybt.report.factor`) before the trades; with `exits` (a run with stops) the exits by
    reason (`ivybt.report.exits`) before the trades too.
    """
    data = portfolio_report_data(equity, weights, contributions, trades)  # checks the frames
    sections: Sequence[tuple[str, object]] = [
        *_chart_sections(data),
        *(factor_sections(factor) if factor is not None else []),
        *([exits_section(trades)] if exits else []),
        (TRADES_HEADING, TradeTable(trade_table_html(data))),
    ]
    return render_html(
        title,
        summary_rows=portfolio_summary_rows(metrics, portfolio_metrics),
        sections=sections,
        notes=[*notes, *portfolio_notes(data)],
    )


def _span(first: Any, last: Any) -> str:
    if pd.isna(first) or pd.isna(last):
        return "n/a"
    return "..".join(str(t).replace("T", " ") for t in _x(pd.DatetimeIndex([first, last])))


def _number(value: Any, spec: str) -> str:
    number = float(value)
    return "n/a" if math.isnan(number) else format(number, spec)


def _pct(value: Any) -> str:
    return format_metric("exposure", value)  # a fraction, shown as % with 2 decimals


def _count(value: Any) -> str:
    return format_metric("n_trades", value)


def _money(value: Any) -> str:
    return format_metric("gross_profit", value)
