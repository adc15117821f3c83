"""Oscillators: RSI and MACD (line, signal, histogram), one setting or a table of settings.
Kernels: `ivybt.kernels.wilder` (RSI) and `ivybt.kernels.bands` (MACD)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ivybt.indicators._checks import (
    PriceInput,
    WindowsInput,
    _check_window,
    _check_windows,
    _to_float_arrays,
)
from ivybt.indicators._labels import (
    FrameOutput,
    SeriesOutput,
    _label_lines,
    _label_series,
    _label_table,
    _window_table,
)
from ivybt.kernels.bands import macd_hist_table_nb, macd_nb
from ivybt.kernels.wilder import rsi_1d_nb, rsi_table_nb

_MACD_COLUMNS = ("macd", "signal", "histogram")


def rsi(close: PriceInput, *, window: int = 14) -> SeriesOutput:
    """Relative strength index in percent (Wilder; TA-Lib `RSI`), first value at bar `window`;
    0 where average gain and loss are both 0.

    Parameters
    ----------
    close : ndarray or Series, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    window : int, default 14
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray or Series (named ``rsi_{window}``)
        Values in [0, 100].

    Examples
    --------
    >>> rsi(np.array([1.0, 2.0, 1.0, 1.0]), window=2)
    array([nan, nan, 50., 50.])
    """
    window = _check_window("window", window)
    (array,), index = _to_float_arrays(close=close)
    return _label_series(rsi_1d_nb(array, window), index, f"rsi_{window}")


def rsi_table(close: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`rsi` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(close=close)
    return _window_table(lambda unique: rsi_table_nb(array, unique), wanted, index, array.shape[0])


def _check_fast_below_slow(fast: int, slow: int, fast_name: str, slow_name: str) -> None:
    if fast >= slow:
        raise ValueError(
            f"{fast_name} must be < {slow_name}, got {fast_name}={fast} and {slow_name}={slow}; "
            f"swap them (TA-Lib swaps them silently, IvyBT does not)"
        )


def macd(close: PriceInput, *, fast: int = 12, slow: int = 26, signal: int = 9) -> FrameOutput:
    """MACD line, signal line and histogram exactly as TA-Lib `MACD` computes them.

    Parameters
    ----------
    close : ndarray or Series, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    fast, slow : int, default 12 and 26
        EMA spans in bars, 1 <= fast < slow. The fast EMA is seeded on the `fast` bars ending
        at bar `slow - 1`, so both EMAs start together (TA-Lib's alignment).
    signal : int, default 9
        EMA span of the signal line in bars, >= 1.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``macd, signal, histogram`` in price units; all NaN before bar
        `slow + signal - 2`.

    Examples
    --------
    >>> macd(np.arange(1.0, 6.0), fast=1, slow=2, signal=1)[-1]
    array([0.5, 0.5, 0. ])
    """
    fast = _check_window("fast", fast)
    slow = _check_window("slow", slow)
    signal = _check_window("signal", signal)
    _check_fast_below_slow(fast, slow, "fast", "slow")
    (array,), index = _to_float_arrays(close=close)
    return _label_lines(macd_nb(array, fast, slow, signal), index, _MACD_COLUMNS)


def macd_hist_table(
    close: PriceInput, *, fasts: WindowsInput, slows: WindowsInput, signals: WindowsInput
) -> pd.DataFrame:
    """MACD histogram for every (fasts[j], slows[j], signals[j]) combo.

    Parameters
    ----------
    close : ndarray or Series, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    fasts, slows, signals : sequence of int
        One combo per position, same lengths, `1 <= fasts[j] < slows[j]`, `signals[j] >= 1`.
        Duplicate combos are computed once.

    Returns
    -------
    DataFrame, shape (n_bars, n_combos)
        Columns are a (fast, slow, signal) MultiIndex; column j equals
        `macd(close, fast=fasts[j], slow=slows[j], signal=signals[j])["histogram"]`.
    """
    fast_arr = _check_windows("fasts", fasts)
    slow_arr = _check_windows("slows", slows)
    signal_arr = _check_windows("signals", signals)
    if not fast_arr.shape[0] == slow_arr.shape[0] == signal_arr.shape[0]:
        raise ValueError(
            f"fasts, slows and signals must have the same length (one combo per position), got "
            f"{fast_arr.shape[0]}, {slow_arr.shape[0]} and {signal_arr.shape[0]}; pass one "
            f"fast, slow and signal per combo"
        )
    for j in range(fast_arr.shape[0]):
        _check_fast_below_slow(int(fast_arr[j]), int(slow_arr[j]), f"fasts[{j}]", f"slows[{j}]")
    (array,), index = _to_float_arrays(close=close)
    combos = np.stack([fast_arr, slow_arr, signal_arr], axis=1)
    unique, rows = np.unique(combos, axis=0, return_inverse=True)
    unique = np.ascontiguousarray(unique, dtype=np.int64)
    out = macd_hist_table_nb(
        array,
        np.ascontiguousarray(unique[:, 0]),
        np.ascontiguousarray(unique[:, 1]),
        np.ascontiguousarray(unique[:, 2]),
    )[rows.reshape(-1)]
    columns = pd.MultiIndex.from_arrays(
        [fast_arr, slow_arr, signal_arr], names=["fast", "slow", "signal"]
    )
    return _label_table(out, index, array.shape[0], columns)
