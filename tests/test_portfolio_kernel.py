"""The portfolio kernel (`ivybt.kernels.portfolio`) against its slow twin, the single-symbol
kernel, the grid kernel, and each allocation rule of docs/portfolio.md on a small case.

The named tests assert a rule on numbers small enough to check by hand; the property test
compares the kernel with `tests/portfolio_reference.py` on random universes. The rounding
rules (no dust orders, exact whole lots, one target for the band and the order) have their
own small cases at the end: the twin found each of them missing in a first kernel.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ivybt.engine.tables import indicator_table
from ivybt.kernels.grid import GridPlan
from ivybt.kernels.metrics import METRIC_NAMES, metrics_nb
from ivybt.kernels.portfolio import (
    EQUAL,
    FIXED,
    INVERSE_VOL,
    PORTFOLIO_TRADE_DTYPE,
    PortfolioRules,
    Universe,
    metrics_only,
    portfolio_nb,
    scratch,
)
from ivybt.kernels.portfolio import (
    records as portfolio_records,
)
from ivybt.kernels.portfolio_grid import SymbolTables, portfolio_grid_builtin_nb
from ivybt.kernels.signals import cross_signal_nb
from ivybt.kernels.simulate import (
    TRADE_DTYPE,
    Execution,
    count_entries_nb,
    restrict_direction_nb,
    simulate_nb,
)
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import space_indicators
from ivybt.studies.space import build_space
from tests.portfolio_reference import reference_metrics, reference_portfolio

NAN = math.nan
INF = math.inf
CASH = 10_000.0
PPY = 252.0
WEIGHTING_CODES = {"equal": EQUAL, "fixed": FIXED, "inverse_vol": INVERSE_VOL}
PROPERTY = settings(
    max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip

RTOL_TWIN = 1e-9
"""Kernel vs twin (the issue's bar). Not bit for bit: the twin averages fill prices as
sum(units x price) / sum(units) where the kernel updates a running mean, buys `target - held`
units where the kernel buys `(target notional - held notional) / fill`, holds k lots as k x lot
where the kernel holds (k x lot x fill) / fill, and re-measures the gross held before the buys
where the kernel decrements it; each differs in the last bits. Seen over 4,000 random
universes: equity 2e-15, units 4e-14, average prices 2e-16 relative."""

ATOL_CASH = 1e-9 * CASH
"""Absolute floor for currency amounts that can be ~0 (a trade's net PnL, a bar's traded
notional)."""

ATOL_UNITS = 1e-9
"""Absolute floor for units."""

NOISE = 1e-12
"""A spread of per-bar returns at or below this is rounding, not a move (the ratio built on it
is not compared)."""

TRADE_FIELDS = ("entry_price", "exit_price", "entry_fee", "exit_fee", "units")


# -- running the kernel and the twin on one case --------------------------------------------------


def carried_mark(close: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The close carried forward over missing bars inside each listing, NaN outside it."""
    n_bars, n_symbols = close.shape
    mark = np.full((n_bars, n_symbols), NAN)
    for s in range(n_symbols):
        seen = NAN
        for t in range(n_bars):
            if not math.isnan(close[t, s]):
                seen = close[t, s]
            if first[s] <= t <= last[s]:
                mark[t, s] = seen
    return mark


def case(
    open_: Any, target: Any, *, close: Any = None, first: Any = None, last: Any = None,
    fee: Any = 0.0, slip: Any = 0.0, lot: Any = 0.0, fixed: Any = 0.0, vol: Any = None,
    rebalance_at: Any = None, weighting: str = "equal", size: float = 1.0,
    max_leverage: float = 1.0, max_weight: float = INF, band: float = 0.0,
    scheduled: bool = False, fill_on_close: bool = False, initial_cash: float = CASH,
    a: int = 0, b: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every argument of `reference_portfolio` as arrays; per-symbol scalars broadcast."""
    open_ = np.array(open_, dtype=np.float64, ndmin=2)
    close = open_.copy() if close is None else np.array(close, dtype=np.float64, ndmin=2)
    n_bars, n_symbols = close.shape
    first = np.zeros(n_symbols, np.int64) if first is None else np.array(first, np.int64)
    last = np.full(n_symbols, n_bars - 1, np.int64) if last is None else np.array(last, np.int64)

    def per_symbol(value: Any) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(value, np.float64), n_symbols))

    return {
        "open": open_, "close": close, "mark": carried_mark(close, first, last),
        "first": first, "last": last,
        "target": np.array(target, dtype=np.int8).reshape(n_bars, n_symbols),
        "fee": per_symbol(fee), "slip": per_symbol(slip), "lot": per_symbol(lot),
        "fixed": per_symbol(fixed),
        "vol": np.ones((n_bars, n_symbols)) if vol is None else np.array(vol, np.float64),
        "rebalance_at": np.zeros(n_bars, np.int8) if rebalance_at is None
        else np.array(rebalance_at, np.int8),
        "weighting": weighting, "size": size, "max_leverage": max_leverage,
        "max_weight": max_weight, "band": band, "scheduled": scheduled,
        "fill_on_close": fill_on_close, "initial_cash": initial_cash,
        "a": a, "b": n_bars if b is None else b,
    }  # fmt: skip


class Run(NamedTuple):
    equity: np.ndarray
    units: np.ndarray
    traded: np.ndarray
    trades: list[dict[str, Any]]
    metrics: dict[str, float]  # the kernel's (the twin's are checked from the kernel's log)
    ambiguous: tuple[int, ...] = ()  # the twin's bars decided by a rounding-sized difference


def universe_of(c: dict[str, Any]) -> Universe:
    vol = c["vol"] if c["weighting"] == "inverse_vol" else np.zeros((0, 0))
    return Universe(
        prices=np.ascontiguousarray(np.stack([c["open"], c["close"],
                                              np.nan_to_num(c["mark"], nan=0.0)])),
        first=c["first"], last=c["last"], fee=c["fee"], slip=c["slip"], lot=c["lot"],
        fixed=c["fixed"], vol=np.ascontiguousarray(vol), rebalance_at=c["rebalance_at"],
    )  # fmt: skip


STOP_KEYS = ("stop_loss", "take_profit", "trailing", "stop_atr", "max_bars")
"""A case's exits (tests/test_portfolio_stops.py; absent: off)."""


def rules_of(c: dict[str, Any]) -> PortfolioRules:
    return PortfolioRules(
        WEIGHTING_CODES[c["weighting"]], c["size"], c["max_leverage"], c["max_weight"],
        c["band"], c["scheduled"], c["fill_on_close"], c["initial_cash"],
        *(c.get(key, 0) for key in STOP_KEYS),
    )  # fmt: skip


def run_kernel(c: dict[str, Any]) -> Run:
    a, b = c["a"], c["b"]
    n_symbols = len(c["first"])
    # at most one trade opens per symbol and bar
    out = portfolio_records(b - a, n_symbols, (b - a) * n_symbols + 1)
    n_trades = portfolio_nb(
        universe_of(c), np.ascontiguousarray(c["target"]), rules_of(c), a, b, PPY,
        scratch(n_symbols), out,
    )  # fmt: skip
    metrics, equity, units, traded, records = out
    trades = [
        {name: record[name].item() for name in PORTFOLIO_TRADE_DTYPE.names}
        for record in records[:n_trades]  # the open ones included
    ]
    for trade in trades:
        trade["return"] = trade.pop("trade_return")
    return Run(equity, units, traded, trades, dict(zip(METRIC_NAMES, metrics, strict=True)))


def run_twin(c: dict[str, Any]) -> Run:
    twin = reference_portfolio(**c)
    return Run(twin.equity, twin.units, twin.traded, twin.trades, {}, tuple(twin.ambiguous))


def delisting_bars(run: Run, c: dict[str, Any]) -> list[int]:
    """Bars (of the window) where a symbol was closed for the end of its listing."""
    return sorted({
        tr["exit_bar"] for tr in run.trades
        if not tr["is_open"] and tr["exit_bar"] + c["a"] == c["last"][tr["symbol"]] + 1
    })  # fmt: skip


def assert_same_run(got: Run, want: Run, c: dict[str, Any]) -> None:
    np.testing.assert_allclose(got.equity, want.equity, rtol=RTOL_TWIN)
    np.testing.assert_allclose(got.units, want.units, rtol=RTOL_TWIN, atol=ATOL_UNITS)
    # A kernel finding: on a bar where a delisting close and a rebalance happen together, the
    # kernel's traded notional leaves the close out (test_traded_notional_counts_a_delisting_
    # close_on_a_rebalance_bar); those bars are compared once that is fixed.
    other = np.ones(len(got.traded), bool)
    other[delisting_bars(want, c)] = False
    np.testing.assert_allclose(got.traded[other], want.traded[other], rtol=RTOL_TWIN,
                               atol=ATOL_CASH)  # fmt: skip
    assert len(got.trades) == len(want.trades)
    for mine, theirs in zip(got.trades, want.trades, strict=True):
        for key in ("symbol", "side", "entry_bar", "exit_bar", "is_open"):
            assert mine[key] == theirs[key], (key, mine, theirs)
        for key in TRADE_FIELDS:
            assert mine[key] == pytest.approx(theirs[key], rel=RTOL_TWIN, abs=1e-12), key
        assert mine["net_pnl"] == pytest.approx(theirs["net_pnl"], rel=RTOL_TWIN, abs=ATOL_CASH)
    assert_metrics_follow_the_definitions(got, c)


def assert_metrics_follow_the_definitions(run: Run, c: dict[str, Any]) -> None:
    """The kernel's metrics are docs/metrics.md applied to its own curve and trade log (trade
    metrics over the closed trades of every symbol). Measured on the kernel's own outputs, not
    the twin's: a ratio whose denominator is rounding noise (a window whose only moves are
    1e-16 returns) is ill-conditioned, and so is a trade whose net PnL is 0 +- 1 ulp."""
    want = reference_metrics(run.equity, run.units, run.trades, c["initial_cash"], PPY)
    previous = np.r_[c["initial_cash"], run.equity[:-1]]
    returns = run.equity / previous - 1
    noise = {
        "sharpe": want["volatility"] <= NOISE,
        "sortino": math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)) <= NOISE,
        "calmar": -want["max_drawdown"] <= NOISE,
    }
    # the kernel's variance is one pass of sums (documented in ivybt.kernels.metrics): it
    # loses about eps x n x (mean / std)^2 of itself, which matters only for returns that are
    # nearly constant (a window of two bars of costs)
    n = len(returns)
    spread = float(np.std(returns, ddof=1)) if n > 1 else math.nan
    drift = float(np.mean(returns)) ** 2 / spread**2 if spread > 0 else 0.0
    one_pass = RTOL_TWIN + 10 * np.finfo(float).eps * n * (1 + drift)
    for name in METRIC_NAMES:
        mine, theirs = run.metrics[name], want[name]
        if noise.get(name, False):
            continue
        rel = one_pass if name in ("volatility", "sharpe") else RTOL_TWIN
        assert (math.isnan(mine) and math.isnan(theirs)) or mine == pytest.approx(
            theirs, rel=rel, abs=1e-9
        ), (name, mine, theirs)


