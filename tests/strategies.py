"""Hypothesis strategies for the kernel property tests (STYLE 3).

Prices are finite random walks clipped to [1, 1e5] (log steps of at most 5 %, zero steps
included, so flat stretches occur). OHLC bars are consistent: low <= open, close <= high. NaN gaps
are injected separately by `with_leading_nans`, so the plain strategies stay finite.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ivybt._typing import Float64Array1D

PRICE_MIN = 1.0
PRICE_MAX = 1e5
MAX_LOG_STEP = 0.05
MAX_WICK = 0.03
MAX_BARS = 120
MAX_WINDOW = 40


class OHLC(NamedTuple):
    open: Float64Array1D
    high: Float64Array1D
    low: Float64Array1D
    close: Float64Array1D


def _steps(size: int, bound: float) -> st.SearchStrategy[Float64Array1D]:
    return arrays(np.float64, size, elements=st.floats(-bound, bound, allow_subnormal=False))


@st.composite
def price_arrays(draw: st.DrawFn, min_size: int = 0, max_size: int = MAX_BARS) -> Float64Array1D:
    """A random walk of finite prices in [PRICE_MIN, PRICE_MAX], float64, C-contiguous."""
    size = draw(st.integers(min_size, max_size))
    start = draw(st.floats(PRICE_MIN, PRICE_MAX))
    log_steps = draw(_steps(size, MAX_LOG_STEP))
    walk = start * np.exp(np.cumsum(log_steps))
    return np.clip(walk, PRICE_MIN, PRICE_MAX)


@st.composite
def ohlc_arrays(draw: st.DrawFn, min_size: int = 0, max_size: int = MAX_BARS) -> OHLC:
    """Consistent bars: open = previous close moved by a gap, wicks above and below."""
    close = draw(price_arrays(min_size, max_size))
    size = close.shape[0]
    gaps = draw(_steps(size, MAX_LOG_STEP / 5))
    previous = np.concatenate([close[:1], close[:-1]])
    open_ = np.clip(previous * np.exp(gaps), PRICE_MIN, PRICE_MAX)
    up = np.abs(draw(_steps(size, MAX_WICK)))
    down = np.abs(draw(_steps(size, MAX_WICK)))
    high = np.minimum(np.maximum(open_, close) * (1.0 + up), PRICE_MAX)
    low = np.maximum(np.minimum(open_, close) * (1.0 - down), PRICE_MIN)
    return OHLC(open_, high, low, close)


def window_lists(max_window: int = MAX_WINDOW) -> st.SearchStrategy[list[int]]:
    """1 to 6 look-back lengths in bars, duplicates allowed."""
    return st.lists(st.integers(1, max_window), min_size=1, max_size=6)


@st.composite
def macd_triples(draw: st.DrawFn) -> tuple[int, int, int]:
    """(fast, slow, signal) with 1 <= fast < slow."""
    fast = draw(st.integers(1, 15))
    slow = draw(st.integers(fast + 1, 30))
    signal = draw(st.integers(1, 12))
    return fast, slow, signal


def leading_nan_counts(max_count: int = 15) -> st.SearchStrategy[int]:
    return st.integers(0, max_count)


def with_leading_nans(bars: OHLC, count: int) -> OHLC:
    """The same bars with `count` all-NaN bars in front (a series that starts late)."""
    pad = np.full(count, np.nan)
    return OHLC(*(np.concatenate([pad, column]) for column in bars))
