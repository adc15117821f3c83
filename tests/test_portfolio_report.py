"""The portfolio report: tables from hand-built frames of a three-symbol run (one symbol listed
late, one delisted early, a short and an open trade), the six figures, the offline page with
its filterable trade table, and the page in headless Chromium (no engine involved)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ivybt.report.backtest as backtest_report
import ivybt.report.portfolio as portfolio_report
from ivybt.errors import ConfigError
from ivybt.report.backtest import format_metrics
from ivybt.report.figures import ReportFigures
from ivybt.report.portfolio import (
    SECTION_HEADINGS,
    TRADES_HEADING,
    portfolio_report_html,
    portfolio_sections,
    portfolio_summary_rows,
    trade_table_html,
)
from ivybt.report.portfolio_data import (
    TRADE_TABLE_COLUMNS,
    downsample_last,
    heatmap_step,
    portfolio_report_data,
)
from tests.browser import CLIPPED_TABLE_TEXT_JS, Chromium, require_chromium

REPO = Path(__file__).resolve().parents[1]
CASH = 10_000.0
N_BARS = 300
SYMBOLS = ("AAA", "BBB", "CCC")
LISTED = {"AAA": (0, N_BARS - 1), "BBB": (60, N_BARS - 1), "CCC": (0, 220)}  # bar bounds
# (symbol, side, entry bar, exit bar, weight); the last AAA trade is still open at the end
TRADES = (
    ("AAA", "long", 10, 150, 0.5),
    ("CCC", "long", 30, 120, 0.4),
    ("BBB", "short", 80, 200, 0.3),
    ("CCC", "long", 130, 215, 0.4),
    ("AAA", "long", 170, N_BARS - 1, 0.5),
)
OPEN_TRADE = 4
PLOTLY_BANNER = "plotly.js v"
METRICS = {
    "total_return": 0.0812,
    "cagr": 0.067,
    "volatility": 0.11,
    "sharpe": 0.61,
    "sortino": 0.9,
    "max_drawdown": -0.093,
    "calmar": 0.72,
    "n_trades": 4.0,
    "win_rate": 0.5,
    "profit_factor": 1.4,
    "avg_win": 0.05,
    "avg_loss": -0.02,
    "exposure": 0.8,
    "gross_profit": 900.0,
    "gross_loss": -300.0,
}
PORTFOLIO_METRICS = {
    "turnover": 3.25,
    "avg_gross": 0.734,
    "max_gross": 1.2,
    "avg_net": 0.41,
    "max_net": 0.9,
    "n_symbols": 3,
}


def make_run(index: pd.DatetimeIndex, trades: tuple = TRADES) -> dict[str, pd.DataFrame]:
    """The frames of a made-up portfolio run on `index`: random-walk closes per symbol (NaN
    where not listed), weights held from each trade's entry bar to its exit bar (exit
    excluded, open trade included), and equity, trades and contributions consistent with
    them in the ways the report reads."""
    n = len(index)
    rng = np.random.default_rng(7)
    closes = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, len(SYMBOLS))), axis=0)),
        index=index,
        columns=list(SYMBOLS),
    )
    for symbol, (first, last) in LISTED.items():
        closes.iloc[:first, closes.columns.get_loc(symbol)] = np.nan
        closes.iloc[last + 1 :, closes.columns.get_loc(symbol)] = np.nan
    weights = pd.DataFrame(0.0, index=index, columns=list(SYMBOLS))
    rows = []
    for k, (symbol, side, i_in, i_out, weight) in enumerate(trades):
        is_open = k == OPEN_TRADE
        sign = 1.0 if side == "long" else -1.0
        weights.iloc[i_in : i_out + (1 if is_open else 0), weights.columns.get_loc(symbol)] = (
            sign * weight
        )
        entry, exit_ = closes[symbol].iloc[i_in], closes[symbol].iloc[i_out]
        units = weight * CASH / entry
        gross = sign * units * (exit_ - entry)
        fees = 0.001 * units * (entry + (0 if is_open else exit_))
        rows.append({
            "symbol": symbol, "entry_time": index[i_in], "exit_time": index[i_out],
            "side": side, "units": units, "entry_price": entry, "exit_price": exit_,
            "entry_fee": 0.001 * units * entry, "exit_fee": fees - 0.001 * units * entry,
            "fees": fees, "gross_pnl": gross, "net_pnl": gross - fees,
            "return": (gross - fees) / (units * entry), "bars_held": i_out - i_in,
            "is_open": is_open,
        })  # fmt: skip
    # shuffled: the report sorts by entry time
    trade_frame = pd.DataFrame(rows).sample(frac=1.0, random_state=3, ignore_index=True)
    returns = (weights.shift(1).fillna(0.0) * closes.pct_change().fillna(0.0)).sum(axis=1)
    value = CASH * (1 + returns).cumprod()
    listed = closes.notna()
    bench_returns = closes.pct_change().where(listed).mean(axis=1).fillna(0.0)
    equity = pd.DataFrame(
        {
            "equity": value,
            "returns": returns,
            "drawdown": value / value.cummax() - 1.0,
            "gross": weights.abs().sum(axis=1),
            "net": weights.sum(axis=1),
            "benchmark_equity": CASH * (1 + bench_returns).cumprod(),
            "traded": weights.diff().abs().sum(axis=1) * value,
        },
        index=index,
    )
    closed = trade_frame.loc[~trade_frame["is_open"]]
    contributions = pd.DataFrame(
        {
            "pnl": trade_frame.groupby("symbol")["net_pnl"].sum(),
            "trades": closed.groupby("symbol").size(),
            "win_rate": closed.groupby("symbol")["net_pnl"].apply(lambda p: (p > 0).mean()),
            "exposure": (weights != 0).mean(),
            "first": pd.Series({s: index[a] for s, (a, _) in LISTED.items()}),
            "last": pd.Series({s: index[b] for s, (_, b) in LISTED.items()}),
        }
    ).reindex(list(SYMBOLS))
    contributions["return_contribution"] = contributions["pnl"] / CASH
    return {"equity": equity, "weights": weights, "contributions": contributions,
            "trades": trade_frame}  # fmt: skip


DAILY = pd.bdate_range("2020-01-01", periods=N_BARS)
HOURLY = pd.date_range("2024-03-01 13:00", periods=N_BARS, freq="h", tz="UTC")


@pytest.fixture(scope="module")
def run() -> dict[str, pd.DataFrame]:
    return make_run(DAILY)


@pytest.fixture(scope="module")
def page(run: dict[str, pd.DataFrame]) -> str:
    return portfolio_report_html(
        title="sma_cross on AAA, BBB <& CCC>",
        metrics=METRICS,
        portfolio_metrics=PORTFOLIO_METRICS,
        notes=["fees 10 bp per side"],
        **run,
    )


# -- data ----------------------------------------------------------------------------------


def test_report_data_tables(run: dict[str, pd.DataFrame]) -> None:
    data = portfolio_report_data(**run)
    assert set(data) == {"equity", "drawdown", "exposure", "weights", "contribution", "trades",
                         "filters", "sizes"}  # fmt: skip
    for key in ("equity", "drawdown", "exposure", "weights"):
        assert data[key].index.equals(DAILY)  # 300 bars: no downsampling
        assert data[key].index.name == "date"
    equity = run["equity"]
    np.testing.assert_array_equal(data["equity"]["strategy"], equity["equity"])
    np.testing.assert_array_equal(data["equity"]["buy_and_hold"], equity["benchmark_equity"])
    np.testing.assert_array_equal(data["drawdown"]["drawdown"], equity["drawdown"])
    assert list(data["exposure"].columns) == ["gross", "net"]
    assert data["exposure"]["gross"].max() == pytest.approx(1.2)  # AAA + BBB short + CCC
    at_160 = data["exposure"].iloc[160]  # CCC long 0.4, BBB short 0.3
    assert (at_160["gross"], at_160["net"]) == (pytest.approx(0.7), pytest.approx(0.1))

    weights = data["weights"]
    assert list(weights.columns) == list(SYMBOLS)
    # not listed: NaN (an empty heatmap cell), listed and not held: 0
    assert weights["BBB"].iloc[:60].isna().all() and weights["BBB"].iloc[60:].notna().all()
    assert weights["CCC"].iloc[221:].isna().all() and weights["CCC"].iloc[:221].notna().all()
    assert weights["AAA"].notna().all() and (weights["AAA"].iloc[:10] == 0).all()
    assert (weights["BBB"].iloc[80:200] == -0.3).all()
    assert (run["weights"].isna().sum() == 0).all()  # the input is left alone

    contribution = data["contribution"]
    assert contribution.index.name == "symbol"
    assert set(contribution.index) == set(SYMBOLS)
    assert contribution["pnl"].is_monotonic_decreasing  # largest PnL first
    assert contribution.loc["AAA", "trades"] == 1  # one closed, one open
    assert contribution.loc["CCC", "last"] == DAILY[220]

    sizes = data["sizes"].iloc[0].to_dict()
    assert sizes == {"bars": 300, "symbols": 3, "heatmap_columns": 300, "heatmap_step": 1,
                     "trades": 5, "trades_shown": 5}  # fmt: skip


def test_heatmap_keeps_the_last_bar_of_each_chunk(run: dict[str, pd.DataFrame]) -> None:
    data = portfolio_report_data(**run, max_columns=64)
    weights = data["weights"]
    assert heatmap_step(300, 64) == 5
    assert len(weights) == 60 and data["sizes"].at[0, "heatmap_step"] == 5
    assert weights.index.equals(DAILY[4::5])  # bars 4, 9, ..., 299
    full = portfolio_report_data(**run)["weights"]
    pd.testing.assert_frame_equal(weights, full.iloc[4::5])
    # a last chunk shorter than the others still ends at the last bar
    frame = pd.DataFrame({"a": np.arange(300)})
    kept = downsample_last(frame, 7)
    assert len(kept) == 43 and heatmap_step(300, 43) == 7
    assert kept["a"].tolist() == [*range(6, 300, 7), 299]
    assert downsample_last(frame, 1) is frame


def test_a_32_year_daily_run_draws_at_most_2000_columns() -> None:
    index = pd.bdate_range("1993-01-29", periods=8_300)  # ~32 years of weekdays
    equity = pd.DataFrame({c: 1.0 for c in ("equity", "drawdown", "gross", "net",
                                            "benchmark_equity")}, index=index)  # fmt: skip
    weights = pd.DataFrame(
        np.random.default_rng(1).uniform(-1, 1, (len(index), 20)),
        index=index,
        columns=[f"S{k:02d}" for k in range(20)],
    )
    contributions = pd.DataFrame(
        {"pnl": 0.0, "return_contribution": 0.0, "trades": 0, "win_rate": np.nan,
         "exposure": 1.0, "first": index[0], "last": index[-1]},
        index=weights.columns,
    )  # fmt: skip
    data = portfolio_report_data(equity, weights, contributions, pd.DataFrame())
    assert heatmap_step(8_300) == 5
    assert len(data["weights"]) == 1_660 <= 2_000
    assert data["weights"].index[-1] == index[-1]
    assert data["weights"].shape[1] == 20
    notes = portfolio_report.portfolio_notes(data)
    assert any("8,300 bars drawn as 1,660 columns" in note for note in notes)


def test_trades_sorted_numbered_and_cut_to_the_last(run: dict[str, pd.DataFrame]) -> None:
    trades = portfolio_report_data(**run)["trades"]
    assert tuple(trades.columns) == TRADE_TABLE_COLUMNS
    assert trades["entry_time"].is_monotonic_increasing
    assert trades["trade"].tolist() == [1, 2, 3, 4, 5]
    assert trades["symbol"].tolist() == [t[0] for t in TRADES]
    assert trades["side"].tolist() == [t[1] for t in TRADES]
    open_row = trades.loc[trades["is_open"]]
    assert len(open_row) == 1 and open_row["outcome"].item() == "open"
    closed = trades.loc[~trades["is_open"]]
    assert (closed["outcome"] == np.where(closed["net_pnl"] > 0, "win", "loss")).all()

    cut = portfolio_report_data(**run, max_trades=2)
    assert cut["trades"]["trade"].tolist() == [4, 5]  # the last two by entry time
    assert cut["sizes"].at[0, "trades"] == 5 and cut["sizes"].at[0, "trades_shown"] == 2
    html = trade_table_html(cut)
    assert "The last 2 of 5 trades by entry time" in html
    assert html.count("<tr class=") == 2


def test_filter_options(run: dict[str, pd.DataFrame]) -> None:
    data = portfolio_report_data(**run)
    filters = data["filters"]
    options = {name: group["value"].tolist() for name, group in filters.groupby("filter")}
    # symbols in the contribution order (largest PnL first); sides and outcomes present
    assert options["symbol"] == list(data["contribution"].index)
    assert options["side"] == ["long", "short"]
    outcomes = set(data["trades"]["outcome"])
    assert options["outcome"] == [o for o in ("win", "loss", "open") if o in outcomes]
    assert "open" in options["outcome"]

    only_aaa = portfolio_report_data(**{**run, "trades": run["trades"].query("symbol == 'AAA'")})
    assert only_aaa["filters"].query("filter == 'symbol'")["value"].tolist() == ["AAA"]
    assert only_aaa["filters"].query("filter == 'side'")["value"].tolist() == ["long"]


def test_intraday_utc_listing_bounds() -> None:
    frames = make_run(HOURLY)
    data = portfolio_report_data(**frames)
    weights = data["weights"]
    assert weights.index.tz is not None
    assert weights["BBB"].iloc[:60].isna().all() and weights["BBB"].iloc[60:].notna().all()
    # listing bounds given as naive UTC wall time are read in the index's zone
    naive = frames["contributions"].assign(
        first=lambda c: c["first"].dt.tz_localize(None),
        last=lambda c: c["last"].dt.tz_localize(None),
    )
    again = portfolio_report_data(frames["equity"], frames["weights"], naive, frames["trades"])
    pd.testing.assert_frame_equal(again["weights"], weights)
    table = portfolio_report.trade_columns(data["trades"])
    assert table[4][0] == HOURLY[10].strftime("%Y-%m-%d %H:%M")  # wall-clock UTC


def test_report_data_rejects_frames_of_different_runs(run: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ConfigError, match="same index as equity"):
        portfolio_report_data(**{**run, "weights": run["weights"].iloc[1:]})
    with pytest.raises(ConfigError, match=r"equity is missing column\(s\) \['gross'\]"):
        portfolio_report_data(**{**run, "equity": run["equity"].drop(columns="gross")})
    with pytest.raises(ConfigError, match=r"trades is missing column\(s\) \['symbol'\]"):
        portfolio_report_data(**{**run, "trades": run["trades"].drop(columns="symbol")})
    with pytest.raises(ConfigError, match="'long' or 'short'"):
        portfolio_report_data(**{**run, "trades": run["trades"].assign(side="buy")})


def test_builder_does_not_import_plotly() -> None:
    code = (
        "import sys; from tests.test_portfolio_report import make_run, DAILY; "
        "from ivybt.report.portfolio_data import portfolio_report_data; "
        "portfolio_report_data(**make_run(DAILY)); "
        "import ivybt.report.portfolio; "
        "assert 'plotly' not in sys.modules, 'plotly imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# -- figures -------------------------------------------------------------------------------


def test_sections_are_the_six_headings_in_order(run: dict[str, pd.DataFrame]) -> None:
    sections = portfolio_sections(**run)
    assert (
        [heading for heading, _ in sections]
        == list(SECTION_HEADINGS)
        == [
            "Equity vs equal-weight buy-and-hold",
            "Drawdown",
            "Gross and net exposure",
            "Weights (time x symbol)",
            "Contribution by symbol",
            "Trades",
        ]
    )
    assert ReportFigures(sections)["Trades"] is sections[-1][1]  # what a result's .plot() gives
    figures = dict(sections)
    equity = figures["Equity vs equal-weight buy-and-hold"]
    assert [t.name for t in equity.data] == ["equal-weight buy-and-hold", "portfolio"]
    buttons = equity.layout.updatemenus[0].buttons
    assert [b.args[0]["yaxis.type"] for b in buttons] == ["linear", "log"]
    assert [t.name for t in figures["Gross and net exposure"].data] == ["gross (sum |w|)",
                                                                        "net (sum w)"]  # fmt: skip
    (heatmap,) = figures["Weights (time x symbol)"].data
    assert heatmap.type == "heatmap" and heatmap.zmid == 0
    assert list(heatmap.y) == list(SYMBOLS)
    assert np.asarray(heatmap.z).shape == (3, N_BARS)
    assert heatmap.x[0] == "2020-01-01"
    bars, table = figures["Contribution by symbol"].data
    assert bars.type == "bar" and table.type == "table"
    assert list(bars.x) == list(table.cells.values[0])
    assert figures["Trades"].data[0].type == "table"
    assert len(figures["Trades"].data[0].cells.values[0]) == 5


def test_long_series_use_webgl(run: dict[str, pd.DataFrame], monkeypatch) -> None:
    monkeypatch.setattr(portfolio_report, "GL_THRESHOLD", 100)
    monkeypatch.setattr(backtest_report, "GL_THRESHOLD", 100)  # the shared drawdown figure
    figures = dict(portfolio_sections(**run))
    for heading in SECTION_HEADINGS[:3]:
        assert {t.type for t in figures[heading].data} == {"scattergl"}, heading


def test_summary_rows() -> None:
    rows = portfolio_summary_rows(METRICS, {**PORTFOLIO_METRICS, "extra": 2.0})
    assert rows[: len(METRICS)] == format_metrics(METRICS)
    assert rows[len(METRICS) :] == [
        ("Symbols", "3"),
        ("Turnover (annualized)", "325.00%"),
        ("Average gross exposure", "73.40%"),
        ("Maximum gross exposure", "120.00%"),
        ("Average net exposure", "41.00%"),
        ("Maximum net exposure", "90.00%"),
        ("extra", "2"),
    ]


# -- HTML ----------------------------------------------------------------------------------


def test_page_inlines_plotly_once_and_works_offline(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(PLOTLY_BANNER) == 1
    assert page.count("Plotly.newPlot(") == 5  # the trades are an HTML table
    assert page.index(PLOTLY_BANNER) < page.index("Plotly.newPlot(")
    lowered = page.lower()
    for needle in ("<script src", "<link", 'src="https://cdn', "@import"):
        assert needle not in lowered, needle


def test_page_has_every_section_metric_and_note(page: str) -> None:
    for heading in SECTION_HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert page.index(f"<h2>{TRADES_HEADING}</h2>") > page.rindex("Plotly.newPlot(")
    for label, value in portfolio_summary_rows(METRICS, PORTFOLIO_METRICS):
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page
    assert "<title>sma_cross on AAA, BBB &lt;&amp; CCC&gt;</title>" in page
    assert "<li>fees 10 bp per side</li>" in page
    assert "1 trade(s) still open at the last bar" in page
    for name in ("symbol", "side", "outcome"):
        assert f'<select data-filter="{name}"' in page
    assert '<option value="short">short</option>' in page
    assert page.count('<tr class="open" data-symbol="AAA" data-side="long"') == 1
    assert "5 of 5 trades shown" in page


def test_page_without_trades(run: dict[str, pd.DataFrame]) -> None:
    no_trades = run["trades"].iloc[:0]
    page = portfolio_report_html(
        title="flat", metrics={**METRICS, "n_trades": 0.0}, portfolio_metrics={}, notes=(),
        **{**run, "trades": no_trades},
    )  # fmt: skip
    assert page.count("Plotly.newPlot(") == 5
    assert "No trades in this backtest." in page
    assert "0 of 0 trades shown" in page
    assert "still open" not in page


# -- the page in headless Chromium ---------------------------------------------------------

GREY_PLOTS_JS = """[...document.querySelectorAll('.js-plotly-plot rect.bg')]
  .filter(r => getComputedStyle(r).fill === 'rgb(229, 236, 246)').length"""


def filter_js(**chosen: str) -> str:
    """Set the trade filters (name -> value, "" for all), fire their change events, and
    return [visible rows, their symbols, sides and outcomes, the count line]."""
    sets = "".join(
        f"s = document.querySelector('select[data-filter=\"{name}\"]'); s.value = '{value}';"
        " s.dispatchEvent(new Event('change'));"
        for name, value in chosen.items()
    )
    return f"""(() => {{ let s; {sets}
  const rows = [...document.querySelectorAll('table.trades tbody tr')]
    .filter(r => !r.hidden && r.offsetParent !== null);
  return [rows.length, rows.map(r => r.dataset.symbol), rows.map(r => r.dataset.side),
          rows.map(r => r.dataset.outcome),
          document.querySelector('.trade-count').textContent];
}})()"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    require_chromium()
    with Chromium() as browser:
        yield browser


