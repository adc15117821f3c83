"""Stops on a universe (issue #16): each symbol's stop-loss, take-profit, trailing, ATR and
time stops inside one account (docs/stops.md, "Stops on a universe"; docs/portfolio.md).

The portfolio kernel with stops against its slow twin (tests/portfolio_reference.py) on random
universes with gaps, missing bars and late listings; a one-symbol universe against the
single-symbol stop kernel and the single-symbol backtest, bit for bit; the rules a universe
adds (a stop sells one symbol alone, its cash waits for the next rebalance, its side waits for
a fresh signal) on small cases; grids, returns, cross-sectional strategies and the run
folder's exits."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas.testing as pdt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import ivybt
from ivybt.kernels.metrics import METRIC_NAMES, metrics_nb
from ivybt.kernels.portfolio import (
    PORTFOLIO_TRADE_DTYPE,
    Universe,
    portfolio_nb,
    scratch,
)
from ivybt.kernels.portfolio import records as portfolio_records
from ivybt.kernels.simulate import TRADE_DTYPE, Execution, Stops, count_entries_nb
from ivybt.kernels.stops import EXIT_REASONS, simulate_stops_nb
from ivybt.runs.backtest import TRADE_COLUMNS
from tests.portfolio_reference import REASONS
from tests.test_portfolio_kernel import (
    CASH,
    NAN,
    PPY,
    PROPERTY,
    Run,
    assert_same_run,
    case,
    rules_of,
    run_twin,
    universes,
)

DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")  # GOOG lists in 2004, IBM ends in 2013
STOPPED = {"sl": 0.04, "tp": 0.12, "trail": 0.06, "sl_atr": 2.0, "max_bars": 30}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# -- the kernel with stops, its universe and rules from a case ----------------------------------


def with_stops(c: dict[str, Any], rng: np.random.Generator, stops: Stops) -> dict[str, Any]:
    """Case `c` (tests/test_portfolio_kernel.py `case`) with highs and lows around its opens and
    closes (NaN where there is no bar), an ATR row with a warm-up and gaps, and `stops`."""
    open_, close = c["open"], c["close"]
    top = np.fmax(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, open_.shape)))
    bottom = np.fmin(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, open_.shape)))
    atr = close * rng.uniform(0.005, 0.05, close.shape)
    atr[: rng.integers(0, 6)] = NAN
    atr[rng.random(atr.shape) < 0.1] = NAN
    return {**c, "high": top, "low": bottom, "atr": atr, **stops._asdict()}


def universe_of(c: dict[str, Any]) -> Universe:
    """The kernel's universe of a case with stops: six price rows."""
    vol = c["vol"] if c["weighting"] == "inverse_vol" else np.zeros((0, 0))
    rows = [c["open"], c["close"], np.nan_to_num(c["mark"], nan=0.0), c["high"], c["low"],
            c["atr"]]  # fmt: skip
    return Universe(
        prices=np.ascontiguousarray(np.stack(rows)), first=c["first"], last=c["last"],
        fee=c["fee"], slip=c["slip"], lot=c["lot"], fixed=c["fixed"],
        vol=np.ascontiguousarray(vol), rebalance_at=c["rebalance_at"],
    )  # fmt: skip


def run_kernel(c: dict[str, Any]) -> tuple[Run, np.ndarray]:
    """(the kernel's run as the twin's, its trade records)."""
    a, b = c["a"], c["b"]
    n_symbols = len(c["first"])
    # a stop re-enters only on a change of the target, so at most one trade opens per symbol
    # and bar
    out = portfolio_records(b - a, n_symbols, (b - a) * n_symbols + 1)
    n_trades = portfolio_nb(universe_of(c), np.ascontiguousarray(c["target"]), rules_of(c), a,
                            b, PPY, scratch(n_symbols), out)  # fmt: skip
    metrics, equity, units, traded, records = out
    trades = [{name: record[name].item() for name in PORTFOLIO_TRADE_DTYPE.names}
              for record in records[:n_trades]]  # fmt: skip
    for trade in trades:
        trade["return"] = trade.pop("trade_return")
    run = Run(equity, units, traded, trades, dict(zip(METRIC_NAMES, metrics, strict=True)))
    return run, records[:n_trades]


