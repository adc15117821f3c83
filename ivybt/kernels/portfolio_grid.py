"""Whole parameter grids of a portfolio in one parallel pass: combinations -> metrics.

Each combination runs the strategy's signal kernel on every symbol's own bars (the indicator
rows of each symbol computed once, shared by all combinations), puts the sides on the union
bars (`expand_symbol_nb`), and simulates the account (`ivybt.kernels.portfolio.portfolio_nb`)
on each window, keeping only the metrics. A thread owns one (bars x symbols) target buffer
and the account's scratch, so memory does not grow with the number of combinations, and
row j equals the portfolio backtest of combination j bit for bit (same kernels, same order).
A combination may carry its own exits (`-p sl=...`: `GridPlan.exit_column`), which its
account trades with (`combination_rules_nb`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int8Array1D,
    Int64Array1D,
    Int64Array2D,
    RecordArray1D,
)
from ivybt.kernels.grid import (
    TARGET_GUARD,
    UNWRITTEN_TARGET,
    GridPlan,
    builtin_signal_nb,
    make_guarded_signal,
    targets_ok_nb,
)
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.portfolio import Books, PortfolioRules, Records, Universe, portfolio_nb

FLOAT_SCRATCH_ROWS = 15  # `ivybt.kernels.portfolio` scratch shapes, per symbol
INT_SCRATCH_ROWS = 7


class SymbolTables(NamedTuple):
    """Indicator rows of every symbol over its own bars, and where those bars sit.

    values : float64, flat: symbol s's table, (n_rows, n_own[s]) C-order, starts at
        `table_at[s]`; the same rows (the distinct indicators of the grid) for every symbol.
    table_at : int64, (n_symbols,): offsets into `values`.
    n_rows : int: rows of each symbol's table.
    bar_of : int64, flat: the union bar of each of a symbol's own bars, symbol after symbol.
    bars_at : int64, (n_symbols + 1,): symbol s's own bars are bar_of[bars_at[s]:bars_at[s+1]].
    """

    values: Float64Array1D
    table_at: Int64Array1D
    n_rows: int
    bar_of: Int64Array1D
    bars_at: Int64Array1D


@njit(cache=True)
def symbol_table_nb(tables: SymbolTables, s: int) -> Float64Array2D:
    """Symbol s's indicator table, (n_rows, n_own), a contiguous view."""
    n_own = tables.bars_at[s + 1] - tables.bars_at[s]
    start = tables.table_at[s]
    return tables.values[start : start + tables.n_rows * n_own].reshape((tables.n_rows, n_own))


@njit(cache=True)
def expand_symbol_nb(
    own_target: Int8Array1D, bar_of: Int64Array1D, s: int, direction: int,
    out_target: Int8Array1D,
) -> None:  # fmt: skip
    """Put one symbol's sides (per own bar) on the union bars, column s of `out_target`
    (int8, (n_bars, n_symbols)), with `direction` applied (+1 long-only, -1 short-only, 0
    both; `restrict_side_nb` in one pass): a side holds from its bar until the symbol's next
    bar, the last one until its last bar; 0 before the first and after the last (not
    listed). A symbol with a bar at every union bar is copied in one straight loop."""
    n_bars = out_target.shape[0]
    n_own = bar_of.shape[0]
    forbidden = -direction if direction != 0 else 2  # `restrict_side_nb` as one comparison
    if n_own == n_bars:  # every union bar is one of its own: bar_of is 0, 1, ..., n - 1
        for t in range(n_bars):
            side = own_target[t]
            out_target[t, s] = 0 if side == forbidden else side
        return
    start = bar_of[0] if n_own > 0 else n_bars
    for t in range(start):
        out_target[t, s] = 0
    for k in range(n_own):
        stop = bar_of[k + 1] if k + 1 < n_own else bar_of[k] + 1
        side = own_target[k]
        side = 0 if side == forbidden else side
        for t in range(bar_of[k], stop):
            out_target[t, s] = side
    for t in range(bar_of[n_own - 1] + 1 if n_own > 0 else n_bars, n_bars):
        out_target[t, s] = 0


@njit(cache=True)
def builtin_panel_target_nb(
    code: int, tables: SymbolTables, rows: Int64Array1D, params: Float64Array1D,
    direction: int, own: Int8Array1D, out_target: Int8Array1D,
) -> None:  # fmt: skip
    """A built-in strategy's sides on the union bars (int8, (n_bars, n_symbols)): its signal
    kernel on each symbol's own bars, expanded with `direction` applied (`expand_symbol_nb`).
    `own` (int8, >= the longest symbol's bars) is scratch."""
    for s in range(out_target.shape[1]):
        n_own = tables.bars_at[s + 1] - tables.bars_at[s]
        side = own[:n_own]
        builtin_signal_nb(code, symbol_table_nb(tables, s), rows, params, side)
        own_bars = tables.bar_of[tables.bars_at[s] : tables.bars_at[s + 1]]
        expand_symbol_nb(side, own_bars, s, direction, out_target)


