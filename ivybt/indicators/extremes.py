"""Rolling extremes: the highest and lowest value of the last bars, bar t included, as a table
of windows. Kernels: `ivybt.kernels.rolling`."""

from __future__ import annotations

import pandas as pd

from ivybt.indicators._checks import PriceInput, WindowsInput, _check_windows, _to_float_arrays
from ivybt.indicators._labels import _window_table
from ivybt.kernels.rolling import rolling_max_table_nb, rolling_min_table_nb


def rolling_max_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """Rolling maximum, bar t included (TA-Lib `MAX`), for every window in `windows`."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(
        lambda unique: rolling_max_table_nb(array, unique), wanted, index, array.shape[0]
    )


def rolling_min_table(values: PriceInput, *, windows: WindowsInput) -> pd.DataFrame:
    """Rolling minimum, bar t included (TA-Lib `MIN`), for every window in `windows`."""
    wanted = _check_windows("windows", windows)
    (array,), index = _to_float_arrays(values=values)
    return _window_table(
        lambda unique: rolling_min_table_nb(array, unique), wanted, index, array.shape[0]
    )
