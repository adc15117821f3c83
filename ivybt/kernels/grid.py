"""Whole parameter grids in one parallel pass: combinations -> metrics, nothing bars x combos.

Every combination reads its indicator rows from one shared table (computed once per distinct
indicator), writes its targets into a buffer owned by its thread, and is simulated and
measured in one fused pass (`ivybt.kernels.evaluate`) that leaves only its metrics behind.
Crossover strategies go further: one vectorised scan of their two lines finds the bars where
the sign of the difference moves (`sign_moves_nb`), and the account follows those moves
(`follow_moves_metrics_nb`), for every window, without a target array.
Threads own contiguous blocks of combinations, so no two threads write
the same element and results do not depend on the thread count.

Built-in strategies run through `grid_builtin_nb`, which is cached: it picks the signal kernel by
an integer code (`SIGNAL_CODES`), because Numba cannot cache a kernel that receives another
kernel as an argument. A user's strategy runs through `make_grid_kernel(signal_kernel)`, compiled
once per process, which checks every target the user's kernel writes (`first_invalid_target_nb`).
On a GPU (`ivybt.kernels.grid_cuda`) each CUDA thread runs one combination through
`combination_traded_nb`, `combination_execution_nb` and `window_metrics_nb`, which allocate
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

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
from ivybt.kernels.evaluate import (
    account_start_nb,
    hold_nb,
    target_metrics_nb,
    trade_at_nb,
    write_account_metrics_nb,
)
from ivybt.kernels.holding import CloseTables, close_tables_nb
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.signals import (
    adx_trend_signal_nb,
    bbkc_squeeze_signal_nb,
    bollinger_reversion_signal_nb,
    cross_signal_nb,
    donchian_breakout_signal_nb,
    move_bar_nb,
    move_sign_nb,
    rsi_reversion_signal_nb,
    sign_moves_nb,
    sign_signal_nb,
    zero_cross_signal_nb,
)
from ivybt.kernels.simulate import Execution, restrict_direction_nb, stops_of_nb
from ivybt.kernels.stops import (
    NoRecords,
    no_records_nb,
    stops_active_nb,
    stops_records_metrics_nb,
)

SIGNAL_CODES: dict[Callable[..., None], int] = {
    cross_signal_nb: 0,
    zero_cross_signal_nb: 1,
    rsi_reversion_signal_nb: 2,
    bollinger_reversion_signal_nb: 3,
    donchian_breakout_signal_nb: 4,
    bbkc_squeeze_signal_nb: 5,
    sign_signal_nb: 6,
    adx_trend_signal_nb: 7,
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
    elif code == 5:
        bbkc_squeeze_signal_nb(table, rows, params, out_target)
    elif code == 6:
        sign_signal_nb(table, rows, params, out_target)
    else:
        adx_trend_signal_nb(table, rows, params, out_target)


@njit(cache=True)
def first_move_at_nb(moves: Int64Array1D, bar: int) -> int:
    """The index of the first move of `sign_moves_nb` on or after `bar` (binary search)."""
    low = 0
    high = moves.shape[0]
    while low < high:
        middle = (low + high) // 2
        if move_bar_nb(moves[middle]) < bar:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True)
def follow_moves_metrics_nb(
    prices: Float64Array2D, moves: Int64Array1D, window: Int64Array1D, direction: int,
    execution: Execution, tables: CloseTables, periods_per_year: float,
    out_metrics: Float64Array1D,
) -> None:  # fmt: skip
    """Metrics of trading a crossover on the bars [a, b) of `window`, from its sign's moves.

    `moves` are the signed bars where the strict sign of line - base moves
    (`sign_moves_nb`: the fast and slow averages for `cross_signal_nb`, the MACD histogram
    and zeros for `zero_cross_signal_nb`): the side is that of `_follow_sign_nb` from bar 0,
    the account starts flat at bar a, and steps only where the wanted side changes
    (`trade_at_nb`, on the bars and in the order `target_metrics_nb` steps for the
    crossover's target array), so the metrics equal `target_metrics_nb`'s bit for bit (a
    test). The scan for the moves is done once per combination, for every window; this pass
    touches only the moves and the bars where the account trades.
    """
    a = window[0]
    b = window[1]
    lag = 0 if execution.fill_on_close else 1
    forbidden = -direction if direction != 0 else 2  # `restrict_side_nb` as one comparison
    n_moves = moves.shape[0]
    k = first_move_at_nb(moves, a)
    signal = move_sign_nb(moves[k - 1]) if k >= 2 else 0  # the side before the window
    state = account_start_nb(execution.initial_cash)
    done = a
    wanted = np.int64(0)
    stop = b - lag  # one past the last bar whose decision can still fill in the window
    # bar a wants the side before the window unless a move falls on it; then each move
    # (one `trade_at_nb` call site: it is inlined, and each site costs compile time)
    carried = a < stop and (k == n_moves or move_bar_nb(moves[k]) != a)
    while carried or k < n_moves:
        t = a
        if not carried:
            t = move_bar_nb(moves[k])
            if t >= stop:
                break
            if k >= 1:  # the first move only sets the sign
                signal = move_sign_nb(moves[k])
            k += 1
        carried = False
        current = 0 if signal == forbidden else signal
        if current != wanted:
            wanted = current
            state = trade_at_nb(state, t + lag, wanted, prices, done, execution, tables)
            done = t + lag + 1
    state = hold_nb(state, prices[1], done, b, tables)
    write_account_metrics_nb(state, b - a, execution, periods_per_year, out_metrics)


@njit(cache=True)
def block_bounds_nb(n_combos: int, n_blocks: int, block: int) -> tuple[int, int]:
    """[start, stop) of `block` when `n_combos` are cut into `n_blocks` contiguous blocks."""
    size = (n_combos + n_blocks - 1) // n_blocks
    start = min(block * size, n_combos)
    return start, min(start + size, n_combos)


@njit(cache=True)
def combination_execution_nb(
    execution: Execution, params: Float64Array1D, exit_column: int
) -> Execution:
    """The execution combination `params` trades: `execution` itself, or with the exits of
    its columns `exit_column`.. (`GridPlan.exit_column`)."""
    if exit_column < 0:
        return execution
    c = exit_column
    return Execution(execution.fee_rate, execution.slippage_rate, execution.size,
                     execution.fill_on_close, execution.initial_cash, params[c], params[c + 1],
                     params[c + 2], params[c + 3], int(params[c + 4]))  # fmt: skip


@njit(cache=True)
def window_metrics_nb(
    prices: Float64Array2D, traded: Int8Array1D, windows: Int64Array2D, execution: Execution,
    tables: CloseTables, periods_per_year: float, no_records: NoRecords,
    out_metrics: Float64Array2D,
) -> None:  # fmt: skip
    """Metrics of `traded` (every bar's wanted side, direction applied) on each window [a, b).

    Each window starts flat with the initial cash at bar a; its signals came from every bar
    before it, so nothing is cold at the boundary. Row w of `out_metrics` equals the single
    backtest on bars [a, b) (`ivybt.engine.simulation`, `window=slice(a, b)`), bit for bit.
    `no_records` (`no_records_nb`) lets an account with stops measure without allocating.
    """
    exits = stops_active_nb(stops_of_nb(execution))
    for w in range(windows.shape[0]):
        a = windows[w, 0]
        b = windows[w, 1]
        if exits:  # stops: the five price rows (`ivybt.kernels.stops`)
            stops_records_metrics_nb(prices[:, a:b], traded[a:b], execution,
                                     stops_of_nb(execution), periods_per_year, no_records,
                                     out_metrics[w])  # fmt: skip
            continue
        target_metrics_nb(prices, traded, windows[w], execution, tables, periods_per_year,
                          out_metrics[w])  # fmt: skip


NO_SUMS = np.zeros((0, 8), dtype=np.float64)
NO_SPARSE = np.zeros((0, 0, 4), dtype=np.float64)
NO_LEVELS = np.zeros(0, dtype=np.int8)


class GridPlan(NamedTuple):
    """What a grid kernel call evaluates, beyond the combinations.

    code : signal code from `SIGNAL_CODES` (unused by a user's strategy).
    direction : +1 long-only, -1 short-only, 0 both.
    n_blocks : contiguous blocks the combinations are cut into (a few per thread).
    windows : int64, shape (n_windows, 2): half-open [start, end) ranges of the traded bars
        to trade and measure: one for a grid (a test part starts after the training bars),
        two per walk-forward fold (in-sample and out-of-sample).
    signal_of : int64, shape (n_bars,) or (0,): for each traded bar, the signal bar (a Renko
        brick) whose decision holds after its close, -1 before the first (see
        `expand_to_bars_nb`); empty when signals and trades share the bars.
    exit_column : the column of a combination's exits in `params` (stop_loss, take_profit,
        trailing, stop_atr, max_bars: `ivybt.kernels.simulate.Stops`, after the strategy's
        own parameters), -1 when every combination trades the execution's `stops`. With
        exits, `prices` holds 5 rows: open, close, high, low and the ATR (`ivybt.kernels.stops`);
        a universe's kernels read them too (`ivybt.kernels.portfolio_grid.combination_rules_nb`).
    close_sums, close_sparse, close_levels, close_usable : the `CloseTables` of the traded
        closes (`with_close_tables`), the fields of the tuple (a parallel loop cannot take a
        tuple inside a tuple); empty: each call builds them (`plan_close_tables_nb`).
    """

    code: int
    direction: int
    n_blocks: int
    windows: Int64Array2D
    signal_of: Int64Array1D
    exit_column: int = -1
    close_sums: Float64Array2D = NO_SUMS
    close_sparse: Float64Array3D = NO_SPARSE
    close_levels: Int8Array1D = NO_LEVELS
    close_usable: bool = False


@njit(cache=True)
def plan_close_tables_nb(plan: GridPlan, close: Float64Array1D) -> CloseTables:
    """The plan's `CloseTables` of the traded closes, or, when the caller left them out
    (`close_sums` empty), built here (`close_tables_nb`: O(n log n) a call)."""
    if plan.close_sums.shape[0] > 0:
        return plan.close_sums, plan.close_sparse, plan.close_levels, plan.close_usable
    return close_tables_nb(close)


def with_close_tables(plan: GridPlan, close: Float64Array1D) -> GridPlan:
    """`plan` carrying the `CloseTables` of `close` (the traded closes), built once for all
    the kernel calls of a series: a budget's many chunks then share them."""
    sums, sparse, levels, usable = close_tables_nb(np.ascontiguousarray(close))
    return plan._replace(close_sums=sums, close_sparse=sparse, close_levels=levels,
                         close_usable=bool(usable))  # fmt: skip


@njit(cache=True)
def expand_to_bars_nb(
    signal_target: Int8Array1D, signal_of: Int64Array1D, out_target: Int8Array1D
) -> None:
    """Targets per traded bar from targets per signal bar: out[t] = signal_target[signal_of[t]]
    (the last signal bar completed at or before bar t), flat where signal_of[t] < 0.

    A Renko brick's decision is known at the close of the real bar that completed it, so it
    holds from that bar on and fills like any decision at that bar (next open by default).
    """
    for t in range(out_target.shape[0]):
        k = signal_of[t]
        out_target[t] = signal_target[k] if k >= 0 else 0


@njit(cache=True)
def builtin_target_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, plan: GridPlan,
    signal_target: Int8Array1D, out_target: Int8Array1D,
) -> None:  # fmt: skip
    """The built-in strategy's target on every traded bar: its signal kernel on the signal
    bars, expanded to the traded bars when they differ (`expand_to_bars_nb`)."""
    if plan.signal_of.shape[0] > 0:
        builtin_signal_nb(plan.code, table, rows, params, signal_target)
        expand_to_bars_nb(signal_target, plan.signal_of, out_target)
    else:
        builtin_signal_nb(plan.code, table, rows, params, out_target)


@njit(cache=True)
def combination_traded_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, plan: GridPlan,
    buffer: Int8Array1D,
) -> None:  # fmt: skip
    """The side a built-in strategy's combination wants after every traded bar, direction
    applied, written into `buffer[:n_bars]`: its signal kernel on the signal bars
    (`builtin_target_nb`), then `restrict_direction_nb` in place.

    `buffer` : int8, (n_bars + n_signal,) with a signal-bar map (`plan.signal_of`; the signal
    bars' targets go after the traded bars'), else (n_bars,); it may be strided (a GPU
    thread's column of a time-major array). Allocates nothing and returns nothing (a CUDA
    device function may return only an array it was passed): what one GPU thread runs per
    combination (`ivybt.kernels.grid_cuda`), equal to `grid_builtin_nb`'s `traded`.
    """
    n_signal = table.shape[1]
    mapped = plan.signal_of.shape[0] > 0
    n_bars = buffer.shape[0] - n_signal if mapped else buffer.shape[0]
    target = buffer[:n_bars]
    if mapped:
        builtin_target_nb(table, rows, params, plan, buffer[n_bars:], target)
    else:
        builtin_signal_nb(plan.code, table, rows, params, target)
    restrict_direction_nb(target, plan.direction, target)


