"""Per-block return statistics of whole grids, for PBO (CSCV), without a returns matrix.

The probability of backtest overfitting needs, for every combination, the sum, the sum of
squares and the flat level of its per-bar returns over each of 16 blocks of bars
(`ivybt.kernels.cscv.block_stats_nb`). Writing the bars x combinations return matrix first
(`ivybt.kernels.grid_returns`) and reducing it costs 8 bytes per bar and combination and,
column by column into a row-major matrix, a cache miss per write: most of the overfitting
statistics' time on long series. Here each combination's returns go straight into its
blocks: the account steps only on the bars where it trades, and each held run adds its
returns' sums per block from the prefix sums of `ivybt.kernels.holding` (O(1) per trade and
block crossed), so the tables equal `block_stats_nb` of the matrix to 1e-12 relative (the
sums added in another order, `ivybt.kernels.holding` says why). Combinations with exits
(stops) compute their returns column per bar and reduce it with the matrix's additions, bit
for bit.
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
    Int64Array1D,
    Int64Array2D,
)
from ivybt.kernels.evaluate import AccountState, account_start_nb, account_step_nb, hold_nb
from ivybt.kernels.grid import (
    GridPlan,
    block_bounds_nb,
    builtin_target_nb,
    combination_execution_nb,
    first_move_at_nb,
    plan_close_tables_nb,
)
from ivybt.kernels.grid_returns import window_returns_nb
from ivybt.kernels.holding import (
    CASH_TOLERANCE,
    USABLE,
    CloseTables,
    next_trade_bar_nb,
    prefix_differences_nb,
)
from ivybt.kernels.signals import move_bar_nb, move_sign_nb, sign_moves_nb
from ivybt.kernels.simulate import Execution, restrict_direction_nb, stops_of_nb
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


Blocks = tuple[Float64Array3D, Int64Array1D, int, int, int]
"""Where a combination's returns go: (out_tables (3, n_blocks, n_combos), counts (n_blocks,)
int64 scratch, the combination's column j, the first counted bar, rows per block)."""


@njit(cache=True)
def blocks_start_nb(blocks: Blocks) -> None:
    """Empty column j of the block tables before its returns are added."""
    out, counts, j, _, _ = blocks
    out[:, :, j] = 0.0
    counts[:] = 0


@njit(cache=True)
def block_add_nb(blocks: Blocks, t: int, value: float) -> None:
    """Add bar t's return (NaN counts as 0.0, as `column_block_stats_nb`) to its block, if t
    is counted; `counts` holds the non-zero returns seen, the level the first of them or NaN
    once another differs."""
    out, counts, j, counted_from, rows = blocks
    if t < counted_from:
        return
    if math.isnan(value):
        value = 0.0
    block = (t - counted_from) // rows
    out[0, block, j] += value
    out[1, block, j] += value * value
    if value != 0.0:
        if counts[block] == 0:
            out[2, block, j] = value
        elif value != out[2, block, j]:
            out[2, block, j] = np.nan
        counts[block] += 1


@njit(cache=True)
def blocks_finish_nb(blocks: Blocks) -> None:
    """Levels from what was added: 0.0 for a block of zero returns only, the common value when
    every return of the block is that one non-zero value, else NaN."""
    out, counts, j, _, rows = blocks
    for block in range(counts.shape[0]):
        if counts[block] == 0:
            out[2, block, j] = 0.0
        elif counts[block] < rows:
            out[2, block, j] = np.nan


@njit(cache=True)
def block_hold_nb(
    state: AccountState, close: Float64Array1D, a: int, b: int, tables: CloseTables,
    blocks: Blocks,
) -> AccountState:  # fmt: skip
    """`hold_nb` over bars [a, b), adding the run's returns to their blocks.

    A run the tables settle (`hold_returns_nb`) adds, per block it crosses, the difference of
    the compensated prefix sums of r and r^2; its returns are all 0 when that of r^2 is 0
    (a return that moves adds r^2 >= eps^2, which the low parts keep), else the block's level
    is NaN (a held run whose every return is the same non-zero number to the last bit, a
    geometric close, also counts as varying here).
    Any other run is walked bar by bar with the per-bar account's returns.
    """
    position, _, _ = state
    cash = position[0]
    units = position[1]
    usable = tables[USABLE]
    if b <= a or (units == 0.0 and usable):
        return state
    out, counts, j, counted_from, rows = blocks
    if usable and units > 0.0 and abs(cash) <= CASH_TOLERANCE * units * close[a - 1]:
        sums = tables[0]
        p = max(a, counted_from)
        while p < b:
            block = (p - counted_from) // rows
            q = min(b, counted_from + (block + 1) * rows)
            run_total, run_squares, _ = prefix_differences_nb(sums, p, q)
            out[0, block, j] += run_total
            out[1, block, j] += run_squares
            if run_squares != 0.0:  # a return moved (r^2 >= eps^2, kept by the low parts)
                out[2, block, j] = np.nan
                counts[block] += q - p
            p = q
    else:
        previous = state[1][0]
        for t in range(a, b):
            value = cash + units * close[t]
            block_add_nb(blocks, t, value / previous - 1.0 if value != previous else 0.0)
            previous = value
    return hold_nb(state, close, a, b, tables)


@njit(cache=True)
def block_trade_at_nb(
    state: AccountState, t: int, wanted: int, prices: Float64Array2D, done: int,
    execution: Execution, tables: CloseTables, blocks: Blocks,
) -> AccountState:  # fmt: skip
    """`trade_at_nb`, adding the returns of the bars held before and of bar t to the blocks."""
    close = prices[1]
    price = close[t] if execution.fill_on_close else prices[0][t]
    state = block_hold_nb(state, close, done, t, tables, blocks)
    before = state[1][0]
    state = account_step_nb(state, wanted, price, close[t], execution)
    value = state[1][0]
    block_add_nb(blocks, t, value / before - 1.0 if value != before else 0.0)
    return state


