"""Whole parameter grids in one parallel pass: combinations -> metrics, nothing bars x combos.

Every combination reads its indicator rows from one shared table (computed once per distinct
indicator), writes its targets into a buffer owned by its thread, and is simulated and
measured in one fused pass (`ivybt.kernels.evaluate`) that leaves only its metrics behind.
Threads own contiguous blocks of combinations, so no two threads write
the same element and results do not depend on the thread count.

Built-in strategies run through `grid_builtin_nb`, which is cached: it picks the signal kernel by
an integer code (`SIGNAL_CODES`), because Numba cannot cache a kernel that receives another
kernel as an argument. A user's strategy runs through `make_grid_kernel(signal_kernel)`, compiled
once per process.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Int8Array1D,
    Int64Array1D,
    Int64Array2D,
)
from ivybt.kernels.evaluate import simulate_metrics_nb
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.signals import (
    bbkc_squeeze_signal_nb,
    bollinger_reversion_signal_nb,
    cross_signal_nb,
    donchian_breakout_signal_nb,
    rsi_reversion_signal_nb,
    zero_cross_signal_nb,
)
from ivybt.kernels.simulate import Execution, restrict_direction_nb

SIGNAL_CODES: dict[Callable[..., None], int] = {
    cross_signal_nb: 0,
    zero_cross_signal_nb: 1,
    rsi_reversion_signal_nb: 2,
    bollinger_reversion_signal_nb: 3,
    donchian_breakout_signal_nb: 4,
    bbkc_squeeze_signal_nb: 5,
}
"""The built-in signal kernels `grid_builtin_nb` can run, by code."""


@njit(cache=True)
def builtin_signal_nb(
    code: int,
    table: Float64Array2D,
    rows: Int64Array1D,
    params: Float64Array1D,
    out_target: Int8Array1D,
) -> None:
    """Run the built-in signal kernel with `SIGNAL_CODES` value `code` (see kernels.signals)."""
    if code == 0:
        cross_signal_nb(table, rows, params, out_target)
    elif code == 1:
        zero_cross_signal_nb(table, rows, params, out_target)
    elif code == 2:
        rsi_reversion_signal_nb(table, rows, params, out_target)
    elif code == 3:
        bollinger_reversion_signal_nb(table, rows, params, out_target)
    elif code == 4:
        donchian_breakout_signal_nb(table, rows, params, out_target)
    else:
        bbkc_squeeze_signal_nb(table, rows, params, out_target)


@njit(cache=True)
def block_bounds_nb(n_combos: int, n_blocks: int, block: int) -> tuple[int, int]:
    """[start, stop) of `block` when `n_combos` are cut into `n_blocks` contiguous blocks."""
    size = (n_combos + n_blocks - 1) // n_blocks
    start = min(block * size, n_combos)
    return start, min(start + size, n_combos)


@njit(cache=True, parallel=True)
def grid_builtin_nb(
    prices: Float64Array2D,
    table: Float64Array2D,
    slots: Int64Array2D,
    params: Float64Array2D,
    settings: Int64Array1D,
    execution: Execution,
    periods_per_year: float,
) -> Float64Array2D:
    """Metrics of every combination of a built-in strategy.

    Parameters
    ----------
    prices : float64, shape (2, n_bars)
        Open and close of every bar the signals see.
    table : float64, shape (n_rows, n_bars)
        Indicator rows, each computed once (`ivybt.tables.indicator_table`).
    slots : int64, shape (n_combos, n_slots)
        For each combination, the table row of each of the strategy's indicator slots.
    params : float64, shape (n_combos, n_params)
        Each combination's parameters, in the strategy's declaration order.
    settings : int64, shape (4,)
        (signal code from `SIGNAL_CODES`, direction: +1 long-only, -1 short-only, 0 both,
        first traded bar, number of blocks): signals run over all bars, trading and metrics
        from the first traded bar on (a test part warms up on the training bars); the
        combinations are cut into that many contiguous blocks (a few per thread balances
        the load).
    execution : Execution
        Costs, sizing, fill timing, initial cash.
    periods_per_year : float
        Bars per year, for annualising.

    Returns
    -------
    out : float64, shape (n_combos, N_METRICS)
        Row j equals the single backtest of combination j (`ivybt.simulation`), bit for bit.

    Notes
    -----
    The traded window and each target are copied into C-contiguous arrays, so the fused
    kernel runs the very specialisation a single backtest runs: with strided views Numba
    compiles another one, whose floating-point results differed in the last bit.
    """
    n_combos = params.shape[0]
    n_bars = prices.shape[1]
    first = settings[2]
    open_ = np.ascontiguousarray(prices[0, first:])
    close = np.ascontiguousarray(prices[1, first:])
    out = np.empty((n_combos, N_METRICS), dtype=np.float64)
    n_blocks = settings[3]
    for block in prange(n_blocks):
        target = np.empty(n_bars, dtype=np.int8)
        traded = np.empty(n_bars - first, dtype=np.int8)
        start, stop = block_bounds_nb(n_combos, n_blocks, block)
        for j in range(start, stop):
            builtin_signal_nb(settings[0], table, slots[j], params[j], target)
            restrict_direction_nb(target[first:], settings[1], traded)
            simulate_metrics_nb(open_, close, traded, execution, periods_per_year, out[j])
    return out


def make_grid_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Float64Array2D]:
    """`grid_builtin_nb` for any signal kernel (a user's strategy); compiled once per process.

    The returned kernel takes the same arguments; the signal code in `settings` is unused.
    """

    @njit(parallel=True)
    def grid_custom_nb(
        prices: Float64Array2D,
        table: Float64Array2D,
        slots: Int64Array2D,
        params: Float64Array2D,
        settings: Int64Array1D,
        execution: Execution,
        periods_per_year: float,
    ) -> Float64Array2D:
        n_combos = params.shape[0]
        n_bars = prices.shape[1]
        first = settings[2]
        open_ = np.ascontiguousarray(prices[0, first:])
        close = np.ascontiguousarray(prices[1, first:])
        out = np.empty((n_combos, N_METRICS), dtype=np.float64)
        n_blocks = settings[3]
        for block in prange(n_blocks):
            target = np.empty(n_bars, dtype=np.int8)
            traded = np.empty(n_bars - first, dtype=np.int8)
            start, stop = block_bounds_nb(n_combos, n_blocks, block)
            for j in range(start, stop):
                signal_kernel(table, slots[j], params[j], target)
                restrict_direction_nb(target[first:], settings[1], traded)
                simulate_metrics_nb(open_, close, traded, execution, periods_per_year, out[j])
        return out

    return grid_custom_nb
