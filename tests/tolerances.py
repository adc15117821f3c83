"""Named tolerances for the indicator tests (STYLE 3): no inline literals in assertions.

Each constant says what it covers and why it is as loose as it is. Observed maxima on the
bundled SPY 1d, BTCUSD 1d and EURUSD 1h series are quoted so a regression stands out.
"""

from __future__ import annotations

import math

# Kernel vs its tests/reference.py twin -------------------------------------------------------
RTOL_SUM = 1e-10
"""Moving sums and means: the kernel's compensated prefix sums vs the twin's plain loop sum."""

RTOL_RECURSIVE = 1e-12
"""EMA, RMA, ATR, RSI, MACD: twin and kernel use the same seed and update order; only the
association of a product may differ (seen: exactly equal)."""

RTOL_STD = 1e-9
"""Rolling std: corrected two-pass (kernel) vs plain two-pass (twin)."""

ATOL_STD = 1e-10
"""Absolute floor for rolling std: a flat window's mean is not always representable, so the
plain two-pass twin returns ~eps * price (up to ~2e-11 at 1e5) where the kernel's corrected
two-pass returns 0."""

RTOL_STD_EXACT = 1e-13
"""Rolling std vs the exact population std (statistics.pstdev on Fractions), relative."""

ULPS_SMA_EXACT = 4
"""SMA from the compensated prefix sum vs the exact window mean (math.fsum), in ulps."""

ATOL_PRICE = 1e-9
"""Absolute floor for lines that cross zero or start from a price difference (MACD, band
edges, RSI), for the property tests' prices in [1, 1e5]: ~1e-14 of the largest price."""

# Kernel vs TA-Lib ------------------------------------------------------------------------------
RTOL_TALIB = 1e-13
"""EMA, ATR, RSI, MACD, SMA vs TA-Lib: same seeds and update order; the TA-Lib wheel fuses a
multiply-add now and then (1 ulp on a few bars), and its SMA is a running add-subtract sum.
Seen: max |diff| 2.9e-11 on BTCUSD SMA (~3e-15 relative)."""

ATOL_TALIB_OSCILLATOR = 1e-11
"""RSI (0..100 scale) and MACD lines (which cross zero) vs TA-Lib. Seen: 1.1e-13 (RSI)."""

RTOL_TALIB_STD = 1e-11
"""STDDEV / BBANDS vs TA-Lib, relative to the price level: TA-Lib computes E[x**2] - E[x]**2 with
running sums and loses digits on high prices. Seen: 2.2e-9 absolute on BTCUSD (prices ~1e4,
i.e. ~2e-13 of the price)."""

# Kernel vs pandas-ta (talib=False) ---------------------------------------------------------------
RTOL_PANDAS_TA = 1e-12
"""pandas-ta's own code after mapping its convention onto ours: `ewm(adjust=False)` and numpy
`convolve` round differently from a serial loop. Seen: ~1e-14 relative."""

ATOL_PANDAS_TA_RANGE = 2.220446049250313e-16
"""pandas-ta `true_range` builds high - low with `non_zero_range`, which adds machine epsilon
(2.22e-16) to EVERY bar's high - low as soon as one bar has high == low (EURUSD does). The
shift is absolute, so TR and ATR comparisons allow exactly that much."""

RTOL_PANDAS_STD_VS_PRICE = 1e-7
"""pandas-ta `stdev`/`bbands` use pandas' online rolling variance, which drifts along a long
series: a flat two-bar EURUSD window gives 3.2e-8 instead of 0 (ours: 0, as the exact value).
So the tolerance is absolute, scaled by the largest price. Seen: 2.2e-8 of the price (EURUSD)."""

RTOL_BURN_IN = 1e-9
"""Where a convention cannot be mapped (pandas-ta's ATR/RSI/MACD/KC seeds), compare only after
the seed difference has decayed below this fraction: the burn-in is the number of bars after
which (1 - alpha) ** bars < RTOL_BURN_IN / 100."""

# Backtest vs the plain pandas/Python implementation ------------------------------------------
RTOL_BACKTEST = 1e-9
"""Total return, Sharpe and each metric of a whole backtest vs tests/test_backtest_reference.py:
the issue's bar. Seen: ~1e-14 relative (the same arithmetic, summed in another order)."""

# The event-driven account vs the per-bar account -------------------------------------------------
RTOL_EVENTS = 1e-12
"""Volatility, Sharpe, Sortino, max drawdown and Calmar of `target_metrics_nb` vs
`simulate_nb` + `metrics_nb`: the return sums are differences of prefix sums instead of a
bar-by-bar sum, each return taken on the close instead of the equity, and a run's deepest
drawdown as a close ratio (`ivybt.kernels.holding`). Seen: ~1e-15 on random bars and W1."""

ATOL_EVENTS = 1e-12
"""Absolute floor for the same metrics near 0 (a Sharpe of ~0 is a difference of sums of
order 1 whose rounding is ~1e-16 x the number of trades)."""

ATOL_BLOCK_SUMS = 1e-13
"""Absolute floor for PBO's block sums and sums of squares from the event account vs the
returns matrix's (a block's sum of a few hundred returns can be ~0; the prefix sums' rounding
is ~1e-16 x the trades in the block). Seen: 1.3e-15."""

RETURN_ERROR = 4e-15
"""Absolute error of one per-bar return of the event account (close_t / close_(t-1) - 1,
or a prefix-sum difference) against the per-bar account's equity ratio: a few eps, with the
variance's cancellation. A Sharpe or Sortino S then moves by at most ~RETURN_ERROR x
(sqrt(periods_per_year) + 2 |S|) / std(returns): negligible for returns that move (on W1,
seen ~1e-14 absolute), most of the value for prices that barely move (returns ~1e-13:
both twins then compute rounding noise). The real-bar tests use the strict floor alone."""


def same_metric(a: float, b: float) -> bool:
    """A single-symbol account's metric (the event account, `ivybt.kernels.holding`) against a
    one-symbol universe's (the per-bar portfolio account): equal, both NaN, or within
    `RTOL_EVENTS` relative / `ATOL_EVENTS` absolute."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    return abs(a - b) <= ATOL_EVENTS + RTOL_EVENTS * abs(b)


def same_metrics(a: dict, b: dict) -> bool:
    """`same_metric` for every key of two metrics dicts (the same keys)."""
    return a.keys() == b.keys() and all(same_metric(a[key], b[key]) for key in a)