@njit(cache=True, parallel=True)
def grid_builtin_nb(
    prices: Float64Array2D,
    table: Float64Array2D,
    slots: Int64Array2D,
    params: Float64Array2D,
    plan: GridPlan,
    execution: Execution,
    periods_per_year: float,
) -> Float64Array3D:
    """Metrics of every combination of a built-in strategy, on each window of bars.

    Parameters
    ----------
    prices : float64, shape (2, n_bars)
        Open and close of every traded bar (C-contiguous).
    table : float64, shape (n_rows, n_signal_bars)
        Indicator rows over the signal bars (the traded bars themselves, or Renko bricks),
        each computed once (`ivybt.engine.tables.indicator_table`).
    slots : int64, shape (n_combos, n_slots)
        For each combination, the table row of each of the strategy's indicator slots.
    params : float64, shape (n_combos, n_params)
        Each combination's parameters, in the strategy's declaration order.
    plan : GridPlan
        Signal code, direction, blocks, the windows, and the signal-to-bar map.
    execution : Execution
        Costs, sizing, fill timing, initial cash.
    periods_per_year : float
        Bars per year, for annualising.

    Returns
    -------
    out : float64, shape (n_combos, n_windows, N_METRICS)
        out[j, w] equals the single backtest of combination j on window w, bit for bit.
        Signals run once over every signal bar.
    """
    n_combos = params.shape[0]
    n_bars = prices.shape[1]
    n_signal = table.shape[1]
    windows = plan.windows
    mapped = plan.signal_of.shape[0] > 0
    out = np.empty((n_combos, windows.shape[0], N_METRICS), dtype=np.float64)
    zeros = np.zeros(n_bars, dtype=np.float64)
    tables = plan_close_tables_nb(plan, prices[1])
    last_end = windows[:, 1].max() if windows.shape[0] > 0 else 0
    for block in prange(plan.n_blocks):
        moves = np.empty(n_bars, dtype=np.int64)
        signal_target = np.empty(n_signal, dtype=np.int8)
        target = np.empty(n_bars, dtype=np.int8)
        traded = np.empty(n_bars, dtype=np.int8)
        no_records = no_records_nb()
        start, stop = block_bounds_nb(n_combos, plan.n_blocks, block)
        for j in range(start, stop):
            traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
            exits = stops_active_nb(stops_of_nb(traded_with))
            if plan.code < 2 and not mapped and not exits:  # crossovers: a difference's sign
                base = table[slots[j, 1]] if plan.code == 0 else zeros
                count = sign_moves_nb(table[slots[j, 0]], base, last_end, moves)
                for w in range(windows.shape[0]):
                    follow_moves_metrics_nb(
                        prices, moves[:count], windows[w], plan.direction, execution, tables,
                        periods_per_year, out[j, w],
                    )  # fmt: skip
                continue
            builtin_target_nb(table, slots[j], params[j], plan, signal_target, target)
            restrict_direction_nb(target, plan.direction, traded)
            window_metrics_nb(prices, traded, windows, traded_with, tables, periods_per_year,
                              no_records, out[j])  # fmt: skip
    return out


