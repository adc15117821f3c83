"""Stops and exits (issue #16): the kernels against the slow twin on random bars, the
intrabar rules one by one, and the fused metrics path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivybt.kernels.metrics import metrics_nb
from ivybt.kernels.simulate import TRADE_DTYPE, Execution, count_entries_nb, simulate_nb
from ivybt.kernels.stops import (
    EXIT_REASONS,
    NO_STOPS,
    Stops,
    simulate_stops_nb,
    stops_metrics_nb,
)
from tests.reference_stops import simulate_stops

FIELDS = ("entry_bar", "exit_bar", "side", "exit_reason", "is_open")
PRICES = ("units", "entry_price", "exit_price", "entry_fee", "exit_fee", "gross_pnl", "net_pnl")


def run(bars, target, execution, stops):
    n = bars.shape[1]
    equity, units = np.empty(n), np.empty(n)
    trades = np.empty(count_entries_nb(target), dtype=TRADE_DTYPE)
    k = simulate_stops_nb(bars, target, execution, stops, equity, units, trades)
    return equity, units, trades[:k]


def twin(bars, target, execution, stops):
    open_, close, high, low, atr = (list(map(float, row)) for row in bars)
    return simulate_stops(
        open_, high, low, close, atr, [int(x) for x in target],
        commission=execution.fee_rate, slippage=execution.slippage_rate, size=execution.size,
        fill_on_close=execution.fill_on_close, initial_cash=execution.initial_cash,
        stop_loss=stops.stop_loss, take_profit=stops.take_profit, trailing=stops.trailing,
        stop_atr=stops.stop_atr, max_bars=stops.max_bars,
    )  # fmt: skip


@st.composite
def cases(draw):
    n = draw(st.integers(2, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.02, n))  # gaps
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, n)))
    atr = np.where(np.arange(n) < draw(st.integers(0, 5)), np.nan,
                   close * rng.uniform(0.005, 0.05, n))  # fmt: skip
    bars = np.ascontiguousarray(np.stack([open_, close, high, low, atr]))
    target = np.array(draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n)),
                      dtype=np.int8)  # fmt: skip
    costs = draw(st.sampled_from([0.0, 0.001])), draw(st.sampled_from([0.0, 5e-4]))
    execution = Execution(*costs, draw(st.sampled_from([1.0, 0.5])), draw(st.booleans()),
                          10_000.0)  # fmt: skip
    off_or = lambda *values: st.sampled_from([0.0, *values])  # noqa: E731
    stops = Stops(draw(off_or(0.01, 0.03, 0.08)), draw(off_or(0.02, 0.05, 0.15)),
                  draw(off_or(0.01, 0.04)), draw(off_or(0.5, 2.0)),
                  draw(st.sampled_from([0, 1, 2, 5])))  # fmt: skip
    return bars, target, execution, stops


@settings(max_examples=400, deadline=None)
@given(cases())
def test_the_kernel_equals_the_twin_on_random_bars(case):
    bars, target, execution, stops = case
    equity, units, trades = run(bars, target, execution, stops)
    want_equity, want_units, want_trades = twin(bars, target, execution, stops)
    np.testing.assert_allclose(equity, want_equity, rtol=1e-12)
    np.testing.assert_allclose(units, want_units, rtol=1e-12)
    assert len(trades) == len(want_trades)
    for got, want in zip(trades, want_trades, strict=True):
        assert [got[f] for f in FIELDS] == [want[f] for f in FIELDS], (got, want)
        np.testing.assert_allclose([got[f] for f in PRICES], [want[f] for f in PRICES],
                                   rtol=1e-12)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(cases())
def test_the_fused_metrics_equal_the_recorded_run_bit_for_bit(case):
    bars, target, execution, stops = case
    equity, units, trades = run(bars, target, execution, stops)
    want = metrics_nb(equity, units, trades, len(trades), execution.initial_cash, 252.0)
    got = np.empty_like(want)
    stops_metrics_nb(bars, target, execution, stops, 252.0, got)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_without_stops_it_is_the_plain_simulation_bit_for_bit(case):
    bars, target, execution, _ = case
    equity, units, trades = run(bars, target, execution, NO_STOPS)
    n = bars.shape[1]
    plain_equity, plain_units = np.empty(n), np.empty(n)
    plain = np.empty(count_entries_nb(target), dtype=TRADE_DTYPE)
    k = simulate_nb(bars[0], bars[1], target, execution, plain_equity, plain_units, plain)
    np.testing.assert_array_equal(equity, plain_equity)
    np.testing.assert_array_equal(units, plain_units)
    np.testing.assert_array_equal(trades, plain[:k])


# -- the rules one by one ---------------------------------------------------------------------

FREE = Execution(0.0, 0.0, 1.0, False, 10_000.0)


def bars_of(rows):
    """bars from (open, high, low, close) rows; ATR 1.0 everywhere."""
    o, h, lo, c = np.array(rows, dtype=np.float64).T
    return np.ascontiguousarray(np.vstack([o, c, h, lo, np.ones(len(o))]))


def test_a_stop_fills_at_its_level_and_at_the_open_across_a_gap():
    bars = bars_of([(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 94, 96),
                    (90, 91, 88, 89)])  # fmt: skip
    target = np.array([1, 1, 1, 1], dtype=np.int8)
    _, _, trades = run(bars, target, FREE, Stops(0.05, 0, 0, 0, 0))
    assert trades[0]["exit_bar"] == 2 and trades[0]["exit_price"] == pytest.approx(95.0)
    assert EXIT_REASONS[trades[0]["exit_reason"]] == "stop_loss"
    gapped = bars_of([(100, 100, 100, 100), (100, 101, 99, 100), (93, 94, 90, 92),
                      (90, 91, 88, 89)])  # fmt: skip
    _, _, trades = run(gapped, target, FREE, Stops(0.05, 0, 0, 0, 0))
    assert trades[0]["exit_bar"] == 2 and trades[0]["exit_price"] == 93.0  # the open, gapped


def test_slippage_moves_a_stop_fill_against_the_trader():
    bars = bars_of([(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 94, 96)])
    slipping = Execution(0.0, 0.01, 1.0, False, 10_000.0)
    _, _, trades = run(bars, np.array([1, 1, 1], dtype=np.int8), slipping,
                       Stops(0.05, 0, 0, 0, 0))  # fmt: skip
    entry = 100.0 * 1.01
    assert trades[0]["exit_price"] == pytest.approx(entry * 0.95 * 0.99)


def test_both_in_one_bar_the_stop_loss_fills_first():
    bars = bars_of([(100, 100, 100, 100), (100, 100, 100, 100), (100, 112, 94, 100)])
    _, _, trades = run(bars, np.array([1, 1, 1], dtype=np.int8), FREE,
                       Stops(0.05, 0.10, 0, 0, 0))  # fmt: skip
    assert EXIT_REASONS[trades[0]["exit_reason"]] == "stop_loss"
    assert trades[0]["exit_price"] == pytest.approx(95.0)


def test_a_trailing_stop_follows_the_highs_but_not_the_bar_that_triggers_it():
    # entry at bar 1's open (100); reference = bar 1's close 102, then bar 2's high 110
    bars = bars_of([(100, 100, 100, 100), (100, 103, 99, 102), (104, 110, 103, 108),
                    (108, 120, 98.5, 99)])  # fmt: skip
    _, _, trades = run(bars, np.array([1, 1, 1, 1], dtype=np.int8), FREE,
                       Stops(0, 0, 0.10, 0, 0))  # fmt: skip
    # bar 3's high 120 does not move the level it triggers on: 110 x 0.9 = 99
    assert trades[0]["exit_bar"] == 3 and trades[0]["exit_price"] == pytest.approx(99.0)
    assert EXIT_REASONS[trades[0]["exit_reason"]] == "trailing"


def test_after_a_stop_only_a_fresh_signal_enters_again():
    calm = (95, 96, 94, 95)
    bars = bars_of([(100, 100, 100, 100), (100, 100, 100, 100), (100, 100, 90, 95), *[calm] * 4])
    target = np.array([1, 1, 1, 1, 0, 1, 1], dtype=np.int8)
    _, _, trades = run(bars, target, FREE, Stops(0.05, 0, 0, 0, 0))
    assert [(int(t["entry_bar"]), int(t["exit_bar"])) for t in trades] == [(1, 2), (6, 6)]


def test_the_time_stop_closes_after_max_bars_at_the_next_fill():
    bars = bars_of([(100 + t, 101 + t, 99 + t, 100 + t) for t in range(8)])
    target = np.ones(8, dtype=np.int8)
    _, _, trades = run(bars, target, FREE, Stops(0, 0, 0, 0, 3))
    # entered at bar 1's open; held 3 bars at bar 4's close: out at bar 5's open
    assert (int(trades[0]["entry_bar"]), int(trades[0]["exit_bar"])) == (1, 5)
    assert EXIT_REASONS[trades[0]["exit_reason"]] == "time"
    assert trades[0]["exit_price"] == 105.0 and len(trades) == 1  # blocked: no fresh signal


def test_an_atr_stop_uses_the_atr_of_the_decision_bar():
    bars = bars_of([(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 96.5, 97)])
    bars[4] = [2.0, 5.0, 5.0]  # the entry at bar 1 was decided at bar 0: ATR 2
    _, _, trades = run(bars, np.array([1, 1, 1], dtype=np.int8), FREE, Stops(0, 0, 0, 1.5, 0))
    assert trades[0]["exit_bar"] == 2 and trades[0]["exit_price"] == pytest.approx(97.0)


# -- a backtest with stops ------------------------------------------------------------------


def test_a_backtest_with_stops_equals_the_twin_on_real_bars(tmp_path):
    import ivybt
    from ivybt.engine.simulation import strategy_targets
    from ivybt.indicators.volatility import atr

    common = {"symbol": "SPY", "source": "sample", "start": "2005-01-01",
              "params": {"fast": 10, "slow": 40}, "direction": "both"}  # fmt: skip
    result = ivybt.backtest("sma_cross", **common, sl=0.04, tp=0.05, trail=0.06, sl_atr=2.5,
                            max_bars=40)  # fmt: skip
    plain = ivybt.backtest("sma_cross", **common)
    prices = result.prices
    columns = {c: prices[c].to_numpy() for c in prices.columns}
    target = strategy_targets(columns, result.strategy, result.params, "both")
    rows = [list(map(float, prices[c])) for c in ("open", "high", "low", "close")]
    atr_row = list(map(float, atr(*[np.asarray(r) for r in rows[1:]], window=14)))
    equity, _, trades = simulate_stops(
        *rows, atr_row, [int(x) for x in target], commission=0.001, slippage=0.0005, size=1.0,
        fill_on_close=False, initial_cash=10_000.0, stop_loss=0.04, take_profit=0.05,
        trailing=0.06, stop_atr=2.5, max_bars=40,
    )  # fmt: skip
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), equity, rtol=1e-10)
    reasons = [EXIT_REASONS[t["exit_reason"]] for t in trades]
    assert list(result.trades["exit_reason"]) == reasons
    assert {"stop_loss", "take_profit", "trailing", "time", "signal"} <= set(reasons)
    folder = result.write(tmp_path / "run")
    import json

    exits = json.loads((folder / "metrics.json").read_text())["exits"]
    assert sum(row["trades"] for row in exits.values()) == int((~result.trades["is_open"]).sum())
    assert "Exits by reason" in (folder / "report.html").read_text()
    assert result.metrics != plain.metrics


# -- grids and studies with stops -------------------------------------------------------------

STOPPED = {"sl": 0.04, "tp": 0.12, "trail": 0.06, "sl_atr": 2.0, "max_bars": 30}


@pytest.mark.parametrize("strategy", ["sma_cross", "rsi_reversion", "macd_cross"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_grid_rows_with_stops_equal_backtests_bit_for_bit(strategy, fill):
    import ivybt
    from ivybt.kernels.metrics import METRIC_NAMES

    spaces = {"sma_cross": {"fast": "5,10", "slow": "30,50"},
              "rsi_reversion": {"window": "7,14", "lower": "25,30"},
              "macd_cross": {"fast": "8,12", "slow": "26"}}  # fmt: skip
    common = {"symbol": "SPY", "source": "sample", "start": "2008-01-01", "fill": fill,
              "direction": "both", **STOPPED}  # fmt: skip
    result = ivybt.grid(strategy, params=spaces[strategy], evidence=False, **common)
    for j in range(len(result.table)):
        row = result.table.iloc[j]
        params = {n.removeprefix("param_"): row[n] for n in result.table if n.startswith("param_")}
        single = ivybt.backtest(strategy, params=params, **common)
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)


def test_the_overfitting_returns_with_stops_are_the_backtests_returns():
    from ivybt.config import ExecutionConfig
    from ivybt.data.loader import load
    from ivybt.engine.simulation import simulate_strategy
    from ivybt.stats.pbo import block_tables
    from ivybt.strategies import get_strategy
    from ivybt.studies.grid import evaluate_block_tables, evaluate_returns
    from ivybt.studies.space import build_space

    frame = load("SPY", source="sample", start="2010-01-01")
    columns = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    execution = ExecutionConfig(**STOPPED)
    space = build_space(get_strategy("sma_cross"), {"fast": "5,10,20", "slow": "40,60"})
    returns = evaluate_returns(columns, space, execution, first_bar=0)
    for j in range(len(space)):
        run = simulate_strategy(columns, space.strategy, space.combination(j), execution,
                                periods_per_year=252.0)  # fmt: skip
        equity = run.equity
        previous = np.r_[execution.initial_cash, equity[:-1]]
        want = np.where(equity != previous, equity / previous - 1.0, 0.0)
        np.testing.assert_array_equal(returns[:, j], want)
    tables = evaluate_block_tables(columns, space, execution, n_blocks=16, first_bar=0)
    for got, want in zip(tables, block_tables(returns, 16), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_walk_forward_with_stops_trades_them_in_and_out_of_sample(tmp_path):
    import ivybt
    from ivybt.config import ExecutionConfig
    from ivybt.data.loader import load
    from ivybt.engine.simulation import simulate_strategy
    from ivybt.strategies import get_strategy

    result = ivybt.walk_forward("sma_cross", symbol="SPY", source="sample", start="2008-01-01",
                                params={"fast": "5,10", "slow": "30,50"}, in_sample="3y",
                                out_of_sample="1y", out=tmp_path / "wf", **STOPPED)  # fmt: skip
    frame = load("SPY", source="sample", start="2008-01-01")
    columns = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    fold = result.folds.iloc[0]
    params = {"fast": int(fold["param_fast"]), "slow": int(fold["param_slow"])}
    run = simulate_strategy(
        {c: v[: int(fold["oos_end"])] for c, v in columns.items()}, get_strategy("sma_cross"),
        params, ExecutionConfig(**STOPPED),
        window=slice(int(fold["oos_start"]), int(fold["oos_end"])), periods_per_year=252.0,
    )  # fmt: skip
    assert fold["oos_sharpe"] == run.metrics["sharpe"]
    assert fold["oos_n_trades"] == run.metrics["n_trades"]


def test_the_lookahead_check_passes_with_every_stop():
    from ivybt.runs.lookahead import check_lookahead

    report = check_lookahead("sma_cross", symbol="SPY", source="sample", start="2010-01-01",
                             params={"fast": 10, "slow": 30}, cuts=12, direction="both",
                             **STOPPED)  # fmt: skip
    assert report.ok, report.message


MY_CROSS = """
from numba import njit
from ivybt.strategies import Indicator, Param, Strategy

