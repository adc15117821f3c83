"""Band and oscillator kernels built on `ivybt.kernels.indicators`: Bollinger, Keltner, Donchian,
MACD and the MACD-histogram grid.

Each band kernel returns shape `(3, n_bars)` float64 with rows `(lower, middle, upper)`; MACD
returns rows `(macd, signal, histogram)`. Inputs are never mutated, outputs are allocated once at
the top, `out[:, t]` uses bars <= t only, and warm-up cells are NaN. The NaN rules are those of
the building blocks (see `ivybt.kernels.indicators`). Reference twins: `tests/reference.py`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D
from ivybt.kernels.indicators import _ema_into_nb, _prefix_sums_nb, _rma_into_nb, _sma_row_nb
from ivybt.kernels.rolling import _rolling_extreme_into_nb, _rolling_std_into_nb
from ivybt.kernels.wilder import true_range_nb


@njit(cache=True)
def bollinger_nb(close: Float64Array1D, window: int, num_std: float) -> Float64Array2D:
    """Bollinger bands: SMA plus and minus `num_std` population standard deviations.

    Parameters
    ----------
    close : float64, shape (n_bars,)
        Close prices in quote currency, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1, shared by the SMA and the std.
    num_std : float
        Band half-width in standard deviations, >= 0 (2.0 is customary).

    Returns
    -------
    out : float64, shape (3, n_bars)
        Rows `lower, middle, upper` in price units: `middle = sma_1d_nb(close, window)`,
        `lower/upper = middle -/+ num_std * rolling_std_1d_nb(close, window, 0)` (ddof=0, as
        TA-Lib `BBANDS`). Bars t < window - 1 and windows with a NaN are NaN; bars <= t only.

    Notes
    -----
    Matches TA-Lib `BBANDS(close, window, num_std, num_std, MA_Type.SMA)` up to TA-Lib's own
    `E[x**2] - E[x]**2` rounding. Reference: tests/reference.py::bollinger.
    """
    out = np.full((3, close.shape[0]), np.nan, dtype=np.float64)
    high, low, counts = _prefix_sums_nb(close)
    _sma_row_nb(high, low, counts, window, out[1])
    _rolling_std_into_nb(close, window, 0, out[0])
    for t in range(close.shape[0]):
        half_width = num_std * out[0, t]
        out[0, t] = out[1, t] - half_width
        out[2, t] = out[1, t] + half_width
    return out


@njit(cache=True)
def keltner_nb(
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    window: int,
    atr_window: int,
    multiplier: float,
) -> Float64Array2D:
    """Keltner channel: EMA of the close plus and minus `multiplier` Wilder ATRs.

    Parameters
    ----------
    high, low, close : float64, shape (n_bars,)
        Bar high, low and close in quote currency, oldest first, same length.
    window : int
        EMA span of the middle line in bars, >= 1 (TA-Lib `EMA` seeding).
    atr_window : int
        ATR look-back in bars, >= 1 (TA-Lib `ATR`, Wilder smoothing).
    multiplier : float
        Band half-width in ATRs, >= 0.

    Returns
    -------
    out : float64, shape (3, n_bars)
        Rows `lower, middle, upper` in price units: `middle = ema_1d_nb(close, window)` (first
        value at bar window - 1), `lower/upper = middle -/+ multiplier * atr_1d_nb(high, low,
        close, atr_window)` (first value at bar max(window - 1, atr_window)). Bars <= t only.

    Notes
    -----
    TA-Lib has no Keltner channel; the parts equal TA-Lib `EMA` and `ATR`. pandas-ta `kc`
    smooths the true range with an EMA of the same length as the middle line instead.
    Reference: tests/reference.py::keltner.
    """
    out = np.full((3, close.shape[0]), np.nan, dtype=np.float64)
    _ema_into_nb(close, window, 0, out[1])
    ranges = true_range_nb(high, low, close)
    _rma_into_nb(ranges, atr_window, out[0])
    for t in range(close.shape[0]):
        half_width = multiplier * out[0, t]
        out[0, t] = out[1, t] - half_width
        out[2, t] = out[1, t] + half_width
    return out


@njit(cache=True)
def donchian_nb(high: Float64Array1D, low: Float64Array1D, window: int) -> Float64Array2D:
    """Donchian channel: rolling min of the lows, rolling max of the highs, and their midpoint.

    Parameters
    ----------
    high, low : float64, shape (n_bars,)
        Bar high and low in quote currency, oldest first, same length.
    window : int
        Look-back length in bars, >= 1; bar t is included.

    Returns
    -------
    out : float64, shape (3, n_bars)
        Rows `lower = min(low[t-n+1 : t+1])`, `middle = 0.5 * (lower + upper)`,
        `upper = max(high[t-n+1 : t+1])`, in price units, bars <= t only. Warm-up cells and
        windows with a NaN are NaN.

    Notes
    -----
    Equals TA-Lib `MIN`/`MAX` and pandas-ta `donchian(lower_length=n, upper_length=n)`.
    Reference: tests/reference.py::donchian.
    """
    out = np.full((3, high.shape[0]), np.nan, dtype=np.float64)
    _rolling_extreme_into_nb(low, window, False, out[0])
    _rolling_extreme_into_nb(high, window, True, out[2])
    for t in range(high.shape[0]):
        out[1, t] = 0.5 * (out[0, t] + out[2, t])
    return out


@njit(cache=True)
def _macd_into_nb(
    close: Float64Array1D, fast: int, slow: int, signal: int, out: Float64Array2D
) -> None:
    """MACD rows (macd, signal, histogram) into `out` (shape (3, n_bars), pre-filled with NaN).

    Row 0 first holds the fast EMA and row 1 the slow EMA; row 0 then becomes the MACD line,
    row 1 is reset and receives the signal EMA, and the MACD line is blanked where the signal
    is NaN (TA-Lib outputs nothing before the signal's first value).
    """
    if fast > slow:
        raise ValueError("macd kernels need fast <= slow")
    n_bars = close.shape[0]
    _ema_into_nb(close, fast, slow - fast, out[0])
    _ema_into_nb(close, slow, 0, out[1])
    for t in range(n_bars):
        out[0, t] = out[0, t] - out[1, t]
        out[1, t] = np.nan
    _ema_into_nb(out[0], signal, 0, out[1])
    for t in range(n_bars):
        if math.isnan(out[1, t]):
            out[0, t] = np.nan
        out[2, t] = out[0, t] - out[1, t]


@njit(cache=True)
def macd_nb(close: Float64Array1D, fast: int, slow: int, signal: int) -> Float64Array2D:
    """MACD line, signal line and histogram exactly as TA-Lib `MACD` computes them.

    Parameters
    ----------
    close : float64, shape (n_bars,)
        Close prices in quote currency, oldest first; NaN marks a missing bar.
    fast, slow : int
        EMA spans in bars, 1 <= fast <= slow (the wrapper requires fast < slow; TA-Lib
        silently swaps them).
    signal : int
        EMA span of the signal line in bars, >= 1.

    Returns
    -------
    out : float64, shape (3, n_bars)
        Rows `macd, signal, histogram` in price units, bars <= t only.
        slow EMA: seeded with the mean of close[0 : slow], first value at bar slow - 1.
        fast EMA: seeded with the mean of close[slow - fast : slow] (TA-Lib's alignment: the
        fast EMA starts at the same bar as the slow one, not at bar fast - 1).
        macd = fast - slow from bar slow - 1; signal = EMA(macd, signal) seeded with the mean
        of its first `signal` values; histogram = macd - signal. All three rows are NaN before
        bar (slow - 1) + (signal - 1), as in TA-Lib. NaN bars are skipped (module docstring of
        `ivybt.kernels.indicators`); leading NaNs shift everything, counting valid bars.

    Notes
    -----
    Matches TA-Lib `MACD` to rounding on gap-free data. pandas-ta `macd(talib=False)` seeds the
    fast EMA at bar fast - 1, so its early values differ until the seeds have decayed.
    Reference: tests/reference.py::macd.
    """
    out = np.full((3, close.shape[0]), np.nan, dtype=np.float64)
    _macd_into_nb(close, fast, slow, signal, out)
    return out


@njit(cache=True, parallel=True)
def macd_hist_table_nb(
    close: Float64Array1D, fasts: Int64Array1D, slows: Int64Array1D, signals: Int64Array1D
) -> Float64Array2D:
    """MACD histogram (macd - signal) for every (fast, slow, signal) triple.

    Parameters
    ----------
    close : float64, shape (n_bars,)
        Close prices in quote currency, oldest first; NaN marks a missing bar.
    fasts, slows, signals : int64, shape (n_combos,)
        One triple per row, `1 <= fasts[j] <= slows[j]`, `signals[j] >= 1`.

    Returns
    -------
    out : float64, shape (n_combos, n_bars)
        Row j is bit for bit `macd_nb(close, fasts[j], slows[j], signals[j])[2]`, bars <= t
        only; NaN before bar slows[j] + signals[j] - 2.

    Notes
    -----
    `prange` over combos; each combo computes its three lines in a (3, n_bars) scratch array
    of its own (allocated once per combo, outside the time loop). The wrapper removes duplicate
    triples first. Reference: tests/reference.py::macd_hist_table.
    """
    n_combos = fasts.shape[0]
    n_bars = close.shape[0]
    out = np.full((n_combos, n_bars), np.nan, dtype=np.float64)
    for j in prange(n_combos):
        lines = np.full((3, n_bars), np.nan, dtype=np.float64)
        _macd_into_nb(close, fasts[j], slows[j], signals[j], lines)
        for t in range(n_bars):
            out[j, t] = lines[2, t]
    return out