@njit(cache=True)
def _longest_nb(tables: SymbolTables) -> int:
    """The most own bars of any symbol (the length of a thread's per-symbol side buffer)."""
    longest = 0
    for s in range(tables.bars_at.shape[0] - 1):
        longest = max(longest, tables.bars_at[s + 1] - tables.bars_at[s])
    return longest


@njit(cache=True)
def thread_books_nb(n_symbols: int) -> Books:
    """A thread's scratch for `portfolio_nb` (`ivybt.kernels.portfolio.scratch`)."""
    return Books(np.empty((FLOAT_SCRATCH_ROWS, n_symbols), dtype=np.float64),
                 np.empty((INT_SCRATCH_ROWS, n_symbols), dtype=np.int64),
                 np.empty(n_symbols, dtype=np.int8))  # fmt: skip


@njit(cache=True, inline="always")
def combination_rules_nb(
    rules: PortfolioRules, params: Float64Array1D, exit_column: int
) -> PortfolioRules:
    """The rules combination `params` trades with: `rules` itself, or with the exits of its
    columns `exit_column`.. (stop_loss, take_profit, trailing, stop_atr, max_bars; 0: off;
    `GridPlan.exit_column`), as `ivybt.kernels.grid.combination_execution_nb` does for one
    symbol. With exits, `Universe.prices` holds the high, low and ATR rows. Either way the
    exits are typed float64 (int64 `max_bars`), so both branches return one type whatever
    types `rules` was built with."""
    c = exit_column
    if c < 0:
        exits = (float(rules.stop_loss), float(rules.take_profit), float(rules.trailing),
                 float(rules.stop_atr), int(rules.max_bars))  # fmt: skip
    else:
        exits = (params[c], params[c + 1], params[c + 2], params[c + 3], int(params[c + 4]))
    return PortfolioRules(rules.weighting, rules.size, rules.max_leverage, rules.max_weight,
                          rules.band, rules.scheduled, rules.fill_on_close, rules.initial_cash,
                          exits[0], exits[1], exits[2], exits[3], exits[4])  # fmt: skip


@njit(cache=True, parallel=True)
def portfolio_grid_builtin_nb(
    universe: Universe,
    tables: SymbolTables,
    slots: Int64Array2D,
    params: Float64Array2D,
    plan: GridPlan,
    rules: PortfolioRules,
    periods_per_year: float,
    no_trades: RecordArray1D,
) -> Float64Array3D:
    """Metrics of every combination of a built-in strategy traded as one portfolio, on each
    window of union bars: float64, (n_combos, n_windows, N_METRICS).

    `slots[j]` are combination j's rows in every symbol's table, `params[j]` its parameters
    (and its exits from `plan.exit_column`, `combination_rules_nb`; else `rules`' own);
    `plan` gives the signal code, direction, blocks and windows (`plan.signal_of` unused);
    `no_trades` is an empty `PORTFOLIO_TRADE_DTYPE` array. out[j, w] equals the portfolio
    backtest of combination j on window w, bit for bit.
    """
    n_combos = params.shape[0]
    n_bars = universe.prices.shape[1]
    n_symbols = universe.prices.shape[2]
    longest = _longest_nb(tables)
    windows = plan.windows
    out = np.empty((n_combos, windows.shape[0], N_METRICS), dtype=np.float64)
    for block in prange(plan.n_blocks):
        own = np.empty(longest, dtype=np.int8)
        target = np.empty((n_bars, n_symbols), dtype=np.int8)
        books = thread_books_nb(n_symbols)
        none1 = np.empty(0, dtype=np.float64)
        none2 = np.empty((0, n_symbols), dtype=np.float64)
        for j in range(block, n_combos, plan.n_blocks):  # interleaved: even work per thread
            builtin_panel_target_nb(plan.code, tables, slots[j], params[j], plan.direction,
                                    own, target)  # fmt: skip
            traded_with = combination_rules_nb(rules, params[j], plan.exit_column)
            for w in range(windows.shape[0]):
                out_j = Records(out[j, w], none1, none2, none1, no_trades)
                portfolio_nb(universe, target, traded_with, windows[w, 0], windows[w, 1],
                             periods_per_year, books, out_j)  # fmt: skip
    return out