@njit(cache=True)
def follow_moves_block_stats_nb(
    prices: Float64Array2D, moves: Int64Array1D, start: int, direction: int,
    execution: Execution, tables: CloseTables, blocks: Blocks,
) -> None:  # fmt: skip
    """Column j of the block tables of a crossover's per-bar returns on bars [start, n), from
    its sign's moves (`sign_moves_nb`): the account of
    `ivybt.kernels.grid.follow_moves_metrics_nb` (the same steps on the same bars), each
    step's return and each held run's returns added to their blocks."""
    n = prices.shape[1]
    lag = 0 if execution.fill_on_close else 1
    forbidden = -direction if direction != 0 else 2
    n_moves = moves.shape[0]
    k = first_move_at_nb(moves, start)
    signal = move_sign_nb(moves[k - 1]) if k >= 2 else 0
    blocks_start_nb(blocks)
    state = account_start_nb(execution.initial_cash)
    done = start
    wanted = np.int64(0)
    stop = n - lag
    carried = start < stop and (k == n_moves or move_bar_nb(moves[k]) != start)
    while carried or k < n_moves:  # as `follow_moves_metrics_nb`
        t = start
        if not carried:
            t = move_bar_nb(moves[k])
            if t >= stop:
                break
            if k >= 1:
                signal = move_sign_nb(moves[k])
            k += 1
        carried = False
        current = 0 if signal == forbidden else signal
        if current != wanted:
            wanted = current
            state = block_trade_at_nb(state, t + lag, wanted, prices, done, execution, tables,
                                      blocks)  # fmt: skip
            done = t + lag + 1
    block_hold_nb(state, prices[1], done, n, tables, blocks)
    blocks_finish_nb(blocks)


@njit(cache=True)
def target_block_stats_nb(
    prices: Float64Array2D, traded: Int8Array1D, start: int, execution: Execution,
    tables: CloseTables, blocks: Blocks,
) -> None:  # fmt: skip
    """Column j of the block tables of `traded`'s per-bar returns on bars [start, n) (its
    direction applied): the account of `ivybt.kernels.evaluate.target_metrics_nb`, each step's
    return and each held run's returns added to their blocks."""
    n = prices.shape[1]
    lag = 0 if execution.fill_on_close else 1
    blocks_start_nb(blocks)
    state = account_start_nb(execution.initial_cash)
    done = start
    wanted = np.int64(0)  # not the literal 0, for which Numba compiles every callee again
    t = next_trade_bar_nb(traded, start + lag, n, lag, wanted)
    while t < n:
        wanted = np.int64(traded[t - lag])
        state = block_trade_at_nb(state, t, wanted, prices, done, execution, tables, blocks)
        done = t + 1
        t = next_trade_bar_nb(traded, t + 1, n, lag, wanted)
    block_hold_nb(state, prices[1], done, n, tables, blocks)
    blocks_finish_nb(blocks)


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
        Sums, sums of squares and levels of the returns matrix `grid_returns_builtin_nb`
        writes (its rows after the dropped ones): equal to `block_stats_nb` of it to 1e-12
        relative (levels exactly but for the case `block_hold_nb` names) when the account
        steps only where it trades (`follow_moves_block_stats_nb` for crossovers on their own
        bars, as `grid_builtin_nb`; `target_block_stats_nb` for the rest), bit for bit with
        exits (the returns column then reduced by `column_block_stats_nb`).
    """
    n_combos = params.shape[0]
    n_bars = prices.shape[1]
    start = plan.windows[0, 0]
    n_out = n_bars - start
    mapped = plan.signal_of.shape[0] > 0
    tables = np.empty((3, n_blocks, n_combos), dtype=np.float64)
    zeros = np.zeros(n_bars, dtype=np.float64)
    rows = n_out // n_blocks
    counted_from = n_bars - rows * n_blocks  # the oldest n_out mod n_blocks bars are dropped
    close_tables = plan_close_tables_nb(plan, prices[1])
    for block in prange(plan.n_blocks):
        signal_target = np.empty(table.shape[1], dtype=np.int8)
        target = np.empty(n_bars, dtype=np.int8)
        traded = np.empty(n_bars, dtype=np.int8)
        column = np.empty(n_out, dtype=np.float64)
        counts = np.zeros(n_blocks, dtype=np.int64)
        moves = np.empty(n_bars, dtype=np.int64)
        first, last = block_bounds_nb(n_combos, plan.n_blocks, block)
        for j in range(first, last):
            traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
            exits = stops_active_nb(stops_of_nb(traded_with))
            blocks = (tables, counts, j, counted_from, rows)
            if plan.code < 2 and not mapped and not exits:  # crossovers: a difference's sign
                base = table[slots[j, 1]] if plan.code == 0 else zeros
                count = sign_moves_nb(table[slots[j, 0]], base, n_bars, moves)
                follow_moves_block_stats_nb(prices, moves[:count], start, plan.direction,
                                            execution, close_tables, blocks)  # fmt: skip
                continue
            builtin_target_nb(table, slots[j], params[j], plan, signal_target, target)
            if not exits:
                restrict_direction_nb(target, plan.direction, traded)
                target_block_stats_nb(prices, traded, start, execution, close_tables, blocks)
                continue
            window_returns_nb(prices, target, start, plan.direction, traded_with, traded,
                              column)  # fmt: skip
            column_block_stats_nb(column, j, tables)
    return tables
