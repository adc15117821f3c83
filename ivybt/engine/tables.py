"""Indicator tables: every distinct indicator a set of strategies needs, computed once.

`indicator_table(columns, indicators)` groups the requested `Indicator`s by kind and source and
calls one table kernel per group (e.g. one cumulative sum for every SMA window), returning a
float64 array of shape (n_distinct, n_bars) and the row of each indicator. A single backtest
asks for a handful of rows; a grid (issue #5) asks once for the union over all combinations.

A pandas-ta indicator (`Indicator.ta`) is one call of pandas-ta per distinct set of settings
(`ivybt.indicators.ta.ta_rows`); an indicator on a higher timeframe is computed on the bars
`ivybt.bars.timeframes.resample` makes of `columns` (which then need their `time` column) and
put back on the run's bars with the visibility rule stated there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D
from ivybt.bars.timeframes import TIME, on_base_bars, resample
from ivybt.data.timestamps import time_column
from ivybt.kernels.bands import macd_hist_table_nb
from ivybt.kernels.indicators import ema_table_nb, rma_table_nb, sma_table_nb
from ivybt.kernels.rolling import (
    rolling_max_table_nb,
    rolling_min_table_nb,
    rolling_std_table_nb,
)
from ivybt.kernels.wilder import atr_table_nb, rsi_table_nb
from ivybt.strategies.base import TA_KIND, Indicator

Columns = Mapping[str, Float64Array1D]


def _windows(group: list[Indicator], position: int = 0) -> Int64Array1D:
    return np.array([indicator.args[position] for indicator in group], dtype=np.int64)


def _single_window(
    kernel: Callable[[Float64Array1D, Int64Array1D], Float64Array2D],
) -> Callable[[Columns, str, list[Indicator]], Float64Array2D]:
    def compute(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
        return kernel(columns[source], _windows(group))

    return compute


def _price(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
    return np.ascontiguousarray(columns[source], dtype=np.float64)[np.newaxis, :]


def _std(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
    return rolling_std_table_nb(columns[source], _windows(group), 0)


def _atr(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
    return atr_table_nb(columns["high"], columns["low"], columns["close"], _windows(group))


def _macd_hist(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
    return macd_hist_table_nb(
        columns[source], _windows(group, 0), _windows(group, 1), _windows(group, 2)
    )


def _ta(columns: Columns, source: str, group: list[Indicator]) -> Float64Array2D:
    """pandas-ta rows: one call per distinct function and settings, its columns picked
    (`ivybt.indicators.ta.ta_table`: cached for the run, calls spread over processes)."""
    from ivybt.indicators.ta import TaCall, ta_table

    calls: dict[TaCall, list[int]] = defaultdict(list)
    for k, ind in enumerate(group):
        calls[TaCall(ind.function, tuple(ind.settings.items()), source)].append(k)
    wanted = {call: [group[k].column for k in members] for call, members in calls.items()}
    out = np.empty((len(group), len(columns["close"])), dtype=np.float64)
    for call, rows in ta_table(columns, wanted).items():
        out[calls[call]] = rows
    return out


_COMPUTE: dict[str, Callable[[Columns, str, list[Indicator]], Float64Array2D]] = {
    TA_KIND: _ta,
    "price": _price,
    "sma": _single_window(sma_table_nb),
    "ema": _single_window(ema_table_nb),
    "rma": _single_window(rma_table_nb),
    "std": _std,
    "rsi": _single_window(rsi_table_nb),
    "atr": _atr,
    "rolling_max": _single_window(rolling_max_table_nb),
    "rolling_min": _single_window(rolling_min_table_nb),
    "macd_hist": _macd_hist,
}


def indicator_table(
    columns: Columns, indicators: Iterable[Indicator]
) -> tuple[Float64Array2D, dict[Indicator, int]]:
    """Compute each distinct indicator once.

    Parameters
    ----------
    columns : mapping of str to float64 arrays, shape (n_bars,)
        Bar columns by name (open, high, low, close, volume), C-contiguous float64.
    indicators : iterable of Indicator
        Requested indicators; duplicates are computed once.

    Returns
    -------
    table : float64, shape (n_distinct, n_bars)
        One row per distinct indicator, warm-up cells NaN.
    rows : dict of Indicator to int
        The table row of each distinct indicator.
    """
    timeframes: dict[str, list[Indicator]] = defaultdict(list)
    for indicator in dict.fromkeys(indicators):
        timeframes[indicator.timeframe].append(indicator)
    rows: dict[Indicator, int] = {}
    blocks: list[Float64Array2D] = []
    for timeframe, group in timeframes.items():
        if timeframe:
            htf_columns, visible = resample(columns, timeframe)
            on_htf = [replace(indicator, timeframe="") for indicator in group]
            htf_table, htf_rows = _base_table(htf_columns, on_htf)
            block = on_base_bars(htf_table, visible)
            found = {ind: htf_rows[own] for ind, own in zip(group, on_htf, strict=True)}
        else:
            block, found = _base_table(columns, group)
        first = sum(len(b) for b in blocks)
        rows.update({indicator: first + row for indicator, row in found.items()})
        blocks.append(block)
    # one group (the usual grid) is returned as computed: no second copy of a large table
    if not blocks:
        return np.empty((0, len(columns["close"])), dtype=np.float64), rows
    table = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return table, rows


def _base_table(
    columns: Columns, indicators: list[Indicator]
) -> tuple[Float64Array2D, dict[Indicator, int]]:
    """`indicator_table` of indicators on the bars of `columns` themselves."""
    groups: dict[tuple[str, str], list[Indicator]] = defaultdict(list)
    for indicator in indicators:
        source = "close" if indicator.kind == "atr" else indicator.source
        groups[(indicator.kind, source)].append(indicator)
    rows: dict[Indicator, int] = {}
    blocks = []
    for (kind, source), group in groups.items():
        block = _COMPUTE[kind](columns, source, group)
        first = sum(len(b) for b in blocks)
        for offset, indicator in enumerate(group):
            rows[indicator] = first + min(offset, block.shape[0] - 1)
        blocks.append(block)
    if not blocks:
        return np.empty((0, len(columns["close"])), dtype=np.float64), rows
    table = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return table, rows


def bar_columns(frame: object) -> dict[str, Float64Array1D]:
    """The OHLCV columns of a validated bar frame as C-contiguous float64 arrays (copies), and
    its timestamps as `time` (int64 ns, `ivybt.bars.timeframes.TIME`) when it has them."""
    columns = {
        name: np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64, copy=True))  # type: ignore[index]
        for name in ("open", "high", "low", "close", "volume")
        if name in frame  # type: ignore[operator]
    }
    stamps = time_column(getattr(frame, "index", None))
    if stamps is not None:
        columns[TIME] = stamps
    return columns