UNWRITTEN_TARGET = -128
"""What a user's target buffer holds before its signal kernel runs: any bar still holding it
afterwards was never written (`first_invalid_target_nb`)."""

TARGET_GUARD = 64
"""Elements after a user's `out_target` in its buffer, left at `UNWRITTEN_TARGET`: a write
just past the end lands there and is reported instead of corrupting memory."""


@njit(cache=True)
def first_invalid_target_nb(buffer: Int8Array1D, n_bars: int, unwritten: int) -> int:
    """The first index where a user signal kernel broke the target rule, or -1.

    Parameters
    ----------
    buffer : int8, shape (n_bars + guard,)
        Filled with `unwritten` before the kernel wrote its first `n_bars` elements (its
        `out_target` is `buffer[:n_bars]`).
    n_bars : int
        Length of the kernel's `out_target`.
    unwritten : int
        The fill value (`UNWRITTEN_TARGET`).

    Returns
    -------
    index : int
        The first t < n_bars whose value is not -1, 0 or +1 (`unwritten` there: a bar never
        written), else the first guard element t >= n_bars that changed (a write past the
        end), else -1.
    """
    flags = 0
    for t in range(n_bars):  # a branch-free pass (vectorised): |v| > 1 iff v * v >> 1 != 0
        value = np.int32(buffer[t])
        flags |= (value * value) >> 1
    if flags != 0:
        for t in range(n_bars):
            value = buffer[t]
            if value < -1 or value > 1:
                return t
    for t in range(n_bars, buffer.shape[0]):
        if buffer[t] != unwritten:
            return t
    return -1


