"""Per-bar returns of whole grids: the bars x combinations return matrix the overfitting
statistics need (`ivybt.stats`: PBO by CSCV, the deflated Sharpe ratio).

The same account as the metrics kernels (`ivybt.kernels.evaluate`), writing each bar's
return instead of reducing them; the caller bounds the matrix by the memory budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array2D
from ivybt.kernels.evaluate import account_start_nb, account_step_nb
from ivybt.kernels.grid import (
    TARGET_GUARD,
    UNWRITTEN_TARGET,
    GridPlan,
    block_bounds_nb,
    builtin_target_nb,
    combination_execution_nb,
    expand_to_bars_nb,
    make_guarded_signal,
    targets_ok_nb,
)
from ivybt.kernels.simulate import Execution, restrict_direction_nb, stops_of_nb
from ivybt.kernels.stops import stops_active_nb, stops_returns_nb


@njit(cache=True)
def window_returns_nb(
    prices: Float64Array2D, target: Int8Array1D, start: int, direction: int,
    execution: Execution, traded: Int8Array1D, out_returns: Float64Array1D,
) -> None:  # fmt: skip
    """Per-bar simple returns of `target` traded on bars [start, start + len(out_returns)).

    The account of `simulate_metrics_nb` (same steps, same arithmetic): return t is equity_t /
    equity_(t-1) - 1 with equity_(-1) = the initial cash; flat bars give exactly 0.0. These are
    the returns whose mean / std make the metrics' Sharpe.
    """
    n = out_returns.shape[0]
    restrict_direction_nb(target[start : start + n], direction, traded[:n])
    if stops_active_nb(
        stops_of_nb(execution)
    ):  # stops: the five price rows (`ivybt.kernels.stops`)
        stops_returns_nb(prices[:, start : start + n], traded[:n], execution, out_returns)
        return
    all_open = prices[0]  # 1-D views of a C-contiguous array stay contiguous when sliced
    all_close = prices[1]
    open_ = all_open[start : start + n]
    close = all_close[start : start + n]
    state = account_start_nb(execution.initial_cash)
    for t in range(n):
        wanted = state[0][3]
        price = 0.0
        if execution.fill_on_close:
            wanted = traded[t]
            price = close[t]
        elif t >= 1:
            wanted = traded[t - 1]
            price = open_[t]
        previous = state[1][0]
        state = account_step_nb(state, wanted, price, close[t], execution)
        value = state[1][0]
        out_returns[t] = value / previous - 1.0 if value != previous else 0.0


@njit(cache=True, parallel=True)
def grid_returns_builtin_nb(
    prices: Float64Array2D,
    table: Float64Array2D,
    slots: Int64Array2D,
    params: Float64Array2D,
    plan: GridPlan,
    execution: Execution,
    out_returns: Float64Array2D,
) -> None:
    """Per-bar returns of every combination on the plan's first window, for the statistics of
    `ivybt.stats` (PBO needs a bars x combinations return matrix).

    out_returns : float64, shape (n_window_bars, n_combos), written; column j holds
    combination j's returns (see `window_returns_nb`). Signals as in `grid_builtin_nb`.
    """
    n_combos = params.shape[0]
    n_bars = prices.shape[1]
    start = plan.windows[0, 0]
    n_out = out_returns.shape[0]
    for block in prange(plan.n_blocks):
        signal_target = np.empty(table.shape[1], dtype=np.int8)
        target = np.empty(n_bars, dtype=np.int8)
        traded = np.empty(n_bars, dtype=np.int8)
        column = np.empty(n_out, dtype=np.float64)
        first, last = block_bounds_nb(n_combos, plan.n_blocks, block)
        for j in range(first, last):
            builtin_target_nb(table, slots[j], params[j], plan, signal_target, target)
            traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
            window_returns_nb(prices, target, start, plan.direction, traded_with, traded, column)
            for t in range(n_out):
                out_returns[t, j] = column[t]


def make_returns_kernel(signal_kernel: Callable[..., None]) -> Callable[..., None]:
    """`grid_returns_builtin_nb` for any signal kernel (a user's strategy), checked like
    `ivybt.kernels.grid.make_grid_kernel`: the returned kernel takes the same arguments plus
    `out_bad` (int64, (n_blocks, 3), written: (combination, index, value) of each block's first
    bad target, index -1 when the kernel raised, combination -1 when none); columns of a
    block that stopped are unset."""
    unwritten = UNWRITTEN_TARGET  # closure constants, frozen into the kernel
    guard = TARGET_GUARD
    guarded_signal_nb = make_guarded_signal(signal_kernel)

    @njit(parallel=True)
    def grid_returns_custom_nb(
        prices: Float64Array2D,
        table: Float64Array2D,
        slots: Int64Array2D,
        params: Float64Array2D,
        plan: GridPlan,
        execution: Execution,
        out_returns: Float64Array2D,
        out_bad: Int64Array2D,
    ) -> None:
        n_bars = prices.shape[1]
        n_signal = table.shape[1]
        n_out = out_returns.shape[0]
        mapped = plan.signal_of.shape[0] > 0
        for block in prange(plan.n_blocks):
            out_bad[block, 0] = -1
            buffer = np.empty(n_signal + guard, dtype=np.int8)
            signal_target = buffer[:n_signal]
            target = np.empty(n_bars, dtype=np.int8)
            traded = np.empty(n_bars, dtype=np.int8)
            column = np.empty(n_out, dtype=np.float64)
            first, last = block_bounds_nb(params.shape[0], plan.n_blocks, block)
            for j in range(first, last):
                buffer[:] = unwritten
                ran = guarded_signal_nb(table, slots[j], params[j], signal_target)
                if not targets_ok_nb(ran, buffer, n_signal, unwritten, j, out_bad[block]):
                    break
                if mapped:
                    expand_to_bars_nb(signal_target, plan.signal_of, target)
                else:
                    target[:] = signal_target
                traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
                window_returns_nb(prices, target, plan.windows[0, 0], plan.direction,
                                  traded_with, traded, column)  # fmt: skip
                for t in range(n_out):
                    out_returns[t, j] = column[t]

    return grid_returns_custom_nb