def make_portfolio_grid_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Any]:
    """`portfolio_grid_builtin_nb` for a user's signal kernel, compiled once per process.

    Takes the same arguments plus `out_bad` (int64, (n_blocks, 3)), as
    `ivybt.kernels.grid.make_grid_kernel` does: each symbol's sides go into a buffer filled
    with `UNWRITTEN_TARGET` and checked after the call (`targets_ok_nb`); a block stops at
    its first bad combination. Pass a bounds-checked kernel (`ivybt.engine.user_kernels`).
    """
    unwritten = UNWRITTEN_TARGET
    guard = TARGET_GUARD
    guarded_signal_nb = make_guarded_signal(signal_kernel)

    @njit(parallel=True)
    def portfolio_grid_custom_nb(
        universe: Universe,
        tables: SymbolTables,
        slots: Int64Array2D,
        params: Float64Array2D,
        plan: GridPlan,
        rules: PortfolioRules,
        periods_per_year: float,
        no_trades: RecordArray1D,
        out_bad: Int64Array2D,
    ) -> Float64Array3D:
        n_combos = params.shape[0]
        n_bars = universe.prices.shape[1]
        n_symbols = universe.prices.shape[2]
        longest = _longest_nb(tables)
        windows = plan.windows
        out = np.empty((n_combos, windows.shape[0], N_METRICS), dtype=np.float64)
        for block in prange(plan.n_blocks):
            out_bad[block, 0] = -1
            buffer = np.empty(longest + guard, dtype=np.int8)
            target = np.empty((n_bars, n_symbols), dtype=np.int8)
            books = thread_books_nb(n_symbols)
            none1 = np.empty(0, dtype=np.float64)
            none2 = np.empty((0, n_symbols), dtype=np.float64)
            for j in range(block, n_combos, plan.n_blocks):  # interleaved: even work
                ok = True
                for s in range(n_symbols):
                    n_own = tables.bars_at[s + 1] - tables.bars_at[s]
                    view = buffer[: n_own + guard]
                    view[:] = unwritten
                    side = buffer[:n_own]
                    ran = guarded_signal_nb(symbol_table_nb(tables, s), slots[j], params[j],
                                            side)  # fmt: skip
                    if not targets_ok_nb(ran, view, n_own, unwritten, j, out_bad[block]):
                        ok = False
                        break
                    own_bars = tables.bar_of[tables.bars_at[s] : tables.bars_at[s + 1]]
                    expand_symbol_nb(side, own_bars, s, plan.direction, target)
                if not ok:
                    break
                traded_with = combination_rules_nb(rules, params[j], plan.exit_column)
                for w in range(windows.shape[0]):
                    out_j = Records(out[j, w], none1, none2, none1, no_trades)
                    portfolio_nb(universe, target, traded_with, windows[w, 0], windows[w, 1],
                                 periods_per_year, books, out_j)  # fmt: skip
        return out

    return portfolio_grid_custom_nb


@njit(cache=True, parallel=True)
def portfolio_grid_returns_builtin_nb(
    universe: Universe,
    tables: SymbolTables,
    slots: Int64Array2D,
    params: Float64Array2D,
    plan: GridPlan,
    rules: PortfolioRules,
    no_trades: RecordArray1D,
    out_returns: Float64Array2D,
) -> None:
    """Per-bar returns of every combination's portfolio on the plan's first window [a, b),
    for PBO: out_returns (float64, (b - a, n_combos)), column j = equity_t / equity_(t-1) - 1
    with equity_(-1) the initial cash, exactly 0.0 on a bar whose equity did not move (the
    convention of `ivybt.kernels.grid_returns.window_returns_nb`); each combination with its
    own exits when `plan.exit_column` >= 0 (`combination_rules_nb`)."""
    n_combos = params.shape[0]
    n_bars = universe.prices.shape[1]
    n_symbols = universe.prices.shape[2]
    a = plan.windows[0, 0]
    b = plan.windows[0, 1]
    longest = _longest_nb(tables)
    for block in prange(plan.n_blocks):
        own = np.empty(longest, dtype=np.int8)
        target = np.empty((n_bars, n_symbols), dtype=np.int8)
        books = thread_books_nb(n_symbols)
        out = Records(np.empty(N_METRICS), np.empty(b - a), np.empty((b - a, n_symbols)),
                      np.empty(b - a), no_trades)  # fmt: skip
        for j in range(block, n_combos, plan.n_blocks):  # interleaved: even work per thread
            builtin_panel_target_nb(plan.code, tables, slots[j], params[j], plan.direction,
                                    own, target)  # fmt: skip
            traded_with = combination_rules_nb(rules, params[j], plan.exit_column)
            portfolio_nb(universe, target, traded_with, a, b, 1.0, books, out)
            previous = rules.initial_cash
            for t in range(b - a):
                value = out.equity[t]
                out_returns[t, j] = value / previous - 1.0 if value != previous else 0.0
                previous = value
