"""Rolling-window statistics: standard deviation, maximum and minimum.

Same conventions as `ivybt.kernels.indicators`: float64 inputs never mutated, outputs allocated
once at the top, `out[..., t]` uses bars <= t only (bar t included), warm-up cells NaN, and a
window holding a NaN is NaN. `*_table_nb` kernels are `(n_windows, n_bars)`, `prange` over
windows; each `*_1d_nb` runs the same serial row helper, so it equals its table row bit for bit.
Reference twins: `tests/reference.py`, same names without `_nb`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D


@njit(cache=True)
def _rolling_std_into_nb(
    values: Float64Array1D, window: int, ddof: int, out_row: Float64Array1D
) -> None:
    """Corrected two-pass std of every window into `out_row` (pre-filled with NaN).

    Each window: mean = sum / n, then `var = (sum(d**2) - sum(d)**2 / n) / (n - ddof)` with
    `d = x - mean` (the second term removes the rounding error of the mean). Negative rounding
    residue is clamped to 0. O(window) per bar, no cancellation on raw price levels.
    """
    if window - ddof <= 0:
        return
    for t in range(window - 1, values.shape[0]):
        start = t - window + 1
        total = 0.0
        for i in range(start, t + 1):
            total += values[i]
        mean = total / window
        squares = 0.0
        residue = 0.0
        for i in range(start, t + 1):
            deviation = values[i] - mean
            squares += deviation * deviation
            residue += deviation
        variance = (squares - residue * residue / window) / (window - ddof)
        if variance < 0.0:
            variance = 0.0
        out_row[t] = math.sqrt(variance)


@njit(cache=True, parallel=True)
def rolling_std_table_nb(
    values: Float64Array1D, windows: Int64Array1D, ddof: int
) -> Float64Array2D:
    """Rolling standard deviation for every window (TA-Lib `STDDEV` with ddof=0).

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.
    ddof : int
        Delta degrees of freedom: 0 gives the population std (TA-Lib `STDDEV`, `BBANDS`; what
        the wrappers pass by default), 1 the sample std (pandas `rolling().std()`).

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        Same units as `values`. `out[j, t]` is the std of `values[t - n + 1 : t + 1]`, bars <= t
        only. Warm-up cells, windows with a NaN or an inf, and rows with `n <= ddof` are NaN.

    Notes
    -----
    Corrected two-pass algorithm per window (O(n_bars * window) per row), accurate where
    TA-Lib's `E[x**2] - E[x]**2` loses digits on high price levels.
    Reference: tests/reference.py::rolling_std_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, values.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _rolling_std_into_nb(values, windows[j], ddof, out[j])
    return out


@njit(cache=True)
def rolling_std_1d_nb(values: Float64Array1D, window: int, ddof: int) -> Float64Array1D:
    """Rolling standard deviation over `window` bars: one row of `rolling_std_table_nb`.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.
    ddof : int
        Delta degrees of freedom (0 = population std, TA-Lib's convention).

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `rolling_std_table_nb(values, [window], ddof)[0]`.
        Reference: tests/reference.py::rolling_std_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    _rolling_std_into_nb(values, window, ddof, out)
    return out


@njit(cache=True)
def _rolling_extreme_into_nb(
    values: Float64Array1D, window: int, want_max: bool, out_row: Float64Array1D
) -> None:
    """Rolling max (or min) into `out_row` (pre-filled with NaN) with a monotonic deque.

    The deque (a ring buffer of bar indices, allocated once per row) keeps the candidates of
    the current window in decreasing (increasing) value order; a NaN bar empties it, and a
    window that still contains a NaN bar stays NaN. O(n_bars) per row.
    """
    n_bars = values.shape[0]
    capacity = max(1, min(window, n_bars))
    queue = np.empty(capacity, dtype=np.int64)
    head = 0
    size = 0
    last_nan = -window - 1
    for t in range(n_bars):
        x = values[t]
        if math.isnan(x):
            last_nan = t
            head = 0
            size = 0
            continue
        if size > 0 and queue[head] <= t - window:
            head = (head + 1) % capacity
            size -= 1
        while size > 0:
            back = values[queue[(head + size - 1) % capacity]]
            if (want_max and back <= x) or (not want_max and back >= x):
                size -= 1
            else:
                break
        queue[(head + size) % capacity] = t
        size += 1
        if t >= window - 1 and t - last_nan >= window:
            out_row[t] = values[queue[head]]


@njit(cache=True, parallel=True)
def rolling_max_table_nb(values: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Rolling maximum for every window, bar t included (TA-Lib `MAX`).

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        `out[j, t] = max(values[t - n + 1 : t + 1])`, bars <= t only. Warm-up cells
        (t < n - 1) and windows containing a NaN are NaN.

    Notes
    -----
    Monotonic deque, O(n_bars) per row. Equals pandas `rolling(n).max()`.
    Reference: tests/reference.py::rolling_max_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, values.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _rolling_extreme_into_nb(values, windows[j], True, out[j])
    return out


@njit(cache=True, parallel=True)
def rolling_min_table_nb(values: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Rolling minimum for every window, bar t included (TA-Lib `MIN`).

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        `out[j, t] = min(values[t - n + 1 : t + 1])`, bars <= t only. Warm-up cells
        (t < n - 1) and windows containing a NaN are NaN.

    Notes
    -----
    Monotonic deque, O(n_bars) per row. Equals pandas `rolling(n).min()`.
    Reference: tests/reference.py::rolling_min_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, values.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _rolling_extreme_into_nb(values, windows[j], False, out[j])
    return out


@njit(cache=True)
def rolling_max_1d_nb(values: Float64Array1D, window: int) -> Float64Array1D:
    """Rolling maximum over `window` bars, bar t included: one row of `rolling_max_table_nb`.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `rolling_max_table_nb(values, [window])[0]`.
        Reference: tests/reference.py::rolling_max_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    _rolling_extreme_into_nb(values, window, True, out)
    return out


@njit(cache=True)
def rolling_min_1d_nb(values: Float64Array1D, window: int) -> Float64Array1D:
    """Rolling minimum over `window` bars, bar t included: one row of `rolling_min_table_nb`.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `rolling_min_table_nb(values, [window])[0]`.
        Reference: tests/reference.py::rolling_min_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    _rolling_extreme_into_nb(values, window, False, out)
    return out
