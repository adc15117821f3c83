"""Technical indicators: validated, labelled wrappers around `ivybt.kernels.indicators`,
`ivybt.kernels.rolling` and `ivybt.kernels.bands`.

Every function takes price columns as `np.ndarray` or `pd.Series` (converted to contiguous
float64; a NaN marks a missing bar) and keyword-only options. Conventions are TA-Lib's defaults;
each kernel's docstring states them in full. Outputs follow the input:

- one output column: a `pd.Series` with the input's index when given a Series, else an ndarray;
- bands and MACD: a `pd.DataFrame` (columns `lower, middle, upper` or `macd, signal,
  histogram`) when given a Series, else an ndarray of shape `(n_bars, 3)` in that column order;
- `*_table`: always a time-major `pd.DataFrame` (rows = bars, one column per window, in the
  order asked, duplicates included), indexed like the input or by bar number.

Every value at bar t uses bars <= t only. Invalid arguments raise `TypeError`/`ValueError` with
the rule, the value seen and a fix.

>>> import numpy as np
>>> from ivybt.indicators import sma, sma_table
>>> sma(np.array([1.0, 2.0, 3.0, 4.0]), window=2)
array([nan, 1.5, 2.5, 3.5])
>>> sma_table(np.array([1.0, 2.0, 3.0, 4.0]), windows=[2, 3]).to_numpy()[-1]
array([3.5, 3. ])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D
from ivybt.kernels.bands import bollinger_nb, donchian_nb, keltner_nb, macd_hist_table_nb, macd_nb
from ivybt.kernels.indicators import (
    atr_1d_nb,
    atr_table_nb,
    ema_1d_nb,
    ema_table_nb,
    rma_1d_nb,
    rma_table_nb,
    rsi_1d_nb,
    rsi_table_nb,
    sma_1d_nb,
    sma_table_nb,
    true_range_nb,
)
from ivybt.kernels.rolling import (
    rolling_max_table_nb,
    rolling_min_table_nb,
    rolling_std_1d_nb,
    rolling_std_table_nb,
)

__all__ = [
    "atr",
    "atr_table",
    "bollinger",
    "donchian",
    "ema",
    "ema_table",
    "keltner",
    "macd",
    "macd_hist_table",
    "rma",
    "rma_table",
    "rolling_max_table",
    "rolling_min_table",
    "rolling_std",
    "rolling_std_table",
    "rsi",
    "rsi_table",
    "sma",
    "sma_table",
    "true_range",
]

type PriceInput = np.ndarray | pd.Series
"""One price column: an ndarray or a Series of numbers, one value per bar, oldest first."""

type SeriesOutput = Float64Array1D | pd.Series
type FrameOutput = Float64Array2D | pd.DataFrame
type WindowsInput = Sequence[int] | np.ndarray

_WINDOW_FIX = "pass a look-back length in bars such as 14"
_WINDOWS_FIX = "pass look-back lengths in bars such as [10, 20, 50]"
_BAND_COLUMNS = ("lower", "middle", "upper")
_MACD_COLUMNS = ("macd", "signal", "histogram")

# ---------------------------------------------------------------------------------------------
# Validation and labelling
# ---------------------------------------------------------------------------------------------


def _to_float_array(name: str, data: PriceInput) -> tuple[Float64Array1D, pd.Index | None]:
    """Contiguous float64 copy-or-view of one column, and its index if it was a Series."""
    if isinstance(data, pd.Series):
        dtype, index = data.dtype, data.index
    elif isinstance(data, np.ndarray):
        dtype, index = data.dtype, None
    else:
        raise TypeError(
            f"`{name}` must be a numpy array or a pandas Series, got {type(data).__name__}; "
            f"wrap it with np.asarray(...)"
        )
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise TypeError(
            f"`{name}` must hold numbers, got dtype {dtype}; convert it with .astype(float)"
        )
    if pd.api.types.is_complex_dtype(dtype):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {dtype}; take .real first")
    if isinstance(data, pd.Series):
        values = data.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        if data.ndim != 1:
            raise ValueError(
                f"`{name}` must be one-dimensional (one value per bar), got shape {data.shape}; "
                f"pass a single column such as frame['close']"
            )
        values = data
    return np.ascontiguousarray(values, dtype=np.float64), index


def _to_float_arrays(
    **columns: PriceInput,
) -> tuple[list[Float64Array1D], pd.Index | None]:
    """Convert several columns; they must have one length and, if Series, one index."""
    arrays: list[Float64Array1D] = []
    index: pd.Index | None = None
    first_name = ""
    first_index_name = ""
    for name, data in columns.items():
        values, own_index = _to_float_array(name, data)
        if arrays and values.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"`{first_name}` and `{name}` must have the same length, got "
                f"{arrays[0].shape[0]} and {values.shape[0]}; pass columns of one frame, "
                f"aligned bar by bar"
            )
        if own_index is not None:
            if index is None:
                index, first_index_name = own_index, name
            elif not own_index.equals(index):
                raise ValueError(
                    f"`{first_index_name}` and `{name}` must share one index, but their indexes "
                    f"differ; align them first, e.g. take both columns from one DataFrame"
                )
        if not arrays:
            first_name = name
        arrays.append(values)
    return arrays, index


def _check_window(name: str, value: object) -> int:
    """A look-back length: an integer (not bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer number of bars, got {value!r} "
            f"({type(value).__name__}); {_WINDOW_FIX}"
        )
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}; {_WINDOW_FIX}")
    return int(value)


