"""Technical indicators: validated, labelled wrappers around `ivybt.kernels.indicators`,
`ivybt.kernels.wilder`, `ivybt.kernels.rolling` and `ivybt.kernels.bands`.

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

# The type aliases of the signatures, for callers that annotate with them.
from ivybt.indicators._checks import PriceInput as PriceInput
from ivybt.indicators._checks import WindowsInput as WindowsInput
from ivybt.indicators._labels import FrameOutput as FrameOutput
from ivybt.indicators._labels import SeriesOutput as SeriesOutput
from ivybt.indicators.bands import bollinger, donchian, keltner
from ivybt.indicators.extremes import rolling_max_table, rolling_min_table
from ivybt.indicators.moving import ema, ema_table, rma, rma_table, sma, sma_table
from ivybt.indicators.oscillators import macd, macd_hist_table, rsi, rsi_table
from ivybt.indicators.volatility import atr, atr_table, rolling_std, rolling_std_table, true_range

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
