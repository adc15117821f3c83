"""Per-block return statistics of whole grids, for PBO (CSCV), without a returns matrix.

The probability of backtest overfitting needs, for every combination, the sum, the sum of
squares and the flat level of its per-bar returns over each of 16 blocks of bars
(`ivybt.kernels.cscv.block_stats_nb`). Writing the bars x combinations return matrix first
(`ivybt.kernels.grid_returns`) and reducing it costs 8 bytes per bar and combination and,
column by column into a row-major matrix, a cache miss per write: most of the overfitting
statistics' time on long series. Here each thread computes one combination's returns into
its own buffer and reduces them at once, so memory is one buffer per thread and the tables
equal `block_stats_nb` of the matrix bit for bit (same values, same order of additions).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int8Array1D,
    Int64Array2D,
)
from ivybt.kernels.evaluate import account_start_nb, account_step_nb
from ivybt.kernels.grid import (
    GridPlan,
    block_bounds_nb,
    builtin_target_nb,
    combination_execution_nb,
)
from ivybt.kernels.grid_returns import window_returns_nb
from ivybt.kernels.signals import _follow_sign_nb, difference_signs_nb
from ivybt.kernels.simulate import Execution, stops_of_nb
from ivybt.kernels.stops import stops_active_nb


@njit(cache=True)
def column_block_stats_nb(column: Float64Array1D, j: int, out_tables: Float64Array3D) -> None:
    """Write column j of the block tables of `column[dropped:]` cut into equal blocks, the
    n mod n_blocks oldest rows dropped: `block_stats_nb` for one column (NaN counts as 0.0;
    a block's level is its common value when every row is equal, else NaN), with the same
    additions in the same order, so the results are equal bit for bit.

    out_tables : float64, shape (3, n_blocks, n_combos): sums, sums of squares, levels.
    """
    n_blocks = out_tables.shape[1]
    rows_per_block = column.shape[0] // n_blocks
    dropped = column.shape[0] - rows_per_block * n_blocks
    for b in range(n_blocks):
        start = dropped + b * rows_per_block
        first = column[start]
        level = 0.0 if math.isnan(first) else first
        total = 0.0
        squares = 0.0
        for t in range(start, start + rows_per_block):
            value = column[t]
            if math.isnan(value):
                value = 0.0
            total += value
            squares += value * value
            if value != level:  # also true once level is NaN: it stays NaN
                level = np.nan
        out_tables[0, b, j] = total
        out_tables[1, b, j] = squares
        out_tables[2, b, j] = level


@njit(cache=True)
def follow_sign_block_stats_nb(
    open_: Float64Array1D, close: Float64Array1D, signs: Int8Array1D, first: int,
    direction: int, execution: Execution, j: int, out_tables: Float64Array3D,
) -> None:  # fmt: skip
    """Column j of the block tables of a crossover's per-bar returns on bars [first, n), in
    one pass: the side follows `signs` as `follow_sign_metrics_nb` does, each bar's return
    is the account step of `window_returns_nb` and goes straight into its block's sums
    (`column_block_stats_nb`'s additions, in its order), so no return is stored."""
    n_bars = close.shape[0]
    n_blocks = out_tables.shape[1]
    rows_per_block = (n_bars - first) // n_blocks
    dropped = n_bars - first - rows_per_block * n_blocks
    forbidden = -direction if direction != 0 else 2  # `restrict_side_nb` as one comparison
    last_sign = 0
    signal = 0
    previous = 0  # the restricted signal of the bar before
    state = account_start_nb(execution.initial_cash)
    block = -1
    left = 0  # rows of the current block still to come (no division per bar)
    total = 0.0
    squares = 0.0
    level = 0.0
    for t in range(n_bars):
        last_sign, signal = _follow_sign_nb(signs[t], last_sign, signal)
        current = 0 if signal == forbidden else signal
        if t >= first:
            wanted = state[0][3]
            price = 0.0
            if execution.fill_on_close:
                wanted = current
                price = close[t]
            elif t > first:
                wanted = previous
                price = open_[t]
            before = state[1][0]
            state = account_step_nb(state, wanted, price, close[t], execution)
            value = state[1][0]
            if t >= first + dropped:
                change = value / before - 1.0 if value != before else 0.0
                if math.isnan(change):
                    change = 0.0
                if left == 0:  # a block starts
                    block += 1
                    left = rows_per_block
                    total = 0.0
                    squares = 0.0
                    level = change
                total += change
                squares += change * change
                if change != level:
                    level = np.nan
                left -= 1
                if left == 0:
                    out_tables[0, block, j] = total
                    out_tables[1, block, j] = squares
                    out_tables[2, block, j] = level
        previous = current


@njit(cache=True, parallel=True)
def grid_block_stats_builtin_nb(
    prices: Float64Array2D,
    table: Float64Array2D,
    slots: Int64Array2D,
    params: Float64Array2D,
    plan: GridPlan,
    execution: Execution,
    n_blocks: int,
) -> Float64Array3D:
    """Block tables of every combination's per-bar returns on the plan's first window.

    Parameters
    ----------
    prices, table, slots, params, plan, execution
        As for `ivybt.kernels.grid_returns.grid_returns_builtin_nb` (a built-in strategy);
        the window must end at the last bar.
    n_blocks : int
        Blocks of bars (16 for PBO). The window's n mod n_blocks OLDEST returns are dropped
        so the blocks are equal, as `ivybt.stats.pbo.block_tables` does; the caller checks
        n >= 2 x n_blocks.

    Returns
    -------
    tables : float64, shape (3, n_blocks, n_combos)
        Sums, sums of squares and levels, equal bit for bit to `block_stats_nb` of the
        returns matrix `grid_returns_builtin_nb` writes (its rows after the dropped ones).
        Crossovers on their own bars follow the signs in one pass
        (`follow_sign_block_stats_nb`), like `grid_builtin_nb`.
    """
    n_combos = params.shape[0]
    n_bars = prices.shape[1]
    start = plan.windows[0, 0]
    n_out = n_bars - start
    mapped = plan.signal_of.shape[0] > 0
    tables = np.empty((3, n_blocks, n_combos), dtype=np.float64)
    zeros = np.zeros(n_bars, dtype=np.float64)
    open_ = prices[0]
    close = prices[1]
    for block in prange(plan.n_blocks):
        signal_target = np.empty(table.shape[1], dtype=np.int8)
        target = np.empty(n_bars, dtype=np.int8)
        traded = np.empty(n_bars, dtype=np.int8)
        column = np.empty(n_out, dtype=np.float64)
        first, last = block_bounds_nb(n_combos, plan.n_blocks, block)
        for j in range(first, last):
            traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
            exits = stops_active_nb(stops_of_nb(traded_with))
            if plan.code < 2 and not mapped and not exits:  # crossovers: a difference's sign
                base = table[slots[j, 1]] if plan.code == 0 else zeros
                difference_signs_nb(table[slots[j, 0]], base, target)
                follow_sign_block_stats_nb(open_, close, target, start, plan.direction,
                                           execution, j, tables)  # fmt: skip
                continue
            builtin_target_nb(table, slots[j], params[j], plan, signal_target, target)
            window_returns_nb(prices, target, start, plan.direction, traded_with, traded,
                              column)  # fmt: skip
            column_block_stats_nb(column, j, tables)
    return tables
