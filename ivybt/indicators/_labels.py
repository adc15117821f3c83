"""Output labelling shared by the indicator wrappers: kernel arrays become a Series or DataFrame
indexed like the input (or stay ndarrays for ndarray input), and tables get one column per window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D

type SeriesOutput = Float64Array1D | pd.Series
type FrameOutput = Float64Array2D | pd.DataFrame


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


def _window_table(
    compute: Callable[[Int64Array1D], Float64Array2D],
    wanted: Int64Array1D,
    index: pd.Index | None,
    n_bars: int,
) -> pd.DataFrame:
    """Run a table kernel (`compute(distinct_windows)`) once per distinct window and label one
    column per requested window, duplicates included, in the order asked."""
    unique, rows = _unique_windows(wanted)
    return _label_table(compute(unique)[rows], index, n_bars, _window_columns(wanted))