# -- 1. the kernel equals the twin --------------------------------------------------------------


@st.composite
def stopped_universes(draw: st.DrawFn) -> dict[str, Any]:
    """`universes()` (listing starts and ends, missing bars, costs, lots, every weighting and
    rule) with bars that gap and every combination of exits."""
    c = draw(universes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    off_or = lambda *values: st.sampled_from([0.0, *values])  # noqa: E731
    stops = Stops(draw(off_or(0.01, 0.03, 0.08)), draw(off_or(0.02, 0.05, 0.15)),
                  draw(off_or(0.01, 0.04)), draw(off_or(0.5, 2.0)),
                  draw(st.sampled_from([0, 1, 2, 5])))  # fmt: skip
    assume(any(stops))
    return with_stops(c, rng, stops)


@PROPERTY
@given(c=stopped_universes())
def test_kernel_with_stops_equals_the_twin_on_random_universes(c):
    want = run_twin(c)
    if want.ambiguous:  # as test_kernel_equals_the_twin_on_random_universes: up to the tie
        cut = want.ambiguous[0]
        assume(cut > 0)
        c = {**c, "b": c["a"] + cut}
        want = run_twin(c)
    got, _ = run_kernel(c)
    assert_same_run(got, want, c)
    reasons = [trade["exit_reason"] for trade in got.trades]
    assert reasons == [trade["exit_reason"] for trade in want.trades], (reasons, want.trades)


def test_the_twin_sees_every_exit_reason():
    """The random universes above reach every exit (so the twin checks each of them)."""
    seen: set[int] = set()
    for seed in range(20):
        for stops in (Stops(0.03, 0.05, 0.04, 1.0, 0), Stops(0.0, 0.0, 0.0, 0.0, 4)):
            rng = np.random.default_rng(seed)
            c = random_one_symbol_case(rng, n_bars=60, fill_on_close=bool(seed % 2))
            seen |= {trade["exit_reason"] for trade in run_twin(with_stops(c, rng, stops)).trades}
    assert seen == set(REASONS.values())


# -- 2. one symbol: the single-symbol stop kernel and backtest, bit for bit ---------------------


def random_one_symbol_case(
    rng: np.random.Generator, *, n_bars: int, fill_on_close: bool, **options: Any
) -> dict[str, Any]:
    close = rng.uniform(10, 100) * np.exp(np.cumsum(rng.normal(0, 0.03, n_bars)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.02, n_bars))
    hold = int(rng.integers(1, 10))
    sides = [(-1, 0, 1), (0, 1), (-1, 1)][int(rng.integers(0, 3))]
    target = np.repeat(rng.choice(sides, n_bars // hold + 1), hold)[:n_bars]
    return case(open_[:, None], target[:, None], close=close[:, None],
                fill_on_close=fill_on_close, **options)  # fmt: skip


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1), n_bars=st.integers(2, 80),
    fee=st.sampled_from([0.0, 0.0005, 0.002]), slip=st.sampled_from([0.0, 0.001]),
    size=st.sampled_from([1.0, 0.5, 0.99]), fill_on_close=st.booleans(),
    stops=st.tuples(st.sampled_from([0.0, 0.01, 0.05]), st.sampled_from([0.0, 0.02, 0.1]),
                    st.sampled_from([0.0, 0.03]), st.sampled_from([0.0, 1.5]),
                    st.sampled_from([0, 1, 3, 10])),
    data=st.data(),
)  # fmt: skip
def test_one_symbol_equals_the_single_symbol_stop_kernel_bit_for_bit(
    seed, n_bars, fee, slip, size, fill_on_close, stops, data
):
    rng = np.random.default_rng(seed)
    a = data.draw(st.integers(0, n_bars - 1))
    b = data.draw(st.integers(a + 1, n_bars))
    c = random_one_symbol_case(rng, n_bars=n_bars, fill_on_close=fill_on_close, fee=fee,
                               slip=slip, size=size, a=a, b=b)  # fmt: skip
    c = with_stops(c, rng, Stops(*stops))
    got, records = run_kernel(c)

    bars = np.ascontiguousarray(
        np.stack([c[name][a:b, 0] for name in ("open", "close", "high", "low", "atr")])
    )
    target = np.ascontiguousarray(c["target"][a:b, 0])
    execution = Execution(fee, slip, size, fill_on_close, CASH)
    equity, units = np.empty(b - a), np.empty(b - a)
    trades = np.empty(count_entries_nb(target), dtype=TRADE_DTYPE)
    n = simulate_stops_nb(bars, target, execution, Stops(*stops), equity, units, trades)
    metrics = metrics_nb(equity, units, trades, n, CASH, PPY)

    np.testing.assert_array_equal(got.equity, equity)
    np.testing.assert_array_equal(got.units[:, 0], units)
    assert len(records) == n
    for name in TRADE_DTYPE.names:
        np.testing.assert_array_equal(records[name], trades[:n][name], err_msg=name)
    np.testing.assert_array_equal(np.array(list(got.metrics.values())), metrics)


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("direction", ["long", "both"])
def test_one_symbol_universe_with_stops_equals_the_single_symbol_run(fill, direction):
    given = {"source": "sample", "start": "2005-01-01", "fill": fill, "direction": direction,
             "params": {"fast": 10, "slow": 40}, "sl": 0.04, "tp": 0.05, "trail": 0.06,
             "sl_atr": 2.5, "max_bars": 40}  # fmt: skip
    single = ivybt.backtest("sma_cross", symbol="SPY", **given)
    universe = ivybt.backtest("sma_cross", symbols=["SPY"], **given)
    assert {m: (single.metrics[m], universe.metrics[m]) for m in METRIC_NAMES
            if not _same(single.metrics[m], universe.metrics[m])} == {}  # fmt: skip
    np.testing.assert_array_equal(universe.equity["equity"].to_numpy(),
                                  single.equity["equity"].to_numpy())  # fmt: skip
    pdt.assert_frame_equal(universe.trades[list(TRADE_COLUMNS)].reset_index(drop=True),
                           single.trades[list(TRADE_COLUMNS)].reset_index(drop=True),
                           check_exact=True)  # fmt: skip
    assert set(single.trades["exit_reason"]) == set(EXIT_REASONS)  # every exit was met
    assert universe.headline()["exits"] == single.headline()["exits"]


# -- 3. what a universe adds: one symbol stopped alone ------------------------------------------


def _two_symbols(**options: Any) -> dict[str, Any]:
    """A falls from bar 3 (its low reaches a 10 % stop at bar 4), B stays at 50; both long
    from bar 0's decision, equal weights, no costs, next-open fills."""
    a_price = [100.0, 100.0, 100.0, 100.0, 88.0, 88.0, 88.0, 88.0, 88.0, 88.0]
    b_price = [50.0] * 10
    c = case(np.c_[a_price, b_price], options.pop("target", np.ones((10, 2), np.int8)),
             **options)  # fmt: skip
    high = c["close"].copy()
    low = c["close"].copy()
    low[4, 0] = 85.0
    return {**c, "high": high, "low": low, "atr": np.full_like(high, NAN),
            **Stops(0.1, 0.0, 0.0, 0.0, 0)._asdict()}  # fmt: skip


def test_a_stop_sells_its_symbol_alone_and_its_cash_waits_for_the_next_rebalance():
    c = _two_symbols()
    run, _ = run_kernel(c)
    assert_same_run(run, run_twin(c), c)
    stop = next(trade for trade in run.trades if trade["symbol"] == 0)
    assert stop["exit_reason"] == REASONS["stop_loss"] and stop["exit_bar"] == 4
    # A gaps down to 88 at bar 4's open, beyond its stop at 90: it fills at the open
    assert stop["exit_price"] == 88.0
    assert run.units[4:, 0].tolist() == [0.0] * 6
    # B is not traded, and A's cash is not re-invested: no rebalance follows
    assert (run.units[1:, 1] == run.units[1, 1]).all()
    assert run.traded[5:].tolist() == [0.0] * 5
    assert len(run.trades) == 2 and run.trades[1]["is_open"]


def test_a_stopped_symbol_waits_for_a_fresh_signal_while_the_others_rebalance():
    # B turns flat at bar 5 (the account rebalances at 6: B sold, A still blocked, so the
    # cash stays), A's target leaves long at bar 6 and comes back at 7 (A re-enters at 8)
    target = np.ones((10, 2), np.int8)
    target[5:, 1] = 0
    target[6, 0] = 0
    c = _two_symbols(target=target)
    run, _ = run_kernel(c)
    assert_same_run(run, run_twin(c), c)
    a_trades = [trade for trade in run.trades if trade["symbol"] == 0]
    assert [(t["entry_bar"], t["exit_bar"], t["exit_reason"]) for t in a_trades] == [
        (1, 4, REASONS["stop_loss"]), (8, 9, REASONS["signal"])]  # fmt: skip
    assert run.units[6:8].tolist() == [[0.0, 0.0], [0.0, 0.0]]  # all cash while A is blocked
    # A alone is wanted at 8: it gets the whole account
    assert run.units[8, 0] * 88.0 == pytest.approx(run.equity[8], rel=1e-12)


def test_a_time_stop_closes_one_symbol_without_rebalancing_the_others():
    c = {**_two_symbols(), "stop_loss": 0.0, "max_bars": 3}
    c["low"] = c["close"].copy()
    run, _ = run_kernel(c)
    assert_same_run(run, run_twin(c), c)
    # both entered at bar 1 (decision 0); decision bar 4 is 3 bars on: both leave at 5
    assert [(t["symbol"], t["exit_bar"], t["exit_reason"]) for t in run.trades] == [
        (0, 5, REASONS["time"]), (1, 5, REASONS["time"])]  # fmt: skip
    assert run.units[5:].tolist() == [[0.0, 0.0]] * 5  # blocked until the target changes


# -- 4. grids, returns and the run folder on the demo universe ----------------------------------


@pytest.mark.parametrize(
    ("name", "space", "options"),
    [
        ("sma_cross", {"fast": "5,20", "slow": "50,100"}, {"direction": "both"}),
        ("donchian_breakout", {"entry_window": "20,55", "exit_window": "10,20"},
         {"fill": "close", "portfolio": {"weights": "inverse_vol", "rebalance": "weekly"}}),
        ("momentum_rotation", {"lookback": "63,126", "k": "2,3"}, {}),
    ],
)  # fmt: skip
def test_grid_rows_with_stops_equal_portfolio_backtests_bit_for_bit(name, space, options):
    common = {"symbols": list(DEMO), "source": "sample", "start": "2006-01-01", **STOPPED,
              **options}  # fmt: skip
    result = ivybt.grid(name, params=space, evidence=False, **common)
    table = result.table
    reasons: set[str] = set()
    for j in range(len(table)):
        row = table.iloc[j]
        params = {p.name: p.kind(row[f"param_{p.name}"]) for p in result.strategy.params
                  if f"param_{p.name}" in row}  # fmt: skip
        single = ivybt.backtest(name, params=params, **common)
        differ = [m for m in METRIC_NAMES if not _same(float(row[m]), single.metrics[m])]
        assert not differ, (j, {m: (row[m], single.metrics[m]) for m in differ})
        reasons |= set(single.trades["exit_reason"])
    assert reasons - {"signal"}, reasons  # the stops traded


def test_universe_returns_with_stops_are_the_backtests_returns():
    from ivybt.config import ExecutionConfig, PortfolioConfig
    from ivybt.data.panel import load_panel
    from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
    from ivybt.strategies import get_strategy
    from ivybt.studies.grid import evaluate_returns
    from ivybt.studies.space import build_space

    panel = load_panel(DEMO, "1d", "2008-01-01", None, source="sample")
    execution = ExecutionConfig(direction="both", **STOPPED)
    space = build_space(get_strategy("sma_cross"), {"fast": "5,10", "slow": "40,60"})
    bars = UniverseBars(panel, PortfolioConfig())
    returns = evaluate_returns(bars, space, execution, first_bar=0)
    for j in range(len(space)):
        run = simulate_portfolio(panel, space.strategy, space.combination(j), execution,
                                 PortfolioConfig(), periods_per_year=252.0)  # fmt: skip
        previous = np.r_[execution.initial_cash, run.equity[:-1]]
        want = np.where(run.equity != previous, run.equity / previous - 1.0, 0.0)
        np.testing.assert_array_equal(returns[:, j], want)


def test_a_universe_backtest_with_stops_writes_its_exits(tmp_path):
    result = ivybt.backtest("sma_cross", symbols=list(DEMO), source="sample",
                            start="2008-01-01", **STOPPED)  # fmt: skip
    plain = ivybt.backtest("sma_cross", symbols=list(DEMO), source="sample", start="2008-01-01")
    assert result.metrics != plain.metrics
    assert set(result.trades["exit_reason"]) == set(EXIT_REASONS)
    folder = result.write(tmp_path / "run")
    metrics = json.loads((folder / "metrics.json").read_text())
    closed = int((~result.trades["is_open"]).sum())
    assert sum(row["trades"] for row in metrics["exits"].values()) == closed
    assert "exits" not in plain.headline()
    html = (folder / "report.html").read_text()
    assert "Exits by reason" in html and "stopped symbol is sold alone" in html
    assert "Exits by reason" in result.plot().headings


def test_a_universe_grid_varies_exits_next_to_fixed_ones(tmp_path):
    """`--sl 0.04 -p trail=0,0.06` on a universe (once refused): every row keeps the fixed
    stop-loss and trades its own trailing stop; metrics.json's best lists the varied exits
    (tests/test_universe_exit_params.py checks every kind of strategy and study)."""
    from click.testing import CliRunner

    from ivybt.cli import cli

    out = tmp_path / "grid"
    result = CliRunner().invoke(cli, [
        "--results-dir", str(tmp_path), "grid", "sma_cross", "--symbols", ",".join(DEMO[:3]),
        "--source", "sample", "--start", "2008-01-01", "-p", "fast=5,10", "-p", "slow=50",
        "--sl", "0.04", "-p", "trail=0,0.06", "--no-evidence", "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    best = json.loads((out / "metrics.json").read_text())["best"]
    assert set(best["exits"]) == {"trail"}
    single = ivybt.backtest("sma_cross", symbols=list(DEMO[:3]), source="sample",
                            start="2008-01-01", params=best["params"], sl=0.04,
                            trail=best["exits"]["trail"] or None)  # fmt: skip
    assert best["metrics"]["sharpe"] == single.metrics["sharpe"]


def test_a_walk_forward_and_the_lookahead_check_trade_stops_on_a_universe(tmp_path):
    import pandas as pd

    from ivybt.runs.lookahead import check_lookahead

    common = {"symbols": list(DEMO), "source": "sample", "start": "2008-01-01", **STOPPED}
    out = tmp_path / "wf"
    result = ivybt.walk_forward("sma_cross", params={"fast": "5,10", "slow": "30,50"},
                                in_sample="3y", out_of_sample="1y", out=out, **common)  # fmt: skip
    equity = pd.read_parquet(out / "oos_equity.parquet")
    held = 10_000.0  # each fold's stitched part (`simulate_portfolio`) is its grid OOS row
    for row in result.folds.itertuples():
        part = equity.loc[equity["fold"] == row.fold, "equity"].to_numpy()
        assert part[-1] / held - 1.0 == pytest.approx(row.oos_total_return, rel=1e-12)
        held = part[-1]
    for name, params in (("sma_cross", {"fast": 10, "slow": 30}), ("momentum_rotation", {})):
        report = check_lookahead(name, params=params, cuts=6, direction="both", **common)
        assert report.ok, report.message
