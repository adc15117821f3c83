"""Argument checks shared by the indicator wrappers: price columns to contiguous float64 arrays,
look-back windows, band width factors and ddof. Errors name the rule, the value seen and a fix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Int64Array1D

type PriceInput = np.ndarray | pd.Series
"""One price column: an ndarray or a Series of numbers, one value per bar, oldest first."""

type WindowsInput = Sequence[int] | np.ndarray

_WINDOW_FIX = "pass a look-back length in bars such as 14"
_WINDOWS_FIX = "pass look-back lengths in bars such as [10, 20, 50]"


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
