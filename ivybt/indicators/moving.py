"""Moving averages: simple (SMA), exponential (EMA) and Wilder's (RMA), one window or a table
of windows. Kernels: `ivybt.kernels.indicators`."""

from __future__ import annotations

import numpy as np  # noqa: F401 (the Examples sections use np)
import pandas as pd

from ivybt.indicators._checks import (
    PriceInput,
    WindowsInput,
    _check_window,
    _check_windows,
    _to_float_arrays,
)
from ivybt.indicators._labels import (
    SeriesOutput,
    _label_series,
    _window_table,
)
from ivybt.kernels.indicators import (
    ema_1d_nb,
    ema_table_nb,
    rma_1d_nb,
    rma_table_nb,
    sma_1d_nb,
    sma_table_nb,
)


def sma(values: PriceInput, *, window: int) -> SeriesOutput:
    """Simple moving average over `window` bars (TA-Lib `SMA`), see `sma_1d_nb`.

    Parameters
    ----------
    values : ndarray or Series, shape (n_bars,)
        Prices or any numeric series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray or Series (named ``sma_{window}``)
        NaN for the first `window - 1` bars and for windows containing a NaN.

    Examples
    --------
    >>> sma(np.array([2.0, 4.0, 6.0]), window=2)
    array([nan,  3.,  5.])
    """
    window = _check_window("window", window)
    (array,), index = _to_float_arrays(values=values)
    return _label_series(sma_1d_nb(array, window), index, f"sma_{window}")


def ema(values: PriceInput, *, window: int) -> SeriesOutput:
    """Exponential moving average, alpha = 2 / (window + 1), seeded with an SMA (TA-Lib `EMA`).

    Parameters
    ----------
    values : ndarray or Series, shape (n_bars,)
        Prices or any numeric series, oldest first; NaN marks a missing bar.
    window : int
        Span in bars, >= 1.

    Returns
    -------
    ndarray or Series (named ``ema_{window}``)
        First value at the `window`-th non-NaN bar (the mean of those bars). NaN bars are
        skipped: NaN out, smoothing state kept (see `ivybt.kernels.indicators`).

    Examples
    --------
    >>> ema(np.array([1.0, 3.0, 5.0, 7.0]), window=3)
    array([nan, nan,  3.,  5.])
    """
    window = _check_window("window", window)
    (array,), index = _to_float_arrays(values=values)
    return _label_series(ema_1d_nb(array, window), index, f"ema_{window}")


def rma(values: PriceInput, *, window: int) -> SeriesOutput:
    """Wilder's moving average, alpha = 1 / window, seeded with an SMA (TA-Lib ATR/RSI smoothing).

    Parameters
    ----------
    values : ndarray or Series, shape (n_bars,)
        Prices or any numeric series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray or Series (named ``rma_{window}``)
        Same warm-up and NaN rules as `ema`.

    Examples
    --------
    >>> rma(np.array([1.0, 3.0, 5.0]), window=2)
    array([nan, 2. , 3.5])
    """
    window = _check_window("window", window)
    (array,), index = _to_float_arrays(values=values)
    return _label_series(rma_1d_nb(array, window), index, f"rma_{window}")


def sma_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`sma` for every window in `windows`: a DataFrame with one column per window.

    Parameters
    ----------
    values : ndarray or Series, shape (n_bars,)
        Prices or any numeric series, oldest first; NaN marks a missing bar.
    windows : sequence of int
        Look-back lengths in bars, each >= 1; duplicates are computed once.

    Returns
    -------
    DataFrame, shape (n_bars, len(windows))
        Column `windows[j]` equals `sma(values, window=windows[j])`.
    """
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(lambda unique: sma_table_nb(array, unique), wanted, index, array.shape[0])


def ema_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`ema` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(lambda unique: ema_table_nb(array, unique), wanted, index, array.shape[0])


def rma_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`rma` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(lambda unique: rma_table_nb(array, unique), wanted, index, array.shape[0])