def run_both(c: dict[str, Any]) -> Run:
    """The kernel's run, after checking that the twin agrees."""
    got = run_kernel(c)
    assert_same_run(got, run_twin(c), c)
    return got


def holding_values(run: Run, c: dict[str, Any], t: int) -> np.ndarray:
    """Signed value of each holding at bar t's close (at its mark)."""
    return run.units[t] * np.nan_to_num(c["mark"][t + c["a"]])


def cash_at(run: Run, c: dict[str, Any], t: int) -> float:
    return float(run.equity[t] - holding_values(run, c, t).sum())


def fill_notional(run: Run, symbol: int) -> float:
    """Units x entry price of `symbol`'s first trade."""
    trade = next(tr for tr in run.trades if tr["symbol"] == symbol)
    return trade["units"] * trade["entry_price"]


# -- the twin on random universes -----------------------------------------------------------------


@st.composite
def universes(draw: st.DrawFn) -> dict[str, Any]:
    """1-5 symbols x 5-60 bars: listing starts and ends (now and then a symbol never listed),
    missing bars, random sides (0 outside the listing), per-symbol costs and lots, every
    weighting and rule, a window [a, b)."""
    n_symbols = draw(st.integers(1, 5))
    n_bars = draw(st.integers(5, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    first = np.zeros(n_symbols, np.int64)
    last = np.full(n_symbols, n_bars - 1, np.int64)
    missing_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))
    sides = draw(st.sampled_from([(-1, 0, 1), (0, 1), (-1, 0), (-1, 1)]))
    hold = draw(st.integers(1, 8))
    close = np.full((n_bars, n_symbols), NAN)
    open_ = np.full((n_bars, n_symbols), NAN)
    target = np.zeros((n_bars, n_symbols), np.int8)
    for s in range(n_symbols):
        if rng.random() < 0.05:  # no bar in the panel's window: never listed
            first[s] = last[s] = -1
            continue
        if draw(st.booleans()):
            first[s] = rng.integers(0, n_bars)
        if draw(st.booleans()):
            last[s] = rng.integers(first[s], n_bars)
        path = rng.uniform(10, 100) * np.exp(np.cumsum(rng.normal(0, 0.03, n_bars)))
        gap = rng.normal(0, 0.01, n_bars)
        listed = slice(first[s], last[s] + 1)
        close[listed, s] = path[listed]
        open_[listed, s] = (np.r_[path[0], path[:-1]] * np.exp(gap))[listed]
        inside = np.arange(first[s] + 1, last[s])  # the first and last bars exist
        gone = inside[rng.random(len(inside)) < missing_rate]
        close[gone, s] = open_[gone, s] = NAN
        runs = rng.choice(sides, size=n_bars // hold + 1)
        target[listed, s] = np.repeat(runs, hold)[:n_bars][listed]
    costly = draw(st.booleans())
    lots = draw(st.sampled_from(["none", "all", "some"]))
    lot_size = draw(st.sampled_from([1.0, 10.0]))  # 10 x ~50 can round a small weight away
    vol = rng.uniform(0.05, 0.5, (n_bars, n_symbols))
    vol[rng.random(vol.shape) < 0.1] = NAN
    a, b = 0, n_bars  # the whole span, or a window inside it
    if draw(st.booleans()):
        a = int(rng.integers(0, n_bars - 1))
        b = int(rng.integers(a + 1, n_bars + 1))
    return case(
        open_, target, close=close, first=first, last=last,
        fee=rng.uniform(0, 0.002, n_symbols) if costly else 0.0,
        slip=rng.uniform(0, 0.002, n_symbols) if costly else 0.0,
        lot={"none": 0.0, "all": lot_size, "some": rng.choice([0.0, lot_size], n_symbols)}[lots],
        fixed=rng.uniform(0, 0.8, n_symbols), vol=vol,
        rebalance_at=rng.random(n_bars) < 0.3,
        weighting=draw(st.sampled_from(["equal", "fixed", "inverse_vol"])),
        size=draw(st.sampled_from([1.0, 0.5, 0.9])),
        max_leverage=draw(st.floats(0.5, 3.0)),
        max_weight=draw(st.sampled_from([INF, 0.25, 0.6])),
        band=draw(st.sampled_from([0.0, 0.05])),
        scheduled=draw(st.booleans()),
        fill_on_close=draw(st.booleans()),
        initial_cash=draw(st.sampled_from([CASH, 2_500.0, 1e5])),
        a=a, b=b,
    )  # fmt: skip


@PROPERTY
@given(c=universes())
def test_kernel_equals_the_twin_on_random_universes(c):
    want = run_twin(c)
    if want.ambiguous:
        # From a bar where a rule's outcome hinged on a rounding-sized difference (a holding on
        # its target or band edge up to the last bit, buying power used up to the last bit,
        # a whole number of lots), two correct float implementations may part: compare the
        # window up to that bar (tests/portfolio_reference.py; the kernel's own handling of
        # those ties has its own cases at the end).
        cut = want.ambiguous[0]
        assume(cut > 0)
        c = {**c, "b": c["a"] + cut}
        want = run_twin(c)
    assert_same_run(run_kernel(c), want, c)


# -- one symbol: today's single-symbol kernel, bit for bit ----------------------------------------


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1), n_bars=st.integers(2, 80), hold=st.integers(1, 10),
    sides=st.sampled_from([(-1, 0, 1), (0, 1), (-1, 0), (-1, 1)]),
    fee=st.sampled_from([0.0, 0.0005, 0.002]), slip=st.sampled_from([0.0, 0.001]),
    size=st.sampled_from([1.0, 0.5, 0.25, 0.99]), fill_on_close=st.booleans(),
    data=st.data(),
)  # fmt: skip
def test_one_symbol_equals_simulate_nb_bit_for_bit(seed, n_bars, hold, sides, fee, slip, size,
                                                   fill_on_close, data):  # fmt: skip
    rng = np.random.default_rng(seed)
    close = rng.uniform(10, 100) * np.exp(np.cumsum(rng.normal(0, 0.03, n_bars)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.01, n_bars))
    target = np.repeat(rng.choice(sides, n_bars // hold + 1), hold)[:n_bars].astype(np.int8)
    a = data.draw(st.integers(0, n_bars - 1))
    b = data.draw(st.integers(a + 1, n_bars))
    c = case(open_[:, None], target[:, None], close=close[:, None], fee=fee, slip=slip,
             size=size, fill_on_close=fill_on_close, a=a, b=b)  # fmt: skip
    got = run_kernel(c)

    execution = Execution(fee, slip, size, fill_on_close, CASH)
    equity, units = np.empty(b - a), np.empty(b - a)
    trades = np.empty(count_entries_nb(target[a:b]), dtype=TRADE_DTYPE)
    n = simulate_nb(open_[a:b], close[a:b], target[a:b], execution, equity, units, trades)
    metrics = metrics_nb(equity, units, trades, n, CASH, PPY)

    np.testing.assert_array_equal(got.equity, equity)
    np.testing.assert_array_equal(got.units[:, 0], units)
    assert len(got.trades) == n
    for mine, record in zip(got.trades, trades[:n], strict=True):
        for name in TRADE_DTYPE.names:
            theirs = record[name].item()
            assert mine["return" if name == "trade_return" else name] == theirs, name
    np.testing.assert_array_equal(np.array(list(got.metrics.values())), metrics)


# -- universe: missing bars and listing -----------------------------------------------------------


def test_nan_bar_mid_series_is_not_traded_and_is_valued_at_the_last_close():
    # A has no bar at 3 (the bar its first decision would fill at) nor at 5 (while held)
    a_open = [10.0, 10.0, 12.0, NAN, 15.0, NAN, 17.0]
    a_close = [10.0, 10.0, 12.0, NAN, 15.5, NAN, 17.0]
    b_price = [50.0] * 7
    target = [[0, 1], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]]  # A: long from bar 2
    c = case(np.c_[a_open, b_price], target, close=np.c_[a_close, b_price])
    run = run_both(c)
    assert run.units[3, 0] == 0.0 and run.traded[3] == 0.0  # no bar: no trade
    a_trade = next(tr for tr in run.trades if tr["symbol"] == 0)
    assert a_trade["entry_bar"] == 4 and a_trade["entry_price"] == 15.0  # the next bar's open
    assert run.units[5, 0] == run.units[4, 0] and run.traded[5] == 0.0
    # at bar 5 A is valued at its last close (15.5), B at 50
    assert run.equity[5] == pytest.approx(
        cash_at(run, c, 4) + run.units[5, 0] * 15.5 + run.units[5, 1] * 50.0, rel=1e-15
    )


def test_symbol_listed_late_has_no_weight_before_its_first_bar():
    # C is listed from bar 4; everyone wants to be long whenever listed
    price = np.tile([20.0, 40.0, 80.0], (8, 1))
    price[:4, 2] = NAN
    target = np.ones((8, 3), np.int8)
    target[:4, 2] = 0
    c = case(price, target, first=[0, 0, 4], fill_on_close=True)
    run = run_both(c)
    # before C: A and B at 1/2 each (C is not in the equal-weight count)
    np.testing.assert_allclose(holding_values(run, c, 0), [CASH / 2, CASH / 2, 0.0], rtol=1e-15)
    assert run.units[:4, 2].tolist() == [0.0] * 4
    # C's first decision (bar 4) fills at bar 4's close: 1/3 each
    np.testing.assert_allclose(holding_values(run, c, 4), [CASH / 3] * 3, rtol=1e-12)


def test_symbol_delisted_early_is_closed_at_its_last_close_with_costs():
    fee, slip = 0.001, 0.002
    a_price = [10.0, 11.0, 12.0, 13.0, NAN, NAN, NAN]  # A's last bar is 3
    b_price = [30.0] * 7
    target = [[1, 1], [1, 1], [1, 1], [1, 1], [0, 1], [0, -1], [0, -1]]
    c = case(np.c_[a_price, b_price], target, last=[3, 6], fee=fee, slip=slip)
    run = run_both(c)
    a_trade = next(tr for tr in run.trades if tr["symbol"] == 0)
    assert not a_trade["is_open"] and a_trade["exit_bar"] == 4  # the bar after its last
    assert a_trade["exit_price"] == 13.0 * (1 - slip)  # at its last close, slippage paid
    assert a_trade["exit_fee"] == pytest.approx(fee * a_trade["units"] * 13.0 * (1 - slip))
    assert run.units[4:, 0].tolist() == [0.0] * 3
    # B's flip at bar 6 is weighted without A: all of the equity, not half
    cash_before_flip = cash_at(run, c, 5) + run.units[5, 1] * 30.0 * (1 - slip) * (1 - fee)
    b_short = [tr for tr in run.trades if tr["symbol"] == 1][-1]
    assert b_short["side"] == -1 and b_short["entry_bar"] == 6
    assert b_short["units"] * b_short["entry_price"] == pytest.approx(
        cash_before_flip / (1 + fee), rel=1e-12
    )


# -- weights, leverage, caps ----------------------------------------------------------------------


def test_leverage_breach_is_scaled_not_refused():
    price = np.tile([20.0, 40.0, 80.0], (3, 1))
    c = case(price, np.ones((3, 3)), weighting="fixed", fixed=0.5, max_leverage=1.0,
             fill_on_close=True)  # fmt: skip
    run = run_both(c)
    # 0.5 + 0.5 + 0.5 = 1.5 > 1: every weight x 1 / 1.5, so each holds a third, cash ~0
    np.testing.assert_allclose(holding_values(run, c, 0), [CASH / 3] * 3, rtol=1e-12)
    assert abs(cash_at(run, c, 0)) < 1e-9 * CASH
    # with room for 1.5 (max_leverage 2) the same weights are kept, cash borrowed
    run = run_both({**c, "max_leverage": 2.0})
    np.testing.assert_allclose(holding_values(run, c, 0), [CASH / 2] * 3, rtol=1e-12)
    assert cash_at(run, c, 0) == pytest.approx(-CASH / 2, rel=1e-12)


def test_max_weight_caps_one_symbol():
    price = np.tile([20.0, 40.0], (3, 1))
    run = run_both(c := case(price, np.ones((3, 2)), max_weight=0.3, fill_on_close=True))
    np.testing.assert_allclose(holding_values(run, c, 0), [0.3 * CASH] * 2, rtol=1e-12)
    c = case(price, np.ones((3, 2)), weighting="fixed", fixed=[0.9, 0.1], max_weight=0.5,
             fill_on_close=True)  # fmt: skip
    run = run_both(c)
    np.testing.assert_allclose(holding_values(run, c, 0), [0.5 * CASH, 0.1 * CASH], rtol=1e-12)


def test_inverse_volatility_weights():
    price = np.tile([20.0, 40.0, 80.0], (3, 1))
    vol = np.tile([0.1, 0.2, NAN], (3, 1))  # C has no volatility yet: weight 0
    c = case(price, np.ones((3, 3)), weighting="inverse_vol", vol=vol, fill_on_close=True)
    run = run_both(c)
    # 1/0.1 : 1/0.2 = 2 : 1 of the equity
    np.testing.assert_allclose(holding_values(run, c, 0), [CASH * 2 / 3, CASH / 3, 0.0],
                               rtol=1e-12)  # fmt: skip


def test_five_symbols_at_20_percent_each_hold_20_percent_each_vectorbt_713():
    """vectorbt #713: with shared cash, 'percent of equity' sizing applied symbol after symbol
    gives 20 %, 16 %, 12.8 %... of the initial equity. Here the weights are of the equity at
    the rebalance, so five equal weights give five equal holdings."""
    fee, slip = 0.001, 0.0005
    price = np.tile([10.0, 25.0, 40.0, 55.0, 70.0], (4, 1))
    target = np.zeros((4, 5), np.int8)
    target[1:] = 1  # all five enter on the same bar
    c = case(price, target, fee=fee, slip=slip)
    run = run_both(c)
    notionals = np.array([fill_notional(run, s) for s in range(5)])
    np.testing.assert_allclose(notionals, 0.2 * CASH / (1 + fee), rtol=1e-12)  # not 20/16/...
    weights = holding_values(run, c, 2) / run.equity[2]
    np.testing.assert_allclose(weights, weights[0], rtol=1e-12)
    assert weights.sum() == pytest.approx(1.0, abs=0.003)  # what the costs took


# -- rebalancing ----------------------------------------------------------------------------------


def test_scheduled_rebalance_at_unchanged_prices_trades_nothing_after_the_first():
    price = np.tile([20.0, 40.0, 80.0], (6, 1))
    c = case(price, np.ones((6, 3)), scheduled=True, rebalance_at=np.ones(6), fill_on_close=True)
    run = run_both(c)
    assert run.traded[0] == pytest.approx(CASH)
    assert run.traded[1:].tolist() == [0.0] * 5
    assert len(run.trades) == 3 and all(tr["is_open"] for tr in run.trades)


def test_targets_equal_to_the_holdings_make_no_trade():
    # A holds 50 whole units (half the equity at 100); when B enters, A's target is still 50
    price = np.tile([100.0, 25.0], (4, 1))
    target = [[1, 0], [1, 0], [1, 1], [1, 1]]
    c = case(price, target, weighting="fixed", fixed=[0.5, 0.3], lot=1.0, fill_on_close=True)
    run = run_both(c)
    assert run.units[:, 0].tolist() == [50.0] * 4
    assert run.traded[2] == 120 * 25.0  # B's 0.3 x 10,000 / 25 units, nothing of A
    a_trade = run.trades[0]
    assert a_trade["symbol"] == 0 and a_trade["units"] == 50.0  # one fill only


def test_band_leaves_a_drifted_holding_alone_until_it_leaves_the_band():
    # half the equity in A, rebalanced every bar, band 5 %; A's weight is 50p / (5000 + 50p)
    price = [100.0, 104.0, 110.0, 120.0, 125.0, 125.0]
    c = case(np.c_[price], np.ones((6, 1)), size=0.5, band=0.05, scheduled=True,
             rebalance_at=np.ones(6), fill_on_close=True)  # fmt: skip
    run = run_both(c)
    weight = holding_values(run, c, 3)[0] / run.equity[3]
    assert weight == pytest.approx(6000 / 11000)  # 54.5 %: inside the band
    assert run.traded[1:4].tolist() == [0.0] * 3
    assert run.traded[4] > 0  # 125: 6250 / 11250 = 55.6 %, outside: back to 50 %
    assert holding_values(run, c, 4)[0] / run.equity[4] == pytest.approx(0.5, rel=1e-12)


def test_signal_change_of_one_symbol_rebalances_all_tradable_symbols():
    # B joins at bar 2: A, held at 100 %, is trimmed to 50 % at the same fill
    price = np.tile([100.0, 25.0], (4, 1))
    price[2:, 0] = 110.0
    c = case(price, [[1, 0], [1, 0], [1, 1], [1, 1]], fill_on_close=True)
    run = run_both(c)
    np.testing.assert_allclose(holding_values(run, c, 2), [run.equity[2] / 2] * 2, rtol=1e-12)
    assert len(run.trades) == 2 and run.trades[0]["units"] == 100.0  # the trim belongs to it


# -- execution: order, funding, lots, shorts ------------------------------------------------------


def test_exits_fund_entries_on_the_same_bar():
    # symbol 1 holds everything; the signal moves to symbol 0 (first in symbol order)
    fee = 0.001
    price = np.tile([40.0, 20.0], (4, 1))
    price[2:, 1] = 22.0
    c = case(price, [[0, 1], [0, 1], [1, 0], [1, 0]], fee=fee, fill_on_close=True)
    run = run_both(c)
    exit_trade = run.trades[0]
    freed = cash_at(run, c, 1) + run.units[1, 1] * 22.0 - exit_trade["exit_fee"]
    assert fill_notional(run, 0) == pytest.approx(freed / (1 + fee), rel=1e-12)  # not scaled


def test_reductions_fund_increases_on_the_same_bar():
    # A and B at 1/2 each; C (symbol 0) joins: A and B are sold down to 1/3 first
    fee = 0.001
    price = np.tile([10.0, 20.0, 40.0], (4, 1))
    c = case(price, [[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]], fee=fee, fill_on_close=True)
    run = run_both(c)
    equity_before = run.equity[1]
    assert fill_notional(run, 0) == pytest.approx(equity_before / 3 / (1 + fee), rel=1e-12)


def test_unfundable_order_is_scaled_down_and_cash_stays_within_leverage():
    # A is held at 80 % and has no bar when B enters: B wants 38 %, only 20 % is left
    price = np.tile([50.0, 20.0], (4, 1))
    price[2, 0] = NAN
    c = case(price, [[1, 0], [1, 0], [1, 1], [1, 1]], weighting="fixed", fixed=[0.8, 0.5],
             fill_on_close=True)  # fmt: skip
    run = run_both(c)
    assert holding_values(run, c, 1)[0] == pytest.approx(0.8 * CASH)
    assert fill_notional(run, 1) == pytest.approx(0.2 * CASH, rel=1e-12)  # scaled, not refused
    for t in range(4):
        assert cash_at(run, c, t) >= -1e-9 * CASH  # max_leverage 1: no borrowing
    run = run_both({**c, "max_leverage": 1.5, "fixed": np.array([1.2, 0.8])})
    assert fill_notional(run, 1) == pytest.approx(0.3 * CASH, rel=1e-12)  # 1.5 - 1.2
    for t in range(4):
        assert cash_at(run, c, t) >= -0.5 * run.equity[t] - 1e-9 * CASH


def test_lots_round_target_units_down():
    fee = 0.001
    c = case(np.c_[[33.7, 33.7, 35.0]], np.ones((3, 1)), lot=1.0, fee=fee, fill_on_close=True)
    run = run_both(c)
    want = math.floor(CASH / (1 + fee) / 33.7)  # 296
    np.testing.assert_array_equal(run.units[:, 0], want)  # whole lots, exactly
    assert cash_at(run, c, 0) == pytest.approx(CASH - want * 33.7 * (1 + fee))
    c10 = case(np.c_[[33.7, 33.7]], np.ones((2, 1)), lot=10.0, fill_on_close=True)
    np.testing.assert_allclose(run_both(c10).units[:, 0], 290.0, rtol=1e-12)


def test_short_proceeds_are_credited_to_cash_and_gross_exposure_is_limited():
    fee = 0.001
    price = np.tile([20.0, 50.0], (4, 1))
    c = case(price, -np.ones((4, 2)), weighting="fixed", fixed=1.0, max_leverage=1.5, fee=fee,
             fill_on_close=True)  # fmt: skip
    run = run_both(c)
    notional = 0.75 * CASH / (1 + fee)  # each weight -1 scaled to -0.75
    np.testing.assert_allclose(holding_values(run, c, 0), [-notional] * 2, rtol=1e-12)
    assert cash_at(run, c, 0) == pytest.approx(CASH + 2 * (notional - fee * notional))
    # no borrow fee or margin interest: at unchanged prices equity does not move
    assert run.equity[1:].tolist() == [run.equity[0]] * 3


def test_adds_and_trims_belong_to_one_trade():
    # one long holding, rebalanced to 50 % at every bar while its price moves
    price = [100.0, 80.0, 125.0, 100.0]
    c = case(np.c_[price], np.ones((4, 1)), size=0.5, scheduled=True, rebalance_at=np.ones(4),
             fill_on_close=True)  # fmt: skip
    run = run_both(c)
    (trade,) = run.trades
    assert trade["is_open"] and trade["entry_bar"] == 0 and trade["exit_bar"] == 3
    assert trade["units"] > run.units[0, 0]  # the add at 80 belongs to the trade
    assert trade["net_pnl"] == pytest.approx(run.equity[-1] - CASH, rel=1e-12)


def test_close_fills_trade_the_decision_bar_and_next_open_the_bar_after():
    open_ = np.c_[[10.0, 11.0, 12.0, 13.0]]
    close = np.c_[[10.5, 11.5, 12.5, 13.5]]
    target = [[0], [1], [1], [1]]
    on_close = run_both(case(open_, target, close=close, fill_on_close=True)).trades[0]
    next_open = run_both(case(open_, target, close=close)).trades[0]
    assert (on_close["entry_bar"], on_close["entry_price"]) == (1, 11.5)
    assert (next_open["entry_bar"], next_open["entry_price"]) == (2, 12.0)


# -- rounding: no dust orders, whole lots, one target for the band and the order -----------------


def test_exhausted_buying_power_opens_no_dust_trade():
    # A is all-in; at bar 2 it has no bar and B turns long: there is no buying power left, so
    # B must not trade (the power left is a rounding residue: an order of at most DUST x E).
    price = np.array([[53.15, 96.27], [53.15, 96.27], [NAN, 96.27]])
    run = run_kernel(case(price, [[1, 0], [1, 1], [1, 1]], fee=0.0012))
    assert [tr["symbol"] for tr in run.trades] == [0]


def test_rebalance_at_unchanged_prices_makes_no_dust_orders():
    # zero costs, unchanged prices, daily schedule: after the first bar the holdings are their
    # targets up to rounding, so nothing trades
    price = np.tile([37.6, 96.52], (3, 1))
    c = case(price, np.ones((3, 2)), size=0.9, scheduled=True, rebalance_at=np.ones(3),
             fill_on_close=True, initial_cash=7777.0)  # fmt: skip
    assert run_kernel(c).traded[1:].tolist() == [0.0, 0.0]


def test_lot_units_are_exactly_whole():
    c = case(np.c_[[10.04, 10.04]], np.ones((2, 1)), lot=1.0, fill_on_close=True)
    assert run_kernel(c).units[0, 0] == 996.0  # not (996 x fill) / fill


def test_a_fully_invested_holding_is_trimmed_or_not_whatever_the_rounding():
    # All-in at 50, rebalanced at 55 on a daily schedule: the holding exceeds its target
    # |w| x E / (1 + commission) at the fill by the commission reserve, so it is trimmed
    # (band 0), whatever rounding residue the entry left in cash (exactly 0 with a 0.1 %
    # commission, -1.8e-12 with 0.05 %).
    trimmed = []
    for fee in (0.001, 0.0005):
        c = case(np.c_[[50.0, 55.0]], np.ones((2, 1)), fee=fee, scheduled=True,
                 rebalance_at=np.ones(2), fill_on_close=True)  # fmt: skip
        trimmed.append(run_kernel(c).traded[1] > 0)
    assert trimmed[0] == trimmed[1]


def test_traded_notional_counts_a_delisting_close_on_a_rebalance_bar():
    # A (last bar 2) is closed at bar 3 for 10,000; B enters at bar 3 for 10,000
    price = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0], [NAN, 20.0]])
    c = case(price, [[1, 0], [1, 0], [1, 1], [0, 1]], last=[2, 3])
    assert run_twin(c).traded[3] == 20_000.0
    assert run_kernel(c).traded[3] == 20_000.0