@njit(cache=True)
def targets_ok_nb(
    ran: bool, buffer: Int8Array1D, n_bars: int, unwritten: int, j: int, out_bad: Int64Array1D
) -> bool:
    """Whether combination j's call of a user signal kernel went well: it did not raise
    (`ran`, from `make_guarded_signal`) and wrote only -1/0/+1 into every bar and nothing past
    them (`first_invalid_target_nb`). If not, writes `out_bad = (j, index, value)`, index -1
    when the kernel raised, and returns False."""
    bad = -1 if not ran else first_invalid_target_nb(buffer, n_bars, unwritten)
    if ran and bad < 0:
        return True
    out_bad[0] = j
    out_bad[1] = bad
    out_bad[2] = 0 if bad < 0 else buffer[bad]
    return False


def make_guarded_signal(signal_kernel: Callable[..., None]) -> Callable[..., bool]:
    """`signal_kernel` as a kernel that returns False instead of raising.

    An exception raised inside a `prange` loop does not reliably leave it in numba 0.61: on
    a worker thread it is lost (the loop goes on with the block half done), on the main
    thread it comes out as a SystemError. Caught here, in the thread that raised it, it
    becomes a flag the grid kernels record, and the caller reruns that combination alone to
    raise it (tests/test_user_kernels.py).
    """

    @njit
    def guarded_signal_nb(
        table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
    ) -> bool:
        try:
            signal_kernel(table, rows, params, out_target)
        except Exception:  # numba catches without binding the exception
            return False
        return True

    return guarded_signal_nb


