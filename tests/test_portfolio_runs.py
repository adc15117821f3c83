"""Portfolio backtest runs end to end (issue #14, docs/portfolio.md), on the bundled real daily
equities, offline: a one-symbol universe is today's single-symbol run for every built-in
strategy; the demo universe's run folder through the CLI; listing bounds and gross exposure on
real data; universe files, config files and their errors; bars passed as frames per symbol; the
report in headless Chromium; --overwrite and weights.parquet.

The simulation's rules themselves are tested on small hand-made universes in
tests/test_portfolio_kernel.py; here the runs around it are."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from click.testing import CliRunner, Result

import ivybt
import ivybt.report.portfolio as portfolio_report
from ivybt.cli import cli
from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data import load_series
from ivybt.data.panel import load_panel
from ivybt.data.sample import load_sample
from ivybt.engine.portfolio import universe_arrays
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.backtest import TRADE_COLUMNS
from ivybt.runs.folder import default_run_name
from ivybt.runs.portfolio import PORTFOLIO_TRADE_COLUMNS, PortfolioResult
from ivybt.strategies import BUILTIN, SIGNAL_BUILTIN
from tests.browser import Chromium, require_chromium
from tests.tolerances import same_metric

DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")
SAMPLE = ("--source", "sample")
COMMISSION, SLIPPAGE = 0.001, 0.0005  # the execution defaults the demo run uses
CONTRIBUTION_KEYS = {"pnl", "return_contribution", "trades", "win_rate", "exposure", "first",
                     "last"}  # fmt: skip
EXPOSURE_KEYS = {"turnover", "avg_gross", "max_gross", "avg_net", "max_net"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_line_error(result: Result, code: int) -> str:
    """The one `Error:` line of a failed command, after checking its status and that no
    traceback was printed."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def run_folder_of(result: Result) -> Path:
    (line,) = [line for line in result.output.splitlines() if line.startswith("wrote ")]
    return Path(line.removeprefix("wrote "))


# -- 1. a one-symbol universe is the single-symbol run ---------------------------------------

# (fill, direction, train_split, run_mode); every combination runs twice: symbol= and symbols=
ONE_SYMBOL_CASES = [
    (fill, direction, split, mode)
    for fill in ("next_open", "close")
    for direction, split, mode in (
        ("long", None, None),
        ("both", None, None),
        ("both", 0.7, "test"),
        ("both", 0.6, "train"),
    )
]  # fmt: skip


@pytest.mark.parametrize("name", list(SIGNAL_BUILTIN))
def test_one_symbol_universe_equals_the_single_symbol_run(name: str) -> None:
    for fill, direction, split, mode in ONE_SYMBOL_CASES:
        case = f"{name} {fill} {direction} {mode or 'full'}"
        given: dict[str, Any] = {"source": "sample", "fill": fill, "direction": direction,
                                 "train_split": split, "run_mode": mode}  # fmt: skip
        single = ivybt.backtest(name, symbol="SPY", **given)
        universe = ivybt.backtest(name, symbols=["SPY"], **given)
        assert isinstance(universe, PortfolioResult), case
        assert universe.params == single.params == BUILTIN[name].resolve_params({}), case
        assert set(universe.metrics) == set(single.metrics) == set(METRIC_NAMES), case
        differ = {
            metric: (single.metrics[metric], universe.metrics[metric])
            for metric in METRIC_NAMES
            if not same_metric(single.metrics[metric], universe.metrics[metric])
        }
        assert differ == {}, case  # to 1e-12: the single-symbol account settles held runs at once
        assert universe.equity.index.equals(single.equity.index), case
        for column in ("equity", "benchmark_equity"):  # bit for bit
            np.testing.assert_array_equal(
                universe.equity[column].to_numpy(), single.equity[column].to_numpy(), case
            )
        assert universe.split == single.split, case
        assert universe.benchmark.keys() == single.benchmark.keys(), case
        assert all(same_number(universe.benchmark[k], v) for k, v in single.benchmark.items())
        shared = [column for column in TRADE_COLUMNS if column in PORTFOLIO_TRADE_COLUMNS]
        assert shared == list(TRADE_COLUMNS)  # the portfolio adds `symbol`, drops nothing
        pdt.assert_frame_equal(
            universe.trades[shared].reset_index(drop=True),
            single.trades[shared].reset_index(drop=True),
            check_exact=True,
            obj=case,
        )
        assert (universe.trades["symbol"] == "SPY").all(), case
        assert len(single.trades) > 0, case
        if direction == "both":
            assert (single.trades["side"] == "short").any(), case
        # the held weight is the single run's units at the close, over its equity
        held = single.equity["units"] * single.prices["close"] / single.equity["equity"]
        np.testing.assert_allclose(universe.weights["SPY"], held, rtol=1e-12, atol=1e-15)


