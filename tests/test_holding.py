"""The event-driven account (`ivybt.kernels.holding`, `target_metrics_nb`) against its slow twin,
the per-bar simulation then `metrics_nb`, and its pieces against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivybt.kernels.evaluate import target_metrics_nb
from ivybt.kernels.holding import close_tables_nb, next_change_nb, range_stats_nb
from ivybt.kernels.metrics import METRIC_NAMES, N_METRICS, metrics_nb
from ivybt.kernels.signals import next_cross_nb, strict_sign_nb
from ivybt.kernels.simulate import TRADE_DTYPE, Execution, count_entries_nb, simulate_nb
from tests.strategies import ohlc_arrays, price_arrays
from tests.tolerances import ATOL_EVENTS, RETURN_ERROR, RTOL_EVENTS

EXACT = ("total_return", "cagr", "n_trades", "win_rate", "profit_factor", "avg_win",
         "avg_loss", "exposure", "gross_profit", "gross_loss")  # fmt: skip
"""Metrics settled on the bars where the account trades: bit for bit the per-bar account's."""


def per_bar_metrics(open_, close, target, window, execution, *, spread=None):
    """The slow twin: `simulate_nb` bar by bar on the window, then `metrics_nb` (and, into
    `spread` when given, the std of its per-bar returns)."""
    a, b = window
    equity = np.empty(b - a)
    units = np.empty(b - a)
    traded = np.ascontiguousarray(target[a:b])
    trades = np.empty(count_entries_nb(traded), dtype=TRADE_DTYPE)
    n_trades = simulate_nb(open_[a:b].copy(), close[a:b].copy(), traded, execution, equity,
                           units, trades)  # fmt: skip
    if spread is not None:
        returns = equity / np.r_[execution.initial_cash, equity[:-1]] - 1.0
        spread.append(np.std(returns))
        spread.append(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    return metrics_nb(equity, units, trades, n_trades, execution.initial_cash, 252.0)


def event_metrics(open_, close, target, window, execution):
    prices = np.ascontiguousarray(np.vstack((open_, close)))
    out = np.full(N_METRICS, np.nan)
    target_metrics_nb(prices, target, np.array(window, dtype=np.int64), execution,
                      close_tables_nb(prices[1]), 252.0, out)  # fmt: skip
    return out


def assert_twins(got, want, spread=(1.0, 1.0)):
    """Exact where `EXACT` says; else to `RTOL_EVENTS`, with an absolute floor of
    `ATOL_EVENTS` plus what `RETURN_ERROR` per return can move a ratio S of returns whose
    std (Sharpe) or downside deviation (Sortino) is `spread`: dS = sqrt(p) dmean / std +
    S dstd / std, and a Calmar C over a max drawdown D by C x error / D (a Sharpe of returns
    that barely move, a Calmar over a rounding-size drawdown, are noise in both twins)."""
    for k, name in enumerate(METRIC_NAMES):
        if name in EXACT:
            np.testing.assert_array_equal(got[k], want[k], err_msg=name)
        else:
            ratio = abs(want[k]) if np.isfinite(want[k]) else 0.0
            scale = {"sharpe": spread[0], "sortino": spread[1]}.get(name)
            moved = 0.0 if scale is None else RETURN_ERROR * (np.sqrt(252.0) + 2.0 * ratio)
            atol = ATOL_EVENTS + moved / max(scale or 1.0, 1e-300)
            if name == "calmar":  # over a drawdown of rounding size, Calmar is noise too
                deepest = abs(want[METRIC_NAMES.index("max_drawdown")])
                atol += ratio * RETURN_ERROR / max(deepest, 1e-300)
            np.testing.assert_allclose(got[k], want[k], rtol=RTOL_EVENTS, atol=atol,
                                       err_msg=name)  # fmt: skip


@st.composite
def accounts(draw: st.DrawFn):
    """Random bars, a target that changes every few bars, a window and an execution."""
    bars = draw(ohlc_arrays(min_size=3, max_size=160))
    n = bars.close.shape[0]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sides = draw(st.sampled_from([(-1, 0, 1), (0, 1), (-1, 0), (1,), (-1, 1)]))
    hold = draw(st.integers(1, 25))
    target = np.repeat(rng.choice(sides, size=n // hold + 1), hold)[:n].astype(np.int8)
    a = draw(st.integers(0, n - 2))
    b = draw(st.integers(a + 2, n))
    execution = Execution(
        draw(st.sampled_from([0.0, 0.001, 0.01])),
        draw(st.sampled_from([0.0, 0.0005])),
        draw(st.sampled_from([1.0, 1.0, 0.5, 2.0])),
        draw(st.booleans()),
        10_000.0,
    )
    return bars, target, (a, b), execution


@settings(max_examples=300, deadline=None)
@given(account=accounts())
def test_event_account_equals_the_per_bar_account(account):
    bars, target, window, execution = account
    spread = []
    got = event_metrics(bars.open, bars.close, target, window, execution)
    want = per_bar_metrics(bars.open, bars.close, target, window, execution, spread=spread)
    assert_twins(got, want, spread)


def test_event_account_on_real_bars_equals_the_per_bar_account(spy_columns):
    """SPY daily, long trades held for hundreds of bars (the prefix sums' longest runs)."""
    open_ = spy_columns["open"]
    close = spy_columns["close"]
    rng = np.random.default_rng(5)
    for hold in (1, 7, 60, 400):
        target = np.repeat(rng.choice([0, 1], size=len(close) // hold + 1), hold)[: len(close)]
        for on_close in (True, False):
            execution = Execution(0.001, 0.0005, 1.0, on_close, 10_000.0)
            window = (300, len(close))
            assert_twins(
                event_metrics(open_, close, target.astype(np.int8), window, execution),
                per_bar_metrics(open_, close, target.astype(np.int8), window, execution),
            )


@given(bars=ohlc_arrays(min_size=3, max_size=80), seed=st.integers(0, 2**32 - 1))
def test_closes_the_tables_cannot_use_are_walked_bar_by_bar_exactly(bars, seed):
    close = bars.close.copy()
    close[np.random.default_rng(seed).integers(0, len(close))] = np.nan
    target = np.random.default_rng(seed).choice([-1, 0, 1], size=len(close)).astype(np.int8)
    execution = Execution(0.001, 0.0, 1.0, False, 10_000.0)
    assert not close_tables_nb(close)[-1]
    window = (0, len(close))
    got = event_metrics(bars.open, close, target, window, execution)
    np.testing.assert_array_equal(got, per_bar_metrics(bars.open, close, target, window,
                                                       execution))  # fmt: skip


@given(close=price_arrays(min_size=1, max_size=200), data=st.data())
def test_range_stats_equal_brute_force(close, data):
    a = data.draw(st.integers(0, len(close) - 1))
    b = data.draw(st.integers(a + 1, len(close)))
    _, sparse, levels, usable = close_tables_nb(close)
    assert usable
    high, low, ratio = range_stats_nb(sparse, levels, a, b)
    run = close[a:b]
    assert high == run.max() and low == run.min()
    least = min(run[j] / run[: j + 1].max() for j in range(len(run)))
    np.testing.assert_allclose(ratio, least, rtol=1e-15)


@given(close=price_arrays(min_size=2, max_size=200))
def test_prefix_sums_equal_the_plain_sums(close):
    sums = close_tables_nb(close)[0]
    sums = [sums[:, 2 * k] + sums[:, 2 * k + 1] for k in range(3)]
    returns = close[1:] / close[:-1] - 1.0
    np.testing.assert_allclose(sums[0][-1], math.fsum(returns), rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(sums[1][-1], math.fsum(returns**2), rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(sums[2][-1], math.fsum(np.minimum(returns, 0) ** 2), rtol=1e-15,
                               atol=1e-14)  # fmt: skip


@given(values=st.lists(st.sampled_from([-1, 0, 1]), min_size=0, max_size=100), data=st.data())
def test_next_change_is_the_first_different_value(values, data):
    array = np.array(values, dtype=np.int8)
    start = data.draw(st.integers(0, len(values)))
    value = data.draw(st.sampled_from([-1, 0, 1]))
    want = next((i for i in range(start, len(values)) if values[i] != value), len(values))
    assert next_change_nb(array, start, len(values), value) == want


@given(
    line=st.lists(st.sampled_from([1.0, 2.0, 3.0, np.nan]), min_size=0, max_size=100),
    data=st.data(),
)
def test_next_cross_is_the_first_moving_sign(line, data):
    line = np.array(line)
    base = np.full(len(line), 2.0)
    start = data.draw(st.integers(0, len(line)))
    last = data.draw(st.sampled_from([-1, 0, 1]))
    signs = [strict_sign_nb(x - 2.0) for x in line]
    want = next((t for t in range(start, len(line)) if signs[t] not in (0, last)), len(line))
    assert next_cross_nb(line, base, start, len(line), last) == want


@pytest.mark.parametrize("hold", [3, 50])
def test_sizes_other_than_all_in_and_shorts_are_walked_like_the_per_bar_account(spy_columns, hold):
    """Positions whose returns are not the close's (cash left over, shorts) take the per-bar
    path inside the event account: every metric but the return sums bit for bit."""
    close = spy_columns["close"][:800]
    open_ = spy_columns["open"][:800]
    target = np.tile(np.repeat(np.array([1, -1, 0], np.int8), hold), 800 // (3 * hold) + 1)
    target = target[:800].copy()
    for size in (0.5, 1.0):
        execution = Execution(0.001, 0.0005, size, False, 10_000.0)
        assert_twins(event_metrics(open_, close, target, (0, 800), execution),
                     per_bar_metrics(open_, close, target, (0, 800), execution))  # fmt: skip
