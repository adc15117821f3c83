"""The backtest report: tables built from real SPY bars, figures, the offline HTML page, the
atomic write, and the promise that `import ivybt.report` leaves plotly unloaded."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ivybt.data.sample import load_sample
from ivybt.errors import ConfigError
from ivybt.report import backtest as report_backtest
from ivybt.report import (
    backtest_figures,
    backtest_report_data,
    backtest_report_html,
    format_metric,
    format_metrics,
    render_html,
)

REPO = Path(__file__).resolve().parents[1]
CASH = 10_000.0
FEE_RATE = 0.0005
LONG = (20, 80, 50.0)  # enter at bar 20's open, exit at bar 80's open, 50 units
SHORT = (250, 40.0)  # enter at bar 250's open, still open at the last bar, 40 units
PLOTLY_BANNER = "plotly.js v"  # first line of the inlined plotly.js bundle
METRICS = {
    "total_return": 0.01234,
    "cagr": 0.0456,
    "volatility": 0.1789,
    "sharpe": 0.987,
    "sortino": float("nan"),
    "max_drawdown": -0.0712,
    "calmar": 0.64,
    "n_trades": 1.0,
    "win_rate": 1.0,
    "profit_factor": float("inf"),
    "avg_win": 0.0321,
    "avg_loss": float("nan"),
    "exposure": 0.3667,
    "gross_profit": 1234.5,
    "gross_loss": 0.0,
}


def spy_slice(n_bars: int = 300) -> pd.DataFrame:
    frame, _ = load_sample("SPY", "1d")
    return frame.loc[:, ["open", "high", "low", "close"]].iloc[:n_bars]


def make_backtest(
    prices: pd.DataFrame, *, with_trades: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Equity and trades of a hand-written strategy on `prices`: one closed long trade and
    one short trade still open at the end; fills at the open, fees on both sides."""
    opens, closes = prices["open"].to_numpy(), prices["close"].to_numpy()
    n = len(prices)
    units = np.zeros(n)
    cash = np.full(n, CASH)
    rows = []
    if with_trades:
        (i_in, i_out, q_long), (j_in, q_short) = LONG, SHORT
        fee_in, fee_out = (FEE_RATE * q_long * opens[i] for i in (i_in, i_out))
        units[i_in:i_out] = q_long
        cash[i_in:] -= q_long * opens[i_in] + fee_in
        cash[i_out:] += q_long * opens[i_out] - fee_out
        gross = q_long * (opens[i_out] - opens[i_in])
        rows.append(
            trade_row(prices, i_in, i_out, "long", q_long, opens[i_out], fee_in, fee_out, gross)
        )
        short_fee = FEE_RATE * q_short * opens[j_in]
        units[j_in:] = -q_short
        cash[j_in:] += q_short * opens[j_in] - short_fee
        gross = q_short * (opens[j_in] - closes[-1])
        rows.append(
            trade_row(prices, j_in, n - 1, "short", q_short, closes[-1], short_fee, 0.0, gross)
        )
    value = cash + units * closes
    peak = np.maximum.accumulate(np.maximum(value, CASH))
    equity = pd.DataFrame(
        {
            "equity": value,
            "returns": np.diff(value, prepend=CASH) / np.concatenate([[CASH], value[:-1]]),
            "drawdown": value / peak - 1.0,
            "units": units,
            "benchmark_equity": CASH * closes / closes[0],
        },
        index=prices.index,
    )
    trades = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    return equity, trades


TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "side",
    "units",
    "entry_price",
    "exit_price",
    "entry_fee",
    "exit_fee",
    "fees",
    "gross_pnl",
    "net_pnl",
    "return",
    "bars_held",
    "is_open",
)


def trade_row(
    prices: pd.DataFrame,
    i_in: int,
    i_out: int,
    side: str,
    units: float,
    exit_price: float,
    entry_fee: float,
    exit_fee: float,
    gross: float,
) -> dict[str, object]:
    entry_price = float(prices["open"].iloc[i_in])
    net = gross - entry_fee - exit_fee
    is_open = side == "short"
    return {
        "entry_time": prices.index[i_in],
        "exit_time": prices.index[i_out],
        "side": side,
        "units": units,
        "entry_price": entry_price,
        "exit_price": float(exit_price),
        "entry_fee": entry_fee,
        "exit_fee": exit_fee,
        "fees": entry_fee + exit_fee,
        "gross_pnl": gross,
        "net_pnl": net,
        "return": net / (units * entry_price),
        "bars_held": i_out - i_in,
        "is_open": is_open,
    }


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return spy_slice()


