"""Holding periods settled in O(1): an account that does not trade between two bars.

Between two trades an account's equity is `cash + units x close`, so nothing but the close
moves it. A long position opened with all the cash (`size=1`: notional plus commission is the
equity, so `cash` is 0 up to rounding) has per-bar returns close_t / close_(t-1) - 1 whatever
its size, and their sum, sum of squares and downside sum of squares over any run of bars are
differences of compensated prefix sums built once per bar series (`close_tables_nb`). The
running peak and the worst drawdown need the run's highest and lowest close and its own
deepest drawdown (least close_j / close_i, i <= j): sparse tables answer all three in O(1).

So a combination's metrics cost its signal scan plus O(1) per trade (`hold_returns_nb`),
instead of an account step per bar. Conventions and error bounds:

- Trades and everything measured on them (n_trades, win rate, profit factor, averages, gross
  profit and loss), the final equity (total return, CAGR) and exposure use the per-bar
  account's arithmetic on the bars where it trades, so they are bit for bit those of
  `ivybt.kernels.simulate.simulate_nb` followed by `ivybt.kernels.metrics.metrics_nb`.
- The return sums (volatility, Sharpe, Sortino) are added in another order: per holding
  period as a difference of prefix sums, where the per-bar account adds bar by bar; and each
  return is close_t / close_(t-1) - 1 instead of equity_t / equity_(t-1) - 1, which differ by
  |cash| / (units x close) relative, <= `CASH_TOLERANCE` (a position that leaves more cash, a
  short, or `size` != 1 is walked bar by bar, exactly as the per-bar account). The prefix
  sums are compensated (a high and a low part), so a run's sum is accurate to a few eps of
  itself, not of the whole series' sum: a run of tiny returns after large ones keeps them.
- The worst drawdown inside a run is the least of close_j / close_i instead of
  equity_j / equity_i over the same bars, and its lowest value over the peak: a few ulp apart.
  The peak itself is the per-bar account's, bit for bit (the highest close's equity).
- Each return is then within a few eps (absolute) of the per-bar account's, so Sharpe and
  Sortino move by at most ~1e-15 x sqrt(periods_per_year) / std(returns): on W1 (SPY 1d,
  EURUSD 1h) every metric is within 9e-13 relative and 4.1e-14 absolute of the per-bar
  account's. Tests (tests/test_holding.py) bound them to 1e-12 relative plus that absolute
  floor on random bars: only prices that barely move (returns ~1e-13, whose Sharpe is
  rounding noise in both) get a loose floor. The grid and a single backtest both compute
  their metrics here, so they stay equal bit for bit.
- Closes must be finite and > 0 for the tables (`CloseTables`' usable); otherwise every
  holding period is walked bar by bar, which is the per-bar account exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Float64Array2D, Float64Array3D, Int8Array1D
from ivybt.kernels.metrics import ReturnState, return_step_nb
from ivybt.kernels.signals import CHUNK

CASH_TOLERANCE = 1e-13
"""Largest |cash| / (units x close at entry) a long position may leave for its returns to be
taken from the close alone (all-in leaves ~1e-16 of rounding)."""

CloseTables = tuple[Float64Array2D, Float64Array3D, Int8Array1D, bool]
"""What `hold_returns_nb` needs of one close series, built once by `close_tables_nb`: a plain
tuple (a NamedTuple does not survive Numba's parallel-loop lowering):

0. sums : float64, shape (n_bars, 8): row t holds the compensated prefix sums (high and low
   parts, `two_sum_nb`) over bars 1..t of r, r^2 and min(r, 0)^2, r_t = close_t /
   close_(t-1) - 1 (row 0 is 0; columns 6-7 pad a row to one 64-byte cache line).
1. sparse : float64, shape (n_levels, n_bars, 4): sparse tables; [k, i] covers the bars
   [i, i + 2^k): its highest close, its lowest close, and its least close_j / close_i over
   i <= j (1 + its deepest drawdown), answered for any run by `range_stats_nb` from four
   such rows (and padded like `sums`).
2. levels : int8, shape (n_bars + 1,): floor(log2(m)) for m >= 1.
3. usable : every close is finite and > 0 (else `hold_returns_nb` walks bar by bar).
"""

USABLE = 3
"""The index of `usable` in `CloseTables`."""


@njit(cache=True)
def two_sum_nb(high: float, low: float, value: float) -> tuple[float, float]:
    """(high, low) + value as a compensated sum: the new high part and the low part that
    carries what rounding the high part lost (Knuth's TwoSum), so a difference of two such
    prefix sums is accurate to its own size, not the prefix's."""
    total = high + value
    back = total - high
    lost = (high - (total - back)) + (value - back)
    return total, low + lost


@njit(cache=True)
def prefix_differences_nb(sums: Float64Array2D, a: int, b: int) -> tuple[float, float, float]:
    """The sums of r, r^2 and min(r, 0)^2 over bars [a, b) (a >= 1): high parts, then low."""
    row_b = sums[b - 1]
    row_a = sums[a - 1]
    return (
        (row_b[0] - row_a[0]) + (row_b[1] - row_a[1]),
        (row_b[2] - row_a[2]) + (row_b[3] - row_a[3]),
        (row_b[4] - row_a[4]) + (row_b[5] - row_a[5]),
    )


@njit(cache=True)
def close_tables_nb(close: Float64Array1D) -> CloseTables:
    """The prefix sums and sparse tables of `close` (`CloseTables`), in O(n log n).

    Every entry at bar t depends on bars <= t only (prefix sums run forward; a sparse-table
    entry covers [i, i + 2^k)), so a series cut short gives the same values on its bars.
    """
    n = close.shape[0]
    usable = n > 0
    for t in range(n):
        if not (close[t] > 0.0 and close[t] < np.inf):
            usable = False
    n_levels = 1
    while (1 << n_levels) <= n:
        n_levels += 1
    levels = np.zeros(n + 1, dtype=np.int8)
    for m in range(2, n + 1):
        levels[m] = levels[m >> 1] + 1
    sums = np.zeros((max(n, 1), 8), dtype=np.float64)
    sparse = np.zeros((n_levels if usable else 0, n, 4), dtype=np.float64)
    if not usable:
        return sums, sparse, levels, False
    for t in range(1, n):
        ret = close[t] / close[t - 1] - 1.0
        loss = min(ret, 0.0)
        sums[t, 0], sums[t, 1] = two_sum_nb(sums[t - 1, 0], sums[t - 1, 1], ret)
        sums[t, 2], sums[t, 3] = two_sum_nb(sums[t - 1, 2], sums[t - 1, 3], ret * ret)
        sums[t, 4], sums[t, 5] = two_sum_nb(sums[t - 1, 4], sums[t - 1, 5], loss * loss)
    for i in range(n):
        sparse[0, i, 0] = close[i]
        sparse[0, i, 1] = close[i]
        sparse[0, i, 2] = 1.0
    for k in range(1, n_levels):
        half = 1 << (k - 1)
        below = sparse[k - 1]
        for i in range(n - (1 << k) + 1):
            j = i + half
            sparse[k, i, 0] = max(below[i, 0], below[j, 0])
            sparse[k, i, 1] = min(below[i, 1], below[j, 1])
            sparse[k, i, 2] = min(below[i, 2], below[j, 2], below[j, 1] / below[i, 0])
    return sums, sparse, levels, True


@njit(cache=True)
def range_high_low_nb(
    sparse: Float64Array3D, levels: Int8Array1D, a: int, b: int
) -> tuple[float, float]:
    """(highest, lowest) close of the bars [a, b), b > a, in O(1): two overlapping entries."""
    k = levels[b - a]
    right = b - (1 << k)
    return max(sparse[k, a, 0], sparse[k, right, 0]), min(sparse[k, a, 1], sparse[k, right, 1])


@njit(cache=True)
def range_halves_nb(
    sparse: Float64Array3D, levels: Int8Array1D, a: int, b: int
) -> tuple[float, float, float]:
    """(highest close, lowest close, the lesser least ratio of the two overlapping entries
    A = [a, a + 2^k) and B = [b - 2^k, b)) of the bars [a, b), b > a, in O(1)."""
    k = levels[b - a]
    right = b - (1 << k)
    high = max(sparse[k, a, 0], sparse[k, right, 0])
    low = min(sparse[k, a, 1], sparse[k, right, 1])
    return high, low, min(sparse[k, a, 2], sparse[k, right, 2])


@njit(cache=True)
def range_cross_nb(sparse: Float64Array3D, levels: Int8Array1D, a: int, b: int) -> float:
    """The least close_j / close_i of the bars [a, b) with i before B and j after A (see
    `range_halves_nb`): the lowest close of [a + 2^k, b) over the highest of [a, b - 2^k);
    1.0 when A and B are the same entry."""
    width = 1 << levels[b - a]
    if b - width <= a:
        return 1.0
    high_first, _ = range_high_low_nb(sparse, levels, a, b - width)
    _, low_last = range_high_low_nb(sparse, levels, a + width, b)
    return low_last / high_first


@njit(cache=True)
def range_stats_nb(
    sparse: Float64Array3D, levels: Int8Array1D, a: int, b: int
) -> tuple[float, float, float]:
    """(highest close, lowest close, least close_j / close_i with a <= i <= j < b) of the bars
    [a, b), b > a, in O(1): a pair i <= j lies in A, in B, or has i before B and j after A
    (`range_halves_nb`, `range_cross_nb`)."""
    high, low, ratio = range_halves_nb(sparse, levels, a, b)
    return high, low, min(ratio, range_cross_nb(sparse, levels, a, b))


@njit(cache=True, inline="always")
def hold_returns_nb(
    returns: ReturnState, close: Float64Array1D, a: int, b: int, cash: float, units: float,
    tables: CloseTables,
) -> ReturnState:  # fmt: skip
    """The return accumulators after bars [a, b) (a >= 1) held with `units` and `cash`.

    A long position with |cash| <= `CASH_TOLERANCE` x its value on bar a - 1 is settled from
    the prefix sums and the sparse tables (see the module's bounds); anything else, or closes
    the tables cannot use, is walked bar by bar with `return_step_nb`.
    """
    if b <= a:
        return returns
    fast = tables[USABLE] and units > 0.0 and abs(cash) <= CASH_TOLERANCE * units * close[a - 1]
    if not fast:
        for t in range(a, b):
            returns = return_step_nb(returns, cash + units * close[t])
        return returns
    _, total, squares, downside, peak, worst = returns
    sums = tables[0]
    run_total, run_squares, run_downside = prefix_differences_nb(sums, a, b)
    total += run_total
    squares += run_squares
    downside += run_downside
    # bar t's drawdown is value_t / max(peak, the run's highest value up to t) - 1, so the
    # run's deepest is the lower of its lowest value over the peak and its own deepest
    # (`range_stats_nb`, whose pairs across its two halves are read only when the bound
    # low / high could still go below the worst: it rarely can, and the result is the same)
    high, low, halves = range_halves_nb(tables[1], tables[2], a, b)
    deepest = min((cash + units * low) / peak, halves) - 1.0
    if min(deepest, low / high - 1.0) < worst:  # the cross pairs are >= low / high
        deepest = min(deepest, range_cross_nb(tables[1], tables[2], a, b) - 1.0)
    worst = min(worst, deepest)
    peak = max(peak, cash + units * high)
    return cash + units * close[b - 1], total, squares, downside, peak, worst


@njit(cache=True)
def next_change_nb(values: Int8Array1D, start: int, stop: int, value: int) -> int:
    """The first index in [start, stop) where `values` differs from `value`, else `stop`."""
    reference = np.int8(value)
    i = start
    while i + CHUNK <= stop:
        differs = False
        for k in range(CHUNK):
            differs |= values[i + k] != reference
        if differs:
            break
        i += CHUNK
    while i < stop:
        if values[i] != reference:
            return i
        i += 1
    return stop


@njit(cache=True)
def next_trade_bar_nb(target: Int8Array1D, t: int, stop: int, lag: int, wanted: int) -> int:
    """The first bar in [t, stop) on which the side wanted, target[bar - lag] (lag 1 for
    next-open fills), differs from `wanted`; else `stop`."""
    return next_change_nb(target, t - lag, stop - lag, wanted) + lag
