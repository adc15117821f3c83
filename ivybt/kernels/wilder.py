"""Welles Wilder's price indicators: true range, average true range (ATR) and RSI.

Same conventions as `ivybt.kernels.indicators` (TA-Lib's defaults; inputs never mutated, outputs
allocated once, bars <= t only, warm-up cells NaN, `*_table_nb` rows bit for bit equal to their
`*_1d_nb` twins). ATR smooths the true range with Wilder's RMA from `ivybt.kernels.indicators`;
RSI smooths gains and losses the same way. A NaN bar is skipped by the recursion, as described in
`ivybt.kernels.indicators`. Reference twins: `tests/reference.py`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D
from ivybt.kernels.indicators import _rma_into_nb

# -- True range and ATR ---------------------------------------------------------------------------


@njit(cache=True)
def true_range_nb(
    high: Float64Array1D, low: Float64Array1D, close: Float64Array1D
) -> Float64Array1D:
    """True range of each bar (TA-Lib `TRANGE` convention).

    Parameters
    ----------
    high, low, close : float64, shape (n_bars,)
        Bar high, low and close in quote currency, oldest first, same length.

    Returns
    -------
    out : float64, shape (n_bars,)
        `out[0]` is NaN (no previous close); `out[t] = max(high[t] - low[t],
        |high[t] - close[t-1]|, |low[t] - close[t-1]|)` in price units, using bars t-1 and t.
        NaN when any of `high[t]`, `low[t]`, `close[t-1]` is NaN.

    Notes
    -----
    Reference: tests/reference.py::true_range.
    """
    n_bars = close.shape[0]
    out = np.full(n_bars, np.nan, dtype=np.float64)
    for t in range(1, n_bars):
        prev_close = close[t - 1]
        bar_range = high[t] - low[t]
        up_gap = abs(high[t] - prev_close)
        down_gap = abs(low[t] - prev_close)
        if math.isnan(bar_range) or math.isnan(up_gap) or math.isnan(down_gap):
            continue
        out[t] = max(bar_range, up_gap, down_gap)
    return out


@njit(cache=True, parallel=True)
def atr_table_nb(
    high: Float64Array1D, low: Float64Array1D, close: Float64Array1D, windows: Int64Array1D
) -> Float64Array2D:
    """Average true range for every window: Wilder's RMA of the true range (TA-Lib `ATR`).

    Parameters
    ----------
    high, low, close : float64, shape (n_bars,)
        Bar high, low and close in quote currency, oldest first, same length.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        In price units. Seed: `mean(TR[1 .. n])`, written at bar n (TR[0] is NaN); then
        `atr[t] = (atr[t-1] * (n - 1) + TR[t]) / n`, bars <= t only. Warm-up cells (t < n) are
        NaN; NaN true ranges are skipped as in `rma_table_nb`.

    Notes
    -----
    Matches TA-Lib `ATR` to rounding on gap-free data. The true range is computed once and
    shared by all rows. Reference: tests/reference.py::atr_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, close.shape[0]), np.nan, dtype=np.float64)
    ranges = true_range_nb(high, low, close)
    for j in prange(n_windows):
        _rma_into_nb(ranges, windows[j], out[j])
    return out


@njit(cache=True)
def atr_1d_nb(
    high: Float64Array1D, low: Float64Array1D, close: Float64Array1D, window: int
) -> Float64Array1D:
    """Average true range over `window` bars: one row of `atr_table_nb`, same rules.

    Parameters
    ----------
    high, low, close : float64, shape (n_bars,)
        Bar high, low and close in quote currency, oldest first, same length.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `atr_table_nb(..., [window])[0]`. Reference: tests/reference.py::atr_1d.
    """
    out = np.full(close.shape[0], np.nan, dtype=np.float64)
    ranges = true_range_nb(high, low, close)
    _rma_into_nb(ranges, window, out)
    return out


# -- RSI ------------------------------------------------------------------------------------------


@njit(cache=True)
def _rsi_value_nb(avg_gain: float, avg_loss: float) -> float:
    """100 * gain / (gain + loss), and 0.0 when both are 0 (TA-Lib's flat-market value)."""
    total = avg_gain + avg_loss
    if total == 0.0:
        return 0.0
    return 100.0 * (avg_gain / total)


@njit(cache=True)
def _rsi_into_nb(close: Float64Array1D, window: int, out_row: Float64Array1D) -> None:
    """Wilder RSI into `out_row` (pre-filled with NaN), TA-Lib `RSI`'s order of operations."""
    keep = float(window - 1)
    seen = 0
    avg_gain = 0.0
    avg_loss = 0.0
    for t in range(1, close.shape[0]):
        change = close[t] - close[t - 1]
        if math.isnan(change):
            continue
        if seen < window:
            seen += 1
            if change < 0.0:
                avg_loss -= change
            else:
                avg_gain += change
            if seen == window:
                avg_gain /= window
                avg_loss /= window
                out_row[t] = _rsi_value_nb(avg_gain, avg_loss)
            continue
        avg_gain *= keep
        avg_loss *= keep
        if change < 0.0:
            avg_loss -= change
        else:
            avg_gain += change
        avg_gain /= window
        avg_loss /= window
        out_row[t] = _rsi_value_nb(avg_gain, avg_loss)


@njit(cache=True, parallel=True)
def rsi_table_nb(close: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Relative strength index for every window (Wilder; TA-Lib `RSI` convention).

    Parameters
    ----------
    close : float64, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        In percent, 0 to 100. Changes `d[t] = close[t] - close[t-1]` start at bar 1; gains are
        `max(d, 0)`, losses `max(-d, 0)`. The average gain and loss are seeded with the simple
        mean of the first n changes, then smoothed as `avg = (avg * (n - 1) + x) / n`.
        `rsi = 100 * avg_gain / (avg_gain + avg_loss)`, and 0 when both averages are 0 (a flat
        market; TA-Lib does the same). First value at bar n; earlier cells are NaN. A change
        that is NaN (either close NaN) is skipped as in `rma_table_nb`.

    Notes
    -----
    Matches TA-Lib `RSI` to rounding on gap-free data. pandas-ta `rsi(talib=False)` seeds
    its averages with `ewm` from the first change instead. Reference:
    tests/reference.py::rsi_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, close.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _rsi_into_nb(close, windows[j], out[j])
    return out


@njit(cache=True)
def rsi_1d_nb(close: Float64Array1D, window: int) -> Float64Array1D:
    """Relative strength index over `window` bars: one row of `rsi_table_nb`, same rules.

    Parameters
    ----------
    close : float64, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `rsi_table_nb(close, [window])[0]`. Reference: tests/reference.py::rsi_1d.
    """
    out = np.full(close.shape[0], np.nan, dtype=np.float64)
    _rsi_into_nb(close, window, out)
    return out