@pytest.fixture(scope="module")
def run(prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_backtest(prices)


@pytest.fixture(scope="module")
def page(prices: pd.DataFrame, run: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    equity, trades = run
    return backtest_report_html(
        title="SPY <demo> & co",
        prices=prices,
        equity=equity,
        trades=trades,
        metrics=METRICS,
        notes=["fees 5 bp per side", "a <b>note</b>"],
    )


# -- data ----------------------------------------------------------------------------------


def test_report_data_tables_from_real_bars(prices: pd.DataFrame, run: tuple) -> None:
    equity, trades = run
    data = backtest_report_data(prices, equity, trades)
    assert set(data) == {"price", "markers", "equity", "drawdown", "trade_pnl"}
    for key in ("price", "equity", "drawdown"):
        assert data[key].index.equals(prices.index)
        assert data[key].index.name == "date"
    np.testing.assert_array_equal(data["price"]["close"], prices["close"])

    curves = data["equity"]
    assert list(curves.columns) == ["strategy", "buy_and_hold"]
    assert curves["strategy"].iloc[0] == pytest.approx(CASH)
    assert curves["buy_and_hold"].iloc[0] == pytest.approx(CASH)
    np.testing.assert_allclose(curves["strategy"], equity["equity"])
    # flat after the long exit and before the short entry: equity is cash
    i_out, j_in = LONG[1], SHORT[0]
    assert curves["strategy"].iloc[i_out:j_in].nunique() == 1

    drawdown = data["drawdown"]["drawdown"]
    assert (drawdown <= 0).all()
    assert drawdown.min() < 0
    np.testing.assert_allclose(drawdown, equity["drawdown"])


def test_markers_are_the_fills_and_the_open_mark(prices: pd.DataFrame, run: tuple) -> None:
    equity, trades = run
    markers = backtest_report_data(prices, equity, trades)["markers"]
    (i_in, i_out, _), (j_in, _) = LONG, SHORT
    index, opens, last_close = prices.index, prices["open"], prices["close"].iloc[-1]
    expected = pd.DataFrame(
        {
            "time": [index[i_in], index[i_out], index[j_in], index[-1]],
            "price": [opens.iloc[i_in], opens.iloc[i_out], opens.iloc[j_in], last_close],
            "side": ["long", "long", "short", "short"],
            "kind": ["entry", "exit", "entry", "exit"],
            "is_open": [False, False, True, True],
            "trade": [0, 0, 1, 1],
        }
    )
    pd.testing.assert_frame_equal(
        markers.loc[:, list(expected.columns)], expected, check_dtype=False
    )
    np.testing.assert_allclose(markers["net_pnl"], trades["net_pnl"].repeat(2))


def test_trade_pnl_flags_the_open_trade(prices: pd.DataFrame, run: tuple) -> None:
    equity, trades = run
    pnl = backtest_report_data(prices, equity, trades)["trade_pnl"]
    assert list(pnl["is_open"]) == [False, True]
    assert pnl["outcome"].iloc[1] == "open"
    long_net = trades["net_pnl"].iloc[0]
    assert pnl["outcome"].iloc[0] == ("win" if long_net > 0 else "loss")
    # the closed trade's PnL is exactly the equity change it caused
    i_out = LONG[1]
    assert long_net == pytest.approx(equity["equity"].iloc[i_out] - CASH)
    np.testing.assert_allclose(pnl["net_pnl"], trades["net_pnl"])


def test_report_data_without_trades(prices: pd.DataFrame) -> None:
    equity, trades = make_backtest(prices, with_trades=False)
    data = backtest_report_data(prices, equity, trades)
    assert data["markers"].empty and data["trade_pnl"].empty
    assert (data["drawdown"]["drawdown"] == 0).all()
    # an empty frame without any columns is accepted too
    data = backtest_report_data(prices, equity, pd.DataFrame())
    assert data["trade_pnl"].empty


def test_report_data_rejects_frames_of_different_runs(prices: pd.DataFrame, run: tuple) -> None:
    equity, trades = run
    with pytest.raises(ConfigError, match="same index"):
        backtest_report_data(prices, equity.iloc[1:], trades)
    with pytest.raises(ConfigError, match="benchmark_equity"):
        backtest_report_data(prices, equity.drop(columns="benchmark_equity"), trades)
    with pytest.raises(ConfigError, match="'long' or 'short'"):
        backtest_report_data(prices, equity, trades.assign(side=["buy", "short"]))


def test_builder_does_not_import_plotly() -> None:
    code = (
        "import sys; from tests.test_report import make_backtest, spy_slice; "
        "from ivybt.report import backtest_report_data; p = spy_slice(); "
        "backtest_report_data(p, *make_backtest(p)); "
        "assert 'plotly' not in sys.modules, 'plotly imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_import_report_does_not_import_plotly() -> None:
    code = "import ivybt.report, sys; assert 'plotly' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# -- metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("total_return", 0.01234, "1.23%"),
        ("max_drawdown", -0.0712, "-7.12%"),
        ("win_rate", 1.0, "100.00%"),
        ("sharpe", 0.987, "0.99"),
        ("profit_factor", float("inf"), "inf"),
        ("sortino", float("nan"), "n/a"),
        ("n_trades", 12.0, "12"),
        ("gross_profit", 1234.5, "1,234.50"),
        ("something_else", None, "n/a"),
    ],
)
def test_format_metric(key: str, value: object, shown: str) -> None:
    assert format_metric(key, value) == shown


def test_format_metrics_keeps_a_fixed_order_then_extras() -> None:
    rows = format_metrics({"extra": 2.0, "sharpe": 1.0, "total_return": 0.1})
    assert rows == [("Total return", "10.00%"), ("Sharpe ratio", "1.00"), ("extra", "2")]


# -- figures -------------------------------------------------------------------------------


def test_figures_draw_the_tables(prices: pd.DataFrame, run: tuple) -> None:
    data = backtest_report_data(prices, *run)
    sections = backtest_figures(data)
    assert [h for h, _ in sections] == list(report_backtest.SECTION_HEADINGS)
    price_fig, equity_fig, drawdown_fig, pnl_fig = (fig for _, fig in sections)

    traces = {t.name: t for t in price_fig.data}
    assert set(traces) == {
        "close",
        "long entry",
        "short entry",
        "exit",
        "open trade (marked at last bar)",
    }
    assert traces["long entry"].marker.symbol == "triangle-up"
    assert traces["long entry"].marker.color == report_backtest.LONG_COLOR
    assert traces["short entry"].marker.symbol == "triangle-down"
    assert traces["short entry"].marker.color == report_backtest.SHORT_COLOR
    assert traces["exit"].marker.symbol == "x"
    assert len(traces["exit"].x) == 1  # the open trade's mark is not an exit
    assert traces["open trade (marked at last bar)"].y[0] == prices["close"].iloc[-1]
    assert all(t.type == "scatter" for t in price_fig.data)

    assert [t.name for t in equity_fig.data] == ["buy-and-hold", "strategy"]
    (dd,) = drawdown_fig.data
    assert dd.fill == "tozeroy"
    np.testing.assert_allclose(dd.y, data["drawdown"]["drawdown"] * 100)
    assert drawdown_fig.layout.yaxis.ticksuffix == "%"

    # only the closed long trade is in the histogram
    values = np.concatenate([np.asarray(t.x, dtype=float) for t in pnl_fig.data])
    np.testing.assert_allclose(values, [run[1]["net_pnl"].iloc[0]])


def test_figures_without_trades_say_so(prices: pd.DataFrame) -> None:
    equity, trades = make_backtest(prices, with_trades=False)
    sections = backtest_figures(backtest_report_data(prices, equity, trades))
    price_fig, pnl_fig = sections[0][1], sections[3][1]
    assert [t.name for t in price_fig.data] == ["close"]
    for fig in (price_fig, pnl_fig):
        assert [a.text for a in fig.layout.annotations] == ["No trades in this backtest"]
    assert len(pnl_fig.data) == 0


def test_long_series_use_webgl(
    prices: pd.DataFrame, run: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_backtest, "GL_THRESHOLD", 100)
    sections = backtest_figures(backtest_report_data(prices, *run))
    price_fig = sections[0][1]
    assert price_fig.data[0].type == "scattergl"  # 300 bars > 100
    assert {t.type for t in price_fig.data[1:]} == {"scatter"}  # a few markers each
    assert sections[2][1].data[0].type == "scattergl"


def test_time_axis_is_short_wall_clock_text(prices: pd.DataFrame, run: tuple) -> None:
    daily = backtest_figures(backtest_report_data(prices, *run))[0][1]
    assert list(daily.data[0].x[:2]) == ["1999-11-01", "1999-11-02"]
    frame, _ = load_sample("EURUSD", "1h")  # real UTC-stamped hourly bars
    hourly = frame.loc[:, ["open", "high", "low", "close"]].iloc[:300]
    equity, trades = make_backtest(hourly)
    fig = backtest_figures(backtest_report_data(hourly, equity, trades))[0][1]
    first = hourly.index[0].tz_localize(None)
    assert fig.data[0].x[0] == first.strftime("%Y-%m-%dT%H:%M")
    entry = trades["entry_time"].iloc[0].tz_localize(None)
    assert fig.data[1].x[0] == entry.strftime("%Y-%m-%dT%H:%M")


# -- HTML ----------------------------------------------------------------------------------


def test_page_inlines_plotly_once_and_works_offline(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(PLOTLY_BANNER) == 1
    assert page.count("Plotly.newPlot(") == 4  # one call per figure
    assert page.index(PLOTLY_BANNER) < page.index("Plotly.newPlot(")
    lowered = page.lower()
    assert "<script src" not in lowered
    assert "<link" not in lowered
    assert 'src="https://cdn' not in lowered
    assert "@import" not in lowered
    assert len(page) > 3_000_000  # plotly.js itself is inside


def test_page_has_every_section_metric_and_note(page: str) -> None:
    for heading in report_backtest.SECTION_HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    for label, value in format_metrics(METRICS):
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page
    assert "<td>n/a</td>" in page and "<td>1.23%</td>" in page
    assert "<title>SPY &lt;demo&gt; &amp; co</title>" in page
    assert "<li>a &lt;b&gt;note&lt;/b&gt;</li>" in page
    assert "still open at the last bar" in page


def test_page_without_trades(prices: pd.DataFrame) -> None:
    equity, trades = make_backtest(prices, with_trades=False)
    page = backtest_report_html(
        title="flat",
        prices=prices,
        equity=equity,
        trades=trades,
        metrics={**METRICS, "n_trades": 0.0, "win_rate": math.nan},
    )
    assert page.count(PLOTLY_BANNER) == 1
    assert page.count("No trades in this backtest") == 2
    assert "still open" not in page


def test_render_html_without_figures_has_no_plotly() -> None:
    page = render_html("empty", summary_rows=[("a", "1")], sections=[], notes=["n"])
    assert PLOTLY_BANNER not in page
    assert "<tr><th>a</th><td>1</td></tr>" in page


# -- atomic write --------------------------------------------------------------------------


# -- headers -------------------------------------------------------------------------------


def test_a_renko_backtest_says_renko_in_its_headers() -> None:
    # issue #13: the Renko backtest's console header and report title read like a standard
    # run's; both now name the bricks
    from click.testing import CliRunner

    from ivybt.cli import cli

    args = ["backtest", "sma_cross", "-s", "SPY", "--source", "sample", "--bars", "renko",
            "--renko-box", "2", "-p", "fast=5", "-p", "slow=20", "--out", "run"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("bars), Renko bricks (box 2, reversal 2)")
    page = Path("run/report.html").read_text(encoding="utf-8")
    assert "<h1>sma_cross on SPY, Renko bricks (box 2, reversal 2)</h1>" in page
    standard = CliRunner().invoke(cli, [*args[:6], "--out", "std"])
    assert standard.exit_code == 0, standard.output
    assert "Renko" not in standard.output.splitlines()[0]
    assert "<h1>sma_cross on SPY</h1>" in Path("std/report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("data", "label"),
    [
        ({"bars": "standard"}, ""),
        ({"bars": "renko", "renko": {"box": 0.5, "reversal": 3}},
         ", Renko bricks (box 0.5, reversal 3)"),
        ({"bars": "renko", "renko": {"atr": 14, "atr_mult": 1.5, "reversal": 2}},
         ", Renko bricks (ATR(14) x 1.5 box, reversal 2)"),
        ({"bars": "renko", "renko": None}, ", Renko bricks (box from the grid, reversal 2)"),
    ],
)  # fmt: skip
def test_bars_label(data: dict, label: str) -> None:
    from ivybt.config import DataConfig
    from ivybt.report.html import bars_label

    assert bars_label(data) == label
    assert bars_label(DataConfig(symbol="SPY", **data)) == label