# -- 2. the demo universe through the CLI ----------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of `ivybt backtest sma_cross --symbols SPY,MSFT,AAPL,GOOG,IBM` (no
    --out: the folder is named by the results folder's rule)."""
    results = tmp_path_factory.mktemp("results")
    cache = tmp_path_factory.mktemp("cache")  # module scope: before conftest's chdir
    run = invoke("--results-dir", str(results), "--cache-dir", str(cache), "backtest",
                 "sma_cross", "--symbols", ",".join(DEMO), *SAMPLE)  # fmt: skip
    assert run.exit_code == 0, run.output
    folder = run_folder_of(run)
    assert folder.parent == results
    return folder


@pytest.fixture(scope="module")
def demo_frames(demo: Path) -> dict[str, Any]:
    panel = load_panel(",".join(DEMO), source="sample")
    return {
        "panel": panel,
        "weights": pd.read_parquet(demo / "weights.parquet"),
        "equity": pd.read_parquet(demo / "equity.parquet"),
        "trades": pd.read_parquet(demo / "trades.parquet"),
        "metrics": json.loads((demo / "metrics.json").read_text()),
        "manifest": json.loads((demo / "manifest.json").read_text()),
    }


def test_demo_universe_writes_a_portfolio_run_folder(demo: Path, demo_frames: dict) -> None:
    # named after the universe's label, SPY+4, written with the folder rule's characters
    stamp = datetime.strptime(demo.name.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ")
    assert demo.name == default_run_name("backtest", "sma_cross", "SPY+4", stamp)
    assert sorted(path.name for path in demo.iterdir()) == [
        "equity.parquet", "manifest.json", "metrics.json", "report.html", "trades.csv",
        "trades.parquet", "weights.parquet",
    ]  # fmt: skip
    panel, weights = demo_frames["panel"], demo_frames["weights"]
    # weights: one row per union timestamp, one column per symbol, in the universe's order
    assert weights.index.equals(panel.index) and weights.index.name == "date"
    assert list(weights.columns) == list(DEMO)
    assert np.isfinite(weights.to_numpy()).all()
    equity = demo_frames["equity"]
    assert equity.index.equals(panel.index)
    np.testing.assert_allclose(equity["gross"], weights.abs().sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(equity["net"], weights.sum(axis=1), rtol=1e-12)

    trades = demo_frames["trades"]
    assert list(trades.columns) == list(PORTFOLIO_TRADE_COLUMNS)
    assert set(trades["symbol"]) == set(DEMO)
    csv = pd.read_csv(demo / "trades.csv")
    assert len(csv) == len(trades) and list(csv["symbol"]) == list(trades["symbol"])

    headline = demo_frames["metrics"]
    assert headline["symbols"] == list(DEMO) and headline["n_bars"] == panel.n_bars
    assert set(headline["metrics"]) == set(METRIC_NAMES)
    assert set(headline["exposure"]) == EXPOSURE_KEYS
    assert headline["exposure"]["avg_gross"] == pytest.approx(equity["gross"].mean(), rel=1e-12)
    assert headline["exposure"]["max_gross"] == pytest.approx(equity["gross"].max(), rel=1e-12)
    assert headline["exposure"]["turnover"] > 0
    assert set(headline["buy_and_hold"]) >= {"total_return", "sharpe", "max_drawdown"}
    contributions = headline["contributions"]
    assert list(contributions) == list(DEMO)
    closed = trades.loc[~trades["is_open"]]
    for j, symbol in enumerate(DEMO):
        row = contributions[symbol]
        assert set(row) == CONTRIBUTION_KEYS, symbol
        mine = closed.loc[closed["symbol"] == symbol]
        assert row["trades"] == len(mine) > 0, symbol
        assert row["win_rate"] == pytest.approx((mine["net_pnl"] > 0).mean()), symbol
        pnl = trades.loc[trades["symbol"] == symbol, "net_pnl"].sum()
        assert row["pnl"] == pytest.approx(pnl, rel=1e-12), symbol
        assert row["exposure"] == pytest.approx((weights[symbol] != 0).mean()), symbol
        assert pd.Timestamp(row["first"]) == panel.index[panel.first[j]], symbol
        assert pd.Timestamp(row["last"]) == panel.index[panel.last[j]], symbol
    assert sum(row["trades"] for row in contributions.values()) == headline["metrics"]["n_trades"]
    # every dollar made or lost is some symbol's: the account holds nothing else
    total = sum(row["pnl"] for row in contributions.values())
    assert total == pytest.approx(equity["equity"].iloc[-1] - 10_000.0, rel=1e-9)

    manifest = demo_frames["manifest"]
    assert manifest["status"] == "finished" and manifest["command"] == "backtest"
    assert manifest["config"]["data"]["symbols"] == list(DEMO)
    assert manifest["config"]["data"]["symbol"] is None
    assert [record["symbol"] for record in manifest["data"]] == list(DEMO)
    for record in manifest["data"]:
        loaded = load_series(record["symbol"], "1d", source="sample").record()
        assert record["sha256"] == loaded["sha256"], record["symbol"]
        assert record["source"] == "sample"


# -- 3. listing bounds and gross exposure on real data ---------------------------------------


def test_late_listing_and_delisting_on_real_data(demo_frames: dict) -> None:
    panel, weights = demo_frames["panel"], demo_frames["weights"]
    equity, trades = demo_frames["equity"], demo_frames["trades"]
    goog, ibm = DEMO.index("GOOG"), DEMO.index("IBM")
    assert panel.index[panel.first[goog]] == pd.Timestamp("2004-08-19")
    assert panel.index[panel.last[ibm]] == pd.Timestamp("2013-03-01")
    assert (weights.loc[weights.index < "2004-08-19", "GOOG"] == 0).all()
    assert (weights.loc[weights.index > "2013-03-01", "IBM"] == 0).all()
    assert (weights["GOOG"] != 0).any()
    assert trades.loc[trades["symbol"] == "GOOG", "entry_time"].min() > pd.Timestamp("2004-08-19")

    # IBM is held at its last bar and closed at the next union bar, at its last close
    last = panel.last[ibm]
    assert weights["IBM"].iloc[last] > 0
    ibm_trades = trades.loc[trades["symbol"] == "IBM"]
    final = ibm_trades.loc[ibm_trades["exit_time"].idxmax()]
    assert final["exit_time"] == panel.index[last + 1] == pd.Timestamp("2013-03-04")
    assert not final["is_open"]
    units = weights.to_numpy() * equity["equity"].to_numpy()[:, None] / panel.mark
    held = units[last, ibm]
    others = [j for j in range(len(DEMO)) if j != ibm]
    np.testing.assert_allclose(units[last + 1, others], units[last, others], rtol=1e-12)
    close = panel.close[last, ibm]
    # the only fill of that bar: IBM's units sold at its last close, less slippage
    assert equity["traded"].iloc[last + 1] == pytest.approx(held * close * (1 - SLIPPAGE),
                                                            rel=1e-12)  # fmt: skip
    # the account loses exactly the slippage and commission of that sale, beyond what the
    # other symbols' prices did
    moved = np.dot(units[last, others], panel.mark[last + 1, others] - panel.mark[last, others])
    cost = held * close * (SLIPPAGE + (1 - SLIPPAGE) * COMMISSION)
    expected = equity["equity"].iloc[last] + moved - cost
    assert equity["equity"].iloc[last + 1] == pytest.approx(expected, rel=1e-12)


def test_the_kernels_mark_is_the_panels_inside_the_listing_and_0_outside(
    demo_frames: dict,
) -> None:
    """`portfolio_nb` values every symbol at every bar without a branch (0 units x mark),
    so its mark must be finite everywhere: the panel's inside the listing, 0 outside."""
    panel = demo_frames["panel"]
    mark = universe_arrays(panel, PortfolioConfig(), ExecutionConfig()).prices[2]
    assert np.isfinite(mark).all()
    listed = panel.listed
    assert (~listed).any() and np.isnan(panel.mark[~listed]).all()  # GOOG early, IBM late
    assert (mark[~listed] == 0.0).all()
    np.testing.assert_array_equal(mark[listed], panel.mark[listed])


def test_gross_exposure_stays_within_max_leverage_at_every_close(demo_frames: dict) -> None:
    """The bound asserted, for this long-only run at max leverage G = 1, and why.

    Weights are the weights held at each close, so between rebalances they drift with
    prices; but with long positions only, gross = 1 - cash / equity, so drift alone cannot
    take it above 1 while cash >= 0. Cash changes only at bars with fills. A rebalance's
    buys may spend the buying power G x E - gross held, with E measured before that
    rebalance's reductions paid their slippage and commission (docs/portfolio.md rule 5;
    `ivybt.kernels.portfolio._rebalance_nb`), so cash can end it as low as minus those
    costs: at most (commission + slippage) x the notional sold at the raw price, which is
    at most (commission + slippage) / (1 - slippage) x `traded` of that bar. So at every
    close t, with k the last bar <= t with a fill:

        gross_t <= G + (commission + slippage) / (1 - slippage) x traded_k / equity_t

    (plus the kernel's 1e-12 funding slack). On the demo run gross reaches 1.0005: those
    costs, not drift.
    """
    equity = demo_frames["equity"]
    gross, net = equity["gross"].to_numpy(), equity["net"].to_numpy()
    np.testing.assert_array_equal(gross, net)  # long only
    assert gross.min() >= 0.0 and gross.mean() > 0.5
    traded = equity["traded"].where(equity["traded"] > 0).ffill().fillna(0.0).to_numpy()
    rate = (COMMISSION + SLIPPAGE) / (1.0 - SLIPPAGE)
    bound = 1.0 + rate * traded / equity["equity"].to_numpy() + 1e-12
    worst = int(np.argmax(gross - bound))
    assert gross[worst] <= bound[worst], (equity.index[worst], gross[worst], bound[worst])


# -- 4. universe files, config files and their errors ----------------------------------------

SHORT = ("--start", "2011-01-01", "--end", "2015-01-01")  # IBM still delists inside it


def test_universe_file_text_and_yaml_give_the_same_run_as_symbols(tmp_path: Path) -> None:
    (tmp_path / "demo.txt").write_text(
        "# the demo universe\nSPY\nmsft\n\nAAPL\nGOOG  # 2004\nIBM\n"
    )
    (tmp_path / "demo.yaml").write_text("- SPY\n- MSFT\n- AAPL\n- GOOG\n- IBM\n")
    (tmp_path / "mapping.yaml").write_text("symbols: [SPY, MSFT, AAPL, GOOG, IBM]\n")
    runs = {
        "symbols": ("--symbols", ",".join(DEMO)),
        "text": ("--universe", str(tmp_path / "demo.txt")),
        "yaml": ("--universe", str(tmp_path / "demo.yaml")),
        "mapping": ("--universe", str(tmp_path / "mapping.yaml")),
    }
    outputs: dict[str, Any] = {}
    for name, given in runs.items():
        out = tmp_path / name
        run = invoke("backtest", "sma_cross", *given, *SAMPLE, *SHORT, "--out", str(out))
        assert run.exit_code == 0, (name, run.output)
        manifest = json.loads((out / "manifest.json").read_text())
        outputs[name] = (
            json.loads((out / "metrics.json").read_text()),
            {**manifest["config"], "output": None},
            manifest["data"],
            pd.read_parquet(out / "weights.parquet"),
            pd.read_parquet(out / "trades.parquet"),
        )
    metrics, config, data, weights, trades = outputs.pop("symbols")
    assert config["data"]["symbols"] == list(DEMO)
    for name, (m, c, d, w, t) in outputs.items():
        assert m == metrics and c == config and d == data, name
        pdt.assert_frame_equal(w, weights, check_exact=True)
        pdt.assert_frame_equal(t, trades, check_exact=True)


def test_symbols_with_symbol_is_a_one_line_usage_error(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("SPY\nMSFT\n")
    for given in (("--symbols", "SPY,MSFT"), ("--universe", "u.txt")):
        run = invoke("backtest", "sma_cross", *given, "--symbol", "SPY", *SAMPLE)
        line = one_line_error(run, 2)
        assert line == "Error: give --symbol or --symbols/--universe, not both", given
    run = invoke("backtest", "sma_cross", "--symbols", "SPY", "--universe", "u.txt", *SAMPLE)
    assert one_line_error(run, 2) == "Error: give --symbols or --universe, not both"
    assert not Path("results").exists()  # refused before anything ran


def test_an_unknown_symbol_in_the_universe_is_one_line_naming_it(tmp_path: Path) -> None:
    """Exit 1, as for `--symbol NOPE`: a symbol without bars is a data error in the CLI's
    contract (`ivybt.cli`: 2 for input errors, 1 for data errors; tests/test_cli_errors.py)."""
    (tmp_path / "u.txt").write_text("SPY\nNOPE\nMSFT\n")
    (tmp_path / "u.yaml").write_text("- SPY\n- nope\n")
    single = one_line_error(invoke("backtest", "sma_cross", "--symbol", "NOPE", *SAMPLE), 1)
    for given in (("--symbols", "SPY,NOPE,MSFT"), ("--universe", "u.txt"),
                  ("--universe", "u.yaml")):  # fmt: skip
        line = one_line_error(invoke("backtest", "sma_cross", *given, *SAMPLE), 1)
        assert line.startswith("Error: NOPE: no bundled sample for NOPE 1d"), given
        assert line == single.replace("Error: ", "Error: NOPE: "), given
    assert not Path("results").exists()


def test_fixed_weights_without_weights_is_a_one_line_error(tmp_path: Path) -> None:
    run = invoke("backtest", "sma_cross", "--symbols", "SPY,MSFT", "--weights", "fixed", *SAMPLE)
    line = one_line_error(run, 2)
    assert "weights 'fixed' needs fixed_weights" in line
    # weights for some symbols only: the others are named
    (tmp_path / "run.yaml").write_text(
        "data: {symbols: [SPY, MSFT], source: sample}\nstrategy: {name: sma_cross}\n"
        "portfolio: {weights: fixed, fixed_weights: {SPY: 0.5}}\n"
    )
    line = one_line_error(invoke("backtest", "--config", "run.yaml"), 2)
    assert line.startswith("Error: portfolio.fixed_weights has no weight for MSFT")
    assert not Path("results").exists()


CONFIG = """\
data:
  symbols: [SPY, MSFT, AAPL]
  source: sample
  start: 2012-01-01
strategy: {name: sma_cross, params: {fast: 20, slow: 60}}
execution: {commission: 0.001}
portfolio:
  weights: fixed
  fixed_weights: {SPY: 0.5, MSFT: 0.3, aapl: 0.3}
  max_leverage: 1.0
  lot_size: {SPY: 1, MSFT: 10, AAPL: 1}
  commission: {SPY: 0.0005, AAPL: 0.002}
"""
RATES = {"SPY": 0.0005, "MSFT": 0.001, "AAPL": 0.002}  # MSFT: the execution section's rate
LOTS = {"SPY": 1, "MSFT": 10, "AAPL": 1}


def test_config_file_with_a_universe_and_a_portfolio_section_runs_and_reproduces(
    tmp_path: Path,
) -> None:
    (tmp_path / "run.yaml").write_text(CONFIG)
    first = invoke("backtest", "--config", "run.yaml", "--out", "first")
    assert first.exit_code == 0, first.output
    assert "sma_cross fast=20 slow=60 on SPY, MSFT, AAPL 1d, 2012-01-03.." in first.output
    manifest = json.loads(Path("first/manifest.json").read_text())
    portfolio = manifest["config"]["portfolio"]
    assert portfolio["fixed_weights"] == {"SPY": 0.5, "MSFT": 0.3, "AAPL": 0.3}
    assert portfolio["lot_size"] == LOTS
    trades = pd.read_parquet("first/trades.parquet")
    assert set(trades["symbol"]) == set(RATES)
    for symbol, rows in trades.groupby("symbol"):
        units = rows["units"].to_numpy()
        np.testing.assert_array_equal(units % LOTS[symbol], 0.0)  # whole lots
        paid = rows["entry_fee"] / (rows["units"] * rows["entry_price"])
        np.testing.assert_allclose(paid, RATES[symbol], rtol=1e-9)
    # fixed weights, not equal ones (1, 1/2 or 1/3): at the close of each entry a symbol
    # holds at most its fixed weight (0.3 / 1.1 when all three are long: 1.1 is scaled to
    # max_leverage 1; less when whole lots round it down), give or take the day's drift
    weights = pd.read_parquet("first/weights.parquet")
    for symbol, rows in trades.groupby("symbol"):
        held = weights.loc[rows["entry_time"], symbol]
        fixed = {"SPY": 0.5, "MSFT": 0.3, "AAPL": 0.3}[symbol]
        assert ((held > 0) & (held < fixed + 0.01)).all(), (symbol, held)

    again = invoke("backtest", "--config", "first/manifest.json", "--out", "again")
    assert again.exit_code == 0, again.output
    assert Path("again/metrics.json").read_text() == Path("first/metrics.json").read_text()
    pdt.assert_frame_equal(pd.read_parquet("again/trades.parquet"), trades, check_exact=True)
    rerun = json.loads(Path("again/manifest.json").read_text())
    assert {**rerun["config"], "output": None} == {**manifest["config"], "output": None}
    assert rerun["data"] == manifest["data"]


# -- 5. bars of one's own, one DataFrame per symbol ------------------------------------------


@pytest.fixture(scope="module")
def own_frames() -> dict[str, pd.DataFrame]:
    """SPY and MSFT 2010-2015 from the samples, MSFT halted for one bar (an all-NaN row)
    inside a holding of the sma_cross run."""
    spy, _ = load_sample("SPY", "1d")
    msft, _ = load_sample("MSFT", "1d")
    frames = {"SPY": spy.loc["2010":"2015"].copy(), "MSFT": msft.loc["2010":"2015"].copy()}
    clean = ivybt.backtest("sma_cross", data=frames)
    held = clean.weights.index[clean.weights["MSFT"] > 0]
    halt = held[len(held) // 2]
    frames["MSFT"].loc[halt] = np.nan
    frames["MSFT"].attrs["halt"] = halt
    return frames


def test_frames_per_symbol_with_a_halt_run(own_frames: dict[str, pd.DataFrame]) -> None:
    halt = own_frames["MSFT"].attrs["halt"]
    result = ivybt.backtest("sma_cross", data=own_frames)
    assert isinstance(result, PortfolioResult) and result.symbols == ("SPY", "MSFT")
    assert result.config.data.source == "frame"
    assert result.weights.index.equals(own_frames["SPY"].index)  # SPY traded on the halt day
    msft = next(record for record in result.data if record["symbol"] == "MSFT")
    assert msft["source"] == "frame" and msft["missing_rows"] == 1
    assert msft["rows"] == len(own_frames["MSFT"]) - 1
    # the halted bar: no MSFT fill, the holding valued at the previous close
    t = result.weights.index.get_loc(halt)
    trades = result.trades.loc[result.trades["symbol"] == "MSFT"]
    assert halt not in set(trades["entry_time"]) | set(trades["exit_time"])
    close = own_frames["MSFT"]["close"].loc[:halt]
    assert np.isnan(close.iloc[-1])
    mark = close.iloc[-2]  # the last close before the halt
    weight, equity = result.weights["MSFT"], result.equity["equity"]
    units_before = weight.iloc[t - 1] * equity.iloc[t - 1] / mark
    units_at = weight.iloc[t] * equity.iloc[t] / mark
    assert units_before > 0 and units_at == pytest.approx(units_before, rel=1e-12)


def test_frame_keys_are_tickers(own_frames: dict[str, pd.DataFrame]) -> None:
    """Normalised like any ticker ("spy" is SPY), in the order of symbols= when given."""
    result = ivybt.backtest("sma_cross", data=own_frames)
    lower = ivybt.backtest("sma_cross", data={"spy": own_frames["SPY"],
                                              "msft": own_frames["MSFT"]})  # fmt: skip
    assert lower.symbols == ("SPY", "MSFT") and lower.metrics == result.metrics
    reordered = ivybt.backtest("sma_cross", data=own_frames, symbols=["msft", "SPY"])
    assert reordered.symbols == ("MSFT", "SPY")
    assert reordered.metrics["n_trades"] == result.metrics["n_trades"]
    pdt.assert_frame_equal(reordered.weights[["SPY", "MSFT"]], result.weights)


def test_frames_missing_a_symbol_of_the_universe_are_refused(
    own_frames: dict[str, pd.DataFrame],
) -> None:
    with pytest.raises(ConfigError, match=r"^data= has no frame for AAPL; pass one DataFrame"):
        ivybt.backtest("sma_cross", data=own_frames, symbols=["SPY", "AAPL", "MSFT"])
    # one symbol, two frames: refused, whichever of them symbols= names
    twice = {"SPY": own_frames["SPY"], "spy": own_frames["MSFT"]}
    with pytest.raises(ConfigError, match="SPY twice"):
        ivybt.backtest("sma_cross", data=twice)
    with pytest.raises(
        ConfigError, match=r"^data= keys: SPY is listed twice \(as 'SPY' and 'spy'\)"
    ):
        ivybt.backtest("sma_cross", data=twice, symbols=["SPY"])


def test_a_universe_with_too_few_bars_in_every_symbol_is_refused() -> None:
    """As for one symbol: each symbol's signal runs on its own bars, so a universe whose
    listings span enough union rows, but where no symbol has enough bars of its own, is
    refused rather than run without a single signal."""
    spy, _ = load_sample("SPY", "1d")
    msft, _ = load_sample("MSFT", "1d")
    every_other = spy.loc["2015"].iloc[:100:2]  # 50 bars over 100 sessions
    first_40 = msft.loc["2015"].iloc[:40]
    data = {"SPY": every_other, "MSFT": first_40}  # 70 union rows, SPY listed on all of them
    with pytest.raises(ConfigError, match=r"needs at least 51 bars .* the symbol with the most "
                       r"bars of SPY, MSFT \(2 symbols\) .* has 50;"):  # fmt: skip
        ivybt.backtest("sma_cross", data=data)
    assert ivybt.backtest("sma_cross", data=data, params={"slow": 40}).metrics["n_trades"] >= 0


# -- 6. the report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    require_chromium()
    with Chromium() as browser:
        yield browser


TRADE_COUNT_JS = """(() => {
  const s = document.querySelector('select[data-filter="symbol"]'); s.value = 'IBM';
  s.dispatchEvent(new Event('change'));
  return document.querySelector('.trade-count').textContent; })()"""


def test_the_demo_report_opens_in_chromium_with_every_plot_drawn(
    demo: Path, demo_frames: dict, chromium: Chromium
) -> None:
    result = chromium.open(demo / "report.html", checks={"ibm": TRADE_COUNT_JS})
    assert result.errors == []
    assert result.external_requests == []
    figures = len(portfolio_report.SECTION_HEADINGS) - 1  # the trades are an HTML table
    assert result.graphs == result.plots == figures
    assert result.webgl_plots == 0  # 8,111 bars: SVG traces
    trades = demo_frames["trades"]
    ibm = int((trades["symbol"] == "IBM").sum())
    assert result.values["ibm"] == f"{ibm} of {len(trades)} trades shown"


def test_plot_returns_the_report_sections(own_frames: dict[str, pd.DataFrame]) -> None:
    result = ivybt.backtest("sma_cross", data=own_frames)
    figures = result.plot()
    assert figures.headings == list(portfolio_report.SECTION_HEADINGS)
    assert all(len(figure.data) > 0 for figure in figures)
    assert "PortfolioResult sma_cross fast=10 slow=50 on SPY, MSFT 1d" in repr(result)


# -- 7. --overwrite --------------------------------------------------------------------------


def test_overwrite_replaces_the_weights_of_a_portfolio_run(tmp_path: Path) -> None:
    run = ("backtest", "sma_cross", *SAMPLE, "--start", "2015-01-01", "--out", "run")
    assert invoke(*run, "--symbols", "SPY,MSFT").exit_code == 0
    assert list(pd.read_parquet("run/weights.parquet").columns) == ["SPY", "MSFT"]
    (tmp_path / "run" / "notes.txt").write_text("mine")
    refused = invoke(*run, "--symbols", "SPY,AAPL")
    assert "holds a run with another configuration" in one_line_error(refused, 2)
    replaced = invoke(*run, "--symbols", "SPY,AAPL", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert list(pd.read_parquet("run/weights.parquet").columns) == ["SPY", "AAPL"]
    # a single-symbol run over it leaves no stale weights behind; the user's file stays
    single = invoke(*run, "--symbol", "SPY", "--overwrite")
    assert single.exit_code == 0, single.output
    assert not (tmp_path / "run" / "weights.parquet").exists()
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["symbol"] == "SPY"