def _check_windows(name: str, windows: WindowsInput) -> Int64Array1D:
    """A non-empty list of look-back lengths, each an integer >= 1, as int64."""
    if isinstance(windows, (str, bytes)) or not isinstance(windows, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a list or array of integers, got {type(windows).__name__}; "
            f"{_WINDOWS_FIX}"
        )
    items = list(np.asarray(windows).ravel()) if isinstance(windows, np.ndarray) else windows
    if len(items) == 0:
        raise ValueError(f"{name} must hold at least one window, got none; {_WINDOWS_FIX}")
    for position, item in enumerate(items):
        value = item.item() if isinstance(item, np.generic) else item
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(
                f"{name}[{position}] must be an integer number of bars, got {value!r} "
                f"({type(value).__name__}); {_WINDOWS_FIX}"
            )
        if value < 1:
            raise ValueError(f"{name}[{position}] must be >= 1, got {value}; {_WINDOWS_FIX}")
    return np.asarray([int(v) for v in items], dtype=np.int64)


def _check_factor(name: str, value: object, example: str) -> float:
    """A band width multiplier: a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}; pass {example}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}; pass {example}")
    return float(value)


def _check_ddof(ddof: object, windows: Int64Array1D) -> int:
    if isinstance(ddof, bool) or not isinstance(ddof, numbers.Integral):
        raise TypeError(
            f"ddof must be an integer, got {ddof!r}; use ddof=0 (population std, TA-Lib) or "
            f"ddof=1 (sample std, pandas)"
        )
    shortest = int(windows.min())
    ddof = int(ddof)
    if ddof < 0 or ddof >= shortest:
        raise ValueError(
            f"ddof must be >= 0 and < every window, got ddof={ddof} with window={shortest}; "
            f"use ddof=0 (population std, TA-Lib) or ddof=1 (sample std, pandas)"
        )
    return ddof


def _label_series(values: Float64Array1D, index: pd.Index | None, name: str) -> SeriesOutput:
    if index is None:
        return values
    return pd.Series(values, index=index, name=name)


def _label_lines(
    lines: Float64Array2D, index: pd.Index | None, columns: tuple[str, ...]
) -> FrameOutput:
    """(3, n_bars) kernel output -> time-major frame (Series input) or (n_bars, 3) ndarray."""
    if index is None:
        return lines.T
    return pd.DataFrame(lines.T, index=index, columns=list(columns))


def _label_table(
    rows: Float64Array2D, index: pd.Index | None, n_bars: int, columns: pd.Index
) -> pd.DataFrame:
    """(n_columns, n_bars) kernel output -> time-major DataFrame."""
    labels = pd.RangeIndex(n_bars, name="bar") if index is None else index
    return pd.DataFrame(rows.T, index=labels, columns=columns)


def _unique_windows(windows: Int64Array1D) -> tuple[Int64Array1D, Int64Array1D]:
    """Distinct windows (sorted) and, for each requested window, its row among them."""
    unique, inverse = np.unique(windows, return_inverse=True)
    return unique.astype(np.int64), inverse.reshape(-1)


def _window_columns(windows: Int64Array1D) -> pd.Index:
    return pd.Index(windows, name="window")


# ---------------------------------------------------------------------------------------------
# One-column indicators
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Bands and MACD
# ---------------------------------------------------------------------------------------------


def bollinger(close: PriceInput, *, window: int = 20, num_std: float = 2.0) -> FrameOutput:
    """Bollinger bands: SMA -/+ `num_std` population standard deviations (TA-Lib `BBANDS`).

    Parameters
    ----------
    close : ndarray or Series, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    window : int, default 20
        Look-back length in bars, >= 1.
    num_std : float, default 2.0
        Half-width in standard deviations, finite and >= 0.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units; NaN for the first `window - 1` bars.

    Examples
    --------
    >>> bollinger(np.array([1.0, 3.0]), window=2, num_std=1.0)[-1]
    array([1., 2., 3.])
    """
    window = _check_window("window", window)
    num_std = _check_factor("num_std", num_std, "a width in standard deviations such as 2.0")
    (array,), index = _to_float_arrays(close=close)
    return _label_lines(bollinger_nb(array, window, num_std), index, _BAND_COLUMNS)


def keltner(
    high: PriceInput,
    low: PriceInput,
    close: PriceInput,
    *,
    window: int = 20,
    atr_window: int = 10,
    multiplier: float = 2.0,
) -> FrameOutput:
    """Keltner channel: EMA(close, window) -/+ `multiplier` * ATR(atr_window).

    Parameters
    ----------
    high, low, close : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).
    window : int, default 20
        EMA span of the middle line in bars (TA-Lib `EMA` seeding), >= 1.
    atr_window : int, default 10
        Wilder ATR look-back in bars (TA-Lib `ATR`), >= 1.
    multiplier : float, default 2.0
        Half-width in ATRs, finite and >= 0.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units. The middle line starts at bar
        `window - 1`, the bands at bar `max(window - 1, atr_window)`.

    Examples
    --------
    >>> keltner(np.array([2.0, 3.0]), np.array([1.0, 2.0]), np.array([1.5, 2.5]),
    ...         window=1, atr_window=1, multiplier=1.0)[-1]
    array([1. , 2.5, 4. ])
    """
    window = _check_window("window", window)
    atr_window = _check_window("atr_window", atr_window)
    multiplier = _check_factor("multiplier", multiplier, "a width in ATRs such as 2.0")
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    lines = keltner_nb(h, lo, c, window, atr_window, multiplier)
    return _label_lines(lines, index, _BAND_COLUMNS)


def donchian(high: PriceInput, low: PriceInput, *, window: int = 20) -> FrameOutput:
    """Donchian channel: lowest low, midpoint and highest high of the last `window` bars, bar t
    included (TA-Lib `MIN`/`MAX`).

    Parameters
    ----------
    high, low : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).
    window : int, default 20
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units.

    Examples
    --------
    >>> donchian(np.array([2.0, 4.0]), np.array([1.0, 3.0]), window=2)[-1]
    array([1. , 2.5, 4. ])
    """
    window = _check_window("window", window)
    (h, lo), index = _to_float_arrays(high=high, low=low)
    return _label_lines(donchian_nb(h, lo, window), index, _BAND_COLUMNS)


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


# ---------------------------------------------------------------------------------------------
# Tables: one column per window, each distinct window computed once
# ---------------------------------------------------------------------------------------------


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
    unique, rows = _unique_windows(wanted)
    out = sma_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def ema_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`ema` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    unique, rows = _unique_windows(wanted)
    out = ema_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def rma_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`rma` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    unique, rows = _unique_windows(wanted)
    out = rma_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def atr_table(
    high: PriceInput, low: PriceInput, close: PriceInput, *, windows: WindowsInput
) -> pd.DataFrame:
    """`atr` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    unique, rows = _unique_windows(wanted)
    out = atr_table_nb(h, lo, c, unique)[rows]
    return _label_table(out, index, c.shape[0], _window_columns(wanted))


def rsi_table(close: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """`rsi` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(close=close)
    unique, rows = _unique_windows(wanted)
    out = rsi_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def rolling_std_table(values: PriceInput, *, windows: WindowsInput, ddof: int = 0) -> pd.DataFrame:
    """`rolling_std` for every window in `windows` (see `sma_table` for the layout)."""
    wanted = _check_windows("windows", windows)
    ddof = _check_ddof(ddof, wanted)
    (array,), index = _to_float_arrays(values=values)
    unique, rows = _unique_windows(wanted)
    out = rolling_std_table_nb(array, unique, ddof)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def rolling_max_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """Rolling maximum, bar t included (TA-Lib `MAX`), for every window in `windows`."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    unique, rows = _unique_windows(wanted)
    out = rolling_max_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


def rolling_min_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """Rolling minimum, bar t included (TA-Lib `MIN`), for every window in `windows`."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    unique, rows = _unique_windows(wanted)
    out = rolling_min_table_nb(array, unique)[rows]
    return _label_table(out, index, array.shape[0], _window_columns(wanted))


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