@njit
def my_cross_nb(table, rows, params, out_target):
    fast = table[rows[0]]
    slow = table[rows[1]]
    for t in range(out_target.shape[0]):
        out_target[t] = 1 if fast[t] > slow[t] else -1 if fast[t] < slow[t] else 0

class MyCross(Strategy):
    name = "my_cross"
    summary = "Long above, short below: a plug-in twin of sma_cross."
    params = (Param("fast", int, 10, 2, 50), Param("slow", int, 30, 5, 200))
    signal_kernel = my_cross_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("sma", (p["fast"],)), Indicator("sma", (p["slow"],)))
"""


@pytest.mark.parametrize("builtin", [True, False])
def test_each_combination_may_carry_its_own_exits(builtin, tmp_path, monkeypatch):
    """`GridPlan.exit_column`: exits read from each combination's parameter row (what a
    space over stop values will give) equal the same exits set for the whole run."""
    from ivybt.config import ExecutionConfig
    from ivybt.data.loader import load
    from ivybt.engine.simulation import execution_tuple
    from ivybt.engine.tables import indicator_table
    from ivybt.strategies import get_strategy
    from ivybt.studies.grid import _grid_plan, _kernel_for, _prices, space_indicators
    from ivybt.studies.space import build_space

    if builtin:
        strategy = get_strategy("sma_cross")
    else:  # a user's kernel: the checked custom grid kernel
        (tmp_path / "my_cross.py").write_text(MY_CROSS)
        monkeypatch.syspath_prepend(str(tmp_path))
        strategy = get_strategy("my_cross:MyCross")
    frame = load("SPY", source="sample", start="2012-01-01")
    columns = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    space = build_space(strategy, {"fast": "5,10", "slow": "30,50"})
    exits = [(0.03, 0.0, 0.0, 0.0, 0), (0.0, 0.06, 0.05, 0.0, 0), (0.05, 0.1, 0.0, 2.0, 20),
             (0.0, 0.0, 0.0, 0.0, 0)]  # fmt: skip
    n = len(space)
    exit_rows = np.tile(np.array(exits, float), (n, 1))
    params = np.ascontiguousarray(np.hstack([np.repeat(space.combos, len(exits), axis=0),
                                             exit_rows]))  # fmt: skip
    distinct, slot_ids = space_indicators(space)
    table, rows = indicator_table(columns, distinct)
    slots = np.repeat(np.array([rows[i] for i in distinct])[slot_ids], len(exits), axis=0)
    any_stop = ExecutionConfig(sl=0.01, sl_atr=1.0)  # five price rows with the ATR(14)
    prices = _prices(columns, any_stop, space)
    windows = np.array([[100, len(frame)]])
    plan = _grid_plan(space, ExecutionConfig(), windows, None)._replace(
        exit_column=space.combos.shape[1]
    )
    kernel = _kernel_for(strategy)
    got = kernel(prices, table, slots, params, plan, execution_tuple(ExecutionConfig()), 252.0)
    for j in range(n):
        for e, (sl, tp, trail, sl_atr, max_bars) in enumerate(exits):
            fixed = ExecutionConfig(sl=sl or None, tp=tp or None, trail=trail or None,
                                    sl_atr=sl_atr or None, max_bars=max_bars or None)  # fmt: skip
            one = np.ascontiguousarray(space.combos[j : j + 1])
            want = kernel(prices, table, slots[j * len(exits) + e][None], one,
                          _grid_plan(space, fixed, windows, None), execution_tuple(fixed),
                          252.0)  # fmt: skip
            np.testing.assert_array_equal(got[j * len(exits) + e], want[0])


# -- exits as parameters of a grid ------------------------------------------------------------


def test_a_grid_over_exits_and_the_strategy_equals_backtests_bit_for_bit(tmp_path):
    """`-p sl=... -p max_bars=...` next to the strategy's parameters: one kernel pass, each
    row the backtest with those exits (0: off), the PBO over every row."""
    import json

    import ivybt
    from ivybt.kernels.metrics import METRIC_NAMES

    common = {"symbol": "SPY", "source": "sample", "start": "2008-01-01", "tp": 0.2}
    space = {"fast": "5,10", "slow": "30,50", "sl": "0,0.03,0.06", "trail": "0,0.08",
             "max_bars": "0,20", "sl_atr": "0,2"}  # fmt: skip
    result = ivybt.grid("sma_cross", params=space, **common)
    table = result.table
    assert len(table) == 4 * 3 * 2 * 2 * 2 and result.evidence["pbo"] is not None
    assert [c for c in table if c.startswith("param_")] == [
        "param_fast",
        "param_slow",
        "param_sl",
        "param_trail",
        "param_sl_atr",
        "param_max_bars",
    ]
    for j in range(0, len(table), 7):
        row = table.iloc[j]
        exits = {k: row[f"param_{k}"] or None for k in ("sl", "trail", "sl_atr")}
        single = ivybt.backtest(
            "sma_cross", params={"fast": row["param_fast"], "slow": row["param_slow"]},
            max_bars=int(row["param_max_bars"]) or None, **exits, **common,
        )  # fmt: skip
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)
    best = json.loads((result.write(tmp_path / "g") / "metrics.json").read_text())["best"]
    assert set(best["exits"]) == {"sl", "trail", "sl_atr", "max_bars"}
    assert best["exits"] == result.best_exits()