def make_grid_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Float64Array3D]:
    """`grid_builtin_nb` for any signal kernel (a user's strategy); compiled once per process.

    The returned kernel takes the same arguments plus `out_bad` (int64, shape (n_blocks, 3),
    written): a user's kernel is not trusted, so each combination's targets go into a buffer
    filled with `UNWRITTEN_TARGET` and followed by `TARGET_GUARD` guard elements, checked after
    the call (`first_invalid_target_nb`). Block b stops at its first bad combination j and
    writes `out_bad[b] = (j, index, value)`, with index -1 when the kernel raised
    (`make_guarded_signal`); `out_bad[b, 0] == -1` when its combinations were all fine.
    Metrics of a block that stopped are unset. `plan.code` is unused. Pass a bounds-checked
    kernel (`ivybt.engine.user_kernels.checked_kernel`), so an index out of bounds raises (and is
    flagged) instead of writing over memory.
    """
    unwritten = UNWRITTEN_TARGET  # closure constants, frozen into the kernel
    guard = TARGET_GUARD
    guarded_signal_nb = make_guarded_signal(signal_kernel)

    @njit(parallel=True)
    def grid_custom_nb(
        prices: Float64Array2D,
        table: Float64Array2D,
        slots: Int64Array2D,
        params: Float64Array2D,
        plan: GridPlan,
        execution: Execution,
        periods_per_year: float,
        out_bad: Int64Array2D,
    ) -> Float64Array3D:
        n_combos = params.shape[0]
        n_bars = prices.shape[1]
        n_signal = table.shape[1]
        mapped = plan.signal_of.shape[0] > 0
        out = np.empty((n_combos, plan.windows.shape[0], N_METRICS), dtype=np.float64)
        tables = plan_close_tables_nb(plan, prices[1])
        for block in prange(plan.n_blocks):
            out_bad[block, 0] = -1
            buffer = np.empty(n_signal + guard, dtype=np.int8)
            signal_target = buffer[:n_signal]
            target = np.empty(n_bars, dtype=np.int8)
            traded = np.empty(n_bars, dtype=np.int8)
            no_records = no_records_nb()
            start, stop = block_bounds_nb(n_combos, plan.n_blocks, block)
            for j in range(start, stop):
                buffer[:] = unwritten
                ran = guarded_signal_nb(table, slots[j], params[j], signal_target)
                if not targets_ok_nb(ran, buffer, n_signal, unwritten, j, out_bad[block]):
                    break
                if mapped:
                    expand_to_bars_nb(signal_target, plan.signal_of, target)
                else:
                    target[:] = signal_target
                traded_with = combination_execution_nb(execution, params[j], plan.exit_column)
                restrict_direction_nb(target, plan.direction, traded)
                window_metrics_nb(prices, traded, plan.windows, traded_with, tables,
                                  periods_per_year, no_records, out[j])  # fmt: skip
        return out

    return grid_custom_nb
