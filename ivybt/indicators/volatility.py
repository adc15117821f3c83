"""Volatility: true range, average true range (ATR) and rolling standard deviation, one window
or a table of windows. Kernels: `ivybt.kernels.wilder` and `ivybt.kernels.rolling`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ivybt.indicators._checks import (
    PriceInput,
    WindowsInput,
    _check_ddof,
    _check_window,
    _check_windows,
    _to_float_arrays,
)
from ivybt.indicators._labels import (
    SeriesOutput,
    _label_series,
    _window_table,
)
from ivybt.kernels.rolling import rolling_std_1d_nb, rolling_std_table_nb
from ivybt.kernels.wilder import atr_1d_nb, atr_table_nb, true_range_nb


def true_range(high: PriceInput, low: PriceInput, close: PriceInput) -> SeriesOutput:
    """True range per bar (TA-Lib `TRANGE`): NaN at bar 0, then the widest of high - low and
    the gaps from the previous close.

    Parameters
    ----------
    high, low, close : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).

    Returns
    -------
    ndarray or Series (named ``true_range``)
        In price units.

    Examples
    --------
    >>> true_range(np.array([10.0, 12.0]), np.array([9.0, 11.0]), np.array([9.5, 11.5]))
    array([nan, 2.5])
    """
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    return _label_series(true_range_nb(h, lo, c), index, "true_range")


def atr(high: PriceInput, low: PriceInput, close: PriceInput, *, window: int = 14) -> SeriesOutput:
    """Average true range: Wilder's RMA of the true range (TA-Lib `ATR`), first value at bar
    `window`.

    Parameters
    ----------
    high, low, close : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).
    window : int, default 14
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray or Series (named ``atr_{window}``)
        In price units.

    Examples
    --------
    >>> atr(np.array([10.0, 12.0, 12.0]), np.array([9.0, 11.0, 10.0]),
    ...     np.array([9.5, 11.5, 11.0]), window=1)
    array([nan, 2.5, 2. ])
    """
    window = _check_window("window", window)
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    return _label_series(atr_1d_nb(h, lo, c, window), index, f"atr_{window}")


def rolling_std(values: PriceInput, *, window: int, ddof: int = 0) -> SeriesOutput:
    """Rolling standard deviation over `window` bars; population std by default (TA-Lib
    `STDDEV`), `ddof=1` for the sample std of pandas.

    Parameters
    ----------
    values : ndarray or Series, shape (n_bars,)
        Prices or any numeric series, oldest first; NaN marks a missing bar.
    window : int
        Look-back length in bars, >= 1.
    ddof : int, default 0
        Delta degrees of freedom, 0 <= ddof < window.

    Returns
    -------
    ndarray or Series (named ``std_{window}``)
        Same units as `values`.

    Examples
    --------
    >>> rolling_std(np.array([1.0, 3.0, 5.0]), window=2)
    array([nan,  1.,  1.])
    """
    window = _check_window("window", window)
    ddof = _check_ddof(ddof, np.array([window], dtype=np.int64))
    (array,), index = _to_float_arrays(values=values)
    return _label_series(rolling_std_1d_nb(array, window, ddof), index, f"std_{window}")


def atr_table(
    high: PriceInput, low: PriceInput, close: PriceInput, *, windows: WindowsInput
) -> pd.DataFrame:
    """`atr` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    return _window_table(lambda unique: atr_table_nb(h, lo, c, unique), wanted, index, c.shape[0])


def rolling_std_table(values: PriceInput, *, windows: WindowsInput, ddof: int = 0) -> pd.DataFrame:
    """`rolling_std` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    ddof = _check_ddof(ddof, wanted)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(
        lambda unique: rolling_std_table_nb(array, unique, ddof), wanted, index, array.shape[0]
    )