def test_page_opens_offline_draws_every_plot_and_filters_trades(
    tmp_path: Path, page: str, chromium: Chromium
) -> None:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    trades = portfolio_report_data(**make_run(DAILY))["trades"]
    aaa = trades.loc[trades["symbol"] == "AAA"]
    checks = {
        "clipped": CLIPPED_TABLE_TEXT_JS,
        "grey": GREY_PLOTS_JS,
        "all": filter_js(),
        "aaa": filter_js(symbol="AAA"),
        "aaa_open": filter_js(outcome="open"),
        "short": filter_js(symbol="", outcome="", side="short"),
        "reset": filter_js(side=""),
    }
    result = chromium.open(path, checks=checks)
    assert result.errors == []
    assert result.external_requests == []
    assert result.graphs == result.plots == 5  # every figure drew
    assert result.webgl_plots == 0  # 300 bars: SVG traces
    values = result.values
    assert values["clipped"] == [] and values["grey"] == 0
    assert values["all"][0] == 5 and values["all"][4] == "5 of 5 trades shown"
    assert values["aaa"][:2] == [len(aaa), ["AAA"] * len(aaa)]
    assert values["aaa"][4] == f"{len(aaa)} of 5 trades shown"
    assert values["aaa_open"][:4] == [1, ["AAA"], ["long"], ["open"]]  # filters combine
    assert values["short"][:3] == [1, ["BBB"], ["short"]]
    assert values["reset"][0] == 5