# -- the grid kernel: row j is combination j's portfolio backtest ---------------------------------


def _grid_universe(seed: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """3 symbols x 120 bars: B listed late, C delisted early, missing bars in all three."""
    rng = np.random.default_rng(seed)
    n_bars, n_symbols = 120, 3
    first, last = np.array([0, 25, 0]), np.array([119, 119, 90])
    close = np.full((n_bars, n_symbols), NAN)
    open_ = np.full((n_bars, n_symbols), NAN)
    own_bars = []
    for s in range(n_symbols):
        path = rng.uniform(20, 80) * np.exp(np.cumsum(rng.normal(0, 0.02, n_bars)))
        bars = np.arange(first[s], last[s] + 1)
        inside = bars[1:-1]
        bars = np.sort(np.r_[bars[0], inside[rng.random(len(inside)) > 0.1], bars[-1]])
        close[bars, s] = path[bars]
        open_[bars, s] = path[bars] * np.exp(rng.normal(0, 0.005, len(bars)))
        own_bars.append(bars)
    c = case(open_, np.zeros((n_bars, n_symbols)), close=close, first=first, last=last,
             fee=[0.001, 0.0005, 0.002], slip=0.0005)  # fmt: skip
    return c, own_bars


def _expanded(own_side: np.ndarray, bars: np.ndarray, n_bars: int) -> np.ndarray:
    """A symbol's sides on the union bars: each holds until its next own bar; 0 unlisted."""
    out = np.zeros(n_bars, np.int8)
    for k, bar in enumerate(bars):
        stop = bars[k + 1] if k + 1 < len(bars) else bar + 1
        out[bar:stop] = own_side[k]
    return out


@pytest.mark.parametrize(
    "rules", [{}, {"weighting": "fixed", "fixed": np.array([0.6, 0.5, 0.4]), "band": 0.05,
                   "max_leverage": 1.2, "fill_on_close": True}],
    ids=["equal", "fixed-band-close"],
)  # fmt: skip
def test_grid_rows_equal_portfolio_backtests_bit_for_bit(rules):
    c, own_bars = _grid_universe(seed=3)
    c = {**c, **rules}
    n_bars, n_symbols = c["close"].shape
    space = build_space(BUILTIN["sma_cross"], {"fast": "3:9:3", "slow": "10:30:10"})
    distinct, slot_ids = space_indicators(space)
    tables, rows_of = [], []
    for s in range(n_symbols):
        bars = own_bars[s]
        columns = {name: np.ascontiguousarray(c[name][bars, s]) for name in ("open", "close")}
        table, rows = indicator_table(columns, distinct)
        tables.append(np.ascontiguousarray(table))
        rows_of.append([rows[indicator] for indicator in distinct])
    assert rows_of[0] == rows_of[1] == rows_of[2]  # the same rows in every symbol's table
    slots = np.array(rows_of[0], np.int64)[slot_ids]
    sizes = [t.size for t in tables]
    symbol_tables = SymbolTables(
        values=np.concatenate([t.ravel() for t in tables]),
        table_at=np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64),
        n_rows=tables[0].shape[0],
        bar_of=np.concatenate(own_bars).astype(np.int64),
        bars_at=np.r_[0, np.cumsum([len(bars) for bars in own_bars])].astype(np.int64),
    )  # fmt: skip
    windows = np.array([[0, n_bars], [30, 100], [95, n_bars]], np.int64)
    plan = GridPlan(code=0, direction=0, n_blocks=3, windows=windows,
                    signal_of=np.zeros(0, np.int64))  # fmt: skip
    got = portfolio_grid_builtin_nb(
        universe_of(c), symbol_tables, slots, space.combos, plan, rules_of(c), PPY,
        np.empty(0, PORTFOLIO_TRADE_DTYPE),
    )  # fmt: skip

    books = scratch(n_symbols)
    traded_any = False
    for j in range(len(space)):
        target = np.zeros((n_bars, n_symbols), np.int8)
        for s in range(n_symbols):
            side = np.empty(len(own_bars[s]), np.int8)
            cross_signal_nb(tables[s], slots[j], space.combos[j], side)
            restrict_direction_nb(side, 0, side)
            target[:, s] = _expanded(side, own_bars[s], n_bars)
        for w, (a, b) in enumerate(windows):
            out = metrics_only(n_symbols)
            portfolio_nb(universe_of(c), target, rules_of(c), a, b, PPY, books, out)
            want = out.metrics
            np.testing.assert_array_equal(got[j, w], want)
            traded_any |= want[METRIC_NAMES.index("n_trades")] > 0
        # and the twin agrees with the kernel on this combination's targets
        with_target = {**c, "target": target}
        assert_same_run(run_kernel(with_target), run_twin(with_target), with_target)
    assert traded_any
