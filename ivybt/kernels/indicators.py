"""Moving-average kernels: SMA, EMA and Wilder's RMA, and the row helpers other kernels reuse.

True range, ATR and RSI are in `ivybt.kernels.wilder`; rolling std, max and min in
`ivybt.kernels.rolling`; bands and MACD in `ivybt.kernels.bands`.

Conventions shared by every kernel here (TA-Lib's defaults unless a docstring says otherwise):

- inputs are float64 prices in quote currency, oldest bar first, and are never mutated;
  outputs are float64 and allocated once at the top of the kernel;
- `out[..., t]` uses bars `<= t` only (no look-ahead); warm-up cells are NaN;
- a `*_table_nb` kernel returns shape `(n_windows, n_bars)`: one row per window, computed by one
  thread (`prange` over the window axis, serial time loop). Its `*_1d_nb` twin runs the same
  serial row helper, so `table[j] == kernel_1d(values, windows[j])` bit for bit;
- windows are int64 bar counts `>= 1`, checked by the wrappers in `ivybt.indicators`;
- slow reference twins live in `tests/reference.py` under the same names without `_nb`.

NaN rule of the recursive smoothers (EMA, RMA, ATR, RSI, MACD): a NaN bar is *skipped*. It
outputs NaN and leaves the recursion's state as it was. So leading NaNs delay the warm-up (the
seed is the mean of the first `window` non-NaN values, TA-Lib's treatment of leading NaNs), and a
NaN gap later costs only the NaN bars themselves. TA-Lib instead turns every later value into NaN.

"Matches TA-Lib to rounding": same seeds, same update order; the TA-Lib wheel (0.6.x C core)
evaluates some updates as a fused multiply-add, so a few bars differ by one ulp.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D, Int64Array2D

# -- Simple moving average from one compensated cumulative sum ------------------------------------


@njit(cache=True)
def _prefix_sums_nb(
    values: Float64Array1D,
) -> tuple[Float64Array1D, Float64Array1D, Int64Array2D]:
    """Compensated prefix sums of the finite values, plus counts of NaN, +inf and -inf.

    Returns `(high, low, counts)`, each with `n_bars + 1` columns; entry `k` covers
    `values[:k]`. `high[k] + low[k]` is the sum of the finite values in double-double
    precision (TwoSum / Neumaier), so a window sum `high[b] - high[a] + (low[b] - low[a])` is
    accurate to a few ulps of itself, however long the series. `counts[0|1|2, k]` count the NaN,
    +inf and -inf values in `values[:k]`.
    """
    n_bars = values.shape[0]
    high = np.zeros(n_bars + 1, dtype=np.float64)
    low = np.zeros(n_bars + 1, dtype=np.float64)
    counts = np.zeros((3, n_bars + 1), dtype=np.int64)
    total = 0.0
    error = 0.0
    for t in range(n_bars):
        x = values[t]
        counts[0, t + 1] = counts[0, t]
        counts[1, t + 1] = counts[1, t]
        counts[2, t + 1] = counts[2, t]
        if math.isnan(x):
            counts[0, t + 1] += 1
        elif math.isinf(x):
            counts[1 if x > 0.0 else 2, t + 1] += 1
        else:
            new_total = total + x
            part = new_total - total
            error += (total - (new_total - part)) + (x - part)
            total = new_total
        high[t + 1] = total
        low[t + 1] = error
    return high, low, counts


@njit(cache=True)
def _sma_row_nb(
    high: Float64Array1D,
    low: Float64Array1D,
    counts: Int64Array2D,
    window: int,
    out_row: Float64Array1D,
) -> None:
    """Write the SMA of one window into `out_row` (pre-filled with NaN) from `_prefix_sums_nb`."""
    n_bars = out_row.shape[0]
    for t in range(window - 1, n_bars):
        stop = t + 1
        start = stop - window
        if counts[0, stop] - counts[0, start] > 0:
            continue
        has_pos = counts[1, stop] - counts[1, start] > 0
        has_neg = counts[2, stop] - counts[2, start] > 0
        if has_pos and has_neg:
            continue
        if has_pos:
            out_row[t] = np.inf
        elif has_neg:
            out_row[t] = -np.inf
        else:
            out_row[t] = ((high[stop] - high[start]) + (low[stop] - low[start])) / window


@njit(cache=True, parallel=True)
def sma_table_nb(values: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Simple moving average of `values` for every window in `windows`.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices (quote currency) or any series, oldest first. NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1 (checked by `ivybt.indicators.sma_table`).

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        `out[j, t] = mean(values[t - windows[j] + 1 : t + 1])`, bars <= t only. Warm-up cells
        (`t < windows[j] - 1`) and windows containing a NaN are NaN; a window holding +inf
        (-inf) is +inf (-inf), and both is NaN, as the plain IEEE mean would give.

    Notes
    -----
    All rows come from ONE compensated cumulative sum (double-double TwoSum), so each window
    costs O(1) and stays accurate to a few ulps; cumulative NaN/inf counts decide the
    non-finite cases. Equals TA-Lib `SMA` (its running sum drifts by ~1e-13 relative) and
    pandas `Series.rolling(w).mean()`. Reference: tests/reference.py::sma_table.
    """
    n_bars = values.shape[0]
    n_windows = windows.shape[0]
    out = np.full((n_windows, n_bars), np.nan, dtype=np.float64)
    high, low, counts = _prefix_sums_nb(values)
    for j in prange(n_windows):
        _sma_row_nb(high, low, counts, windows[j], out[j])
    return out


@njit(cache=True)
def sma_1d_nb(values: Float64Array1D, window: int) -> Float64Array1D:
    """Simple moving average of `values` over `window` bars: one row of `sma_table_nb`.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `sma_table_nb(values, [window])[0]`. Reference: tests/reference.py::sma_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    high, low, counts = _prefix_sums_nb(values)
    _sma_row_nb(high, low, counts, window, out)
    return out


# -- Seeded recursive smoothers: EMA (alpha = 2 / (n + 1)) and Wilder's RMA (alpha = 1 / n) -------


@njit(cache=True)
def _seed_mean_nb(values: Float64Array1D, window: int, skip: int, out_row: Float64Array1D) -> int:
    """Write the seed of a recursion and return its bar, or n_bars if the data is too short.

    Ignores NaN bars, passes over the first `skip` non-NaN values, then sums the next `window`
    non-NaN values left to right and writes `sum / window` at the bar of the last one (TA-Lib's
    SMA seed). `skip > 0` serves MACD's aligned fast EMA.
    """
    seen = 0
    total = 0.0
    for t in range(values.shape[0]):
        x = values[t]
        if math.isnan(x):
            continue
        seen += 1
        if seen > skip:
            total += x
            if seen == skip + window:
                out_row[t] = total / window
                return t
    return values.shape[0]


@njit(cache=True)
def _ema_into_nb(values: Float64Array1D, window: int, skip: int, out_row: Float64Array1D) -> None:
    """EMA with alpha = 2 / (window + 1) into `out_row` (pre-filled with NaN), TA-Lib's update.

    `state = (x - state) * alpha + state`, the order of operations of TA-Lib `TA_INT_EMA`.
    """
    alpha = 2.0 / (window + 1)
    start = _seed_mean_nb(values, window, skip, out_row)
    if start >= values.shape[0]:
        return
    state = out_row[start]
    for t in range(start + 1, values.shape[0]):
        x = values[t]
        if math.isnan(x):
            continue
        state = (x - state) * alpha + state
        out_row[t] = state


@njit(cache=True)
def _rma_into_nb(values: Float64Array1D, window: int, out_row: Float64Array1D) -> None:
    """Wilder's RMA (alpha = 1 / window) into `out_row` (pre-filled with NaN).

    `state = (state * (window - 1) + x) / window`, the order of operations of TA-Lib `ATR`.
    """
    start = _seed_mean_nb(values, window, 0, out_row)
    if start >= values.shape[0]:
        return
    keep = float(window - 1)
    state = out_row[start]
    for t in range(start + 1, values.shape[0]):
        x = values[t]
        if math.isnan(x):
            continue
        state = (state * keep + x) / window
        out_row[t] = state


@njit(cache=True, parallel=True)
def ema_table_nb(values: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Exponential moving average of `values` for every window (TA-Lib `EMA` convention).

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Spans in bars, each >= 1; alpha = 2 / (window + 1).

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        Seed: the mean of the first `window` non-NaN values, written at the bar of the last of
        them (bar `window - 1` without NaNs); then `ema[t] = ema[t-1] + alpha * (x[t] -
        ema[t-1])`, bars <= t only. Warm-up cells are NaN. A NaN bar outputs NaN and keeps the
        state (see the module docstring); TA-Lib would output NaN from there on.

    Notes
    -----
    Matches TA-Lib `EMA` to rounding on gap-free data (same seed and update order) and
    pandas-ta `ema(presma=True, talib=False)`. Reference: tests/reference.py::ema_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, values.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _ema_into_nb(values, windows[j], 0, out[j])
    return out


@njit(cache=True)
def ema_1d_nb(values: Float64Array1D, window: int) -> Float64Array1D:
    """EMA of `values` with span `window`: one row of `ema_table_nb`, same rules.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Span in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `ema_table_nb(values, [window])[0]`. Reference: tests/reference.py::ema_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    _ema_into_nb(values, window, 0, out)
    return out


@njit(cache=True, parallel=True)
def rma_table_nb(values: Float64Array1D, windows: Int64Array1D) -> Float64Array2D:
    """Wilder's moving average (RMA, alpha = 1 / window) for every window.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    windows : int64, shape (n_windows,)
        Look-back lengths in bars, each >= 1.

    Returns
    -------
    out : float64, shape (n_windows, n_bars)
        Seed: the mean of the first `window` non-NaN values, at the bar of the last of them;
        then `rma[t] = (rma[t-1] * (window - 1) + x[t]) / window`, bars <= t only. Warm-up
        cells are NaN; NaN bars output NaN and keep the state (module docstring).

    Notes
    -----
    The smoothing inside TA-Lib `ATR` and `RSI`. pandas-ta `rma` seeds with the first value
    instead (`ewm(alpha=1/n, adjust=False)`); feeding it the SMA seed maps it exactly.
    Reference: tests/reference.py::rma_table.
    """
    n_windows = windows.shape[0]
    out = np.full((n_windows, values.shape[0]), np.nan, dtype=np.float64)
    for j in prange(n_windows):
        _rma_into_nb(values, windows[j], out[j])
    return out


@njit(cache=True)
def rma_1d_nb(values: Float64Array1D, window: int) -> Float64Array1D:
    """Wilder's RMA of `values` over `window` bars: one row of `rma_table_nb`, same rules.

    Parameters
    ----------
    values : float64, shape (n_bars,)
        Prices or any series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    out : float64, shape (n_bars,)
        Bit for bit `rma_table_nb(values, [window])[0]`. Reference: tests/reference.py::rma_1d.
    """
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    _rma_into_nb(values, window, out)
    return out
