"""Evaluate every combination of a parameter space in chunks bounded by a memory budget.

Combinations are cut into chunks whose indicator table (distinct indicators x bars x 8
bytes) fits half the budget; each chunk is one parallel kernel call (`ivybt.kernels.grid`)
that returns only metrics. When the whole table does not fit, the chunks tile the parameter
plane (`chunk_plan`: a x b SMA pairs need a + b rows) and consecutive chunks share the rows
they both need; the result table keeps enumeration order. Peak memory is the table of one
chunk (plus, while its rows are replaced, a part of it more: `_SharedTable`) and the
threads' buffers, whatever the number of combinations. A chunk's table serves
several kernel calls of ~0.5 s each, between which progress is reported and Ctrl-C is
answered with `StudyInterrupted` (what was finished).

The memory budget covers the study's working memory: the arrays held per combination for
the whole run (parameters, indicator slots, metrics, the result table as pandas builds it
and, with the overfitting statistics, PBO's block tables: `combination_bytes`), the
threads' buffers and the indicator table of one chunk. `check_memory` refuses a study whose
per-combination arrays alone leave no room for a chunk, before anything is allocated; the
chunks then get what is left (`reserved_bytes`). Imports and the bars themselves (about
200 MB) are outside it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
from numba import get_num_threads

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int64Array1D,
    Int64Array2D,
)
from ivybt.config import DIRECTION_CODES, ExecutionConfig
from ivybt.engine.portfolio import (
    UniverseBars,
    check_weighting,
    portfolio_rules,
    symbol_tables,
    universe_arrays,
)
from ivybt.engine.simulation import execution_tuple, stop_bars
from ivybt.engine.tables import indicator_table
from ivybt.engine.user_kernels import checked_kernel, raise_first_bad
from ivybt.errors import ConfigError, StrategyError, StudyInterrupted, is_interrupt
from ivybt.kernels.grid import (
    SIGNAL_CODES,
    GridPlan,
    grid_builtin_nb,
    make_grid_kernel,
    with_close_tables,
)
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.portfolio_grid import portfolio_grid_builtin_nb
from ivybt.strategies.base import TA_KIND, Indicator, Strategy, signal_kernel_errors
from ivybt.strategies.cross_sectional import is_cross_sectional
from ivybt.studies.space import EXIT_PARAMS, ParamSpace, execution_with

Progress = Callable[[int, int], None]
"""progress(done, total): called after each kernel call with the combinations done so far."""
Combos = slice | Int64Array1D
"""Combinations of one kernel call: a slice of the enumeration order, or ascending indices."""
PhaseProgress = Callable[[str], Progress]
"""phase_progress(label) -> the progress callback of a named phase ("PBO returns",
"PBO splits"): long work after the grid reports through it (`ivybt.cli.progress`)."""

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes: 1 GiB
_THREAD_BYTES_PER_BAR = 11  # each block's target buffers (3 x int8) and crossover moves (int64)
_SUMS_BYTES_PER_BAR = 64  # the close tables' prefix sums (`ivybt.kernels.holding.CloseTables`)
_LEVEL_BYTES_PER_BAR = 32  # and each of their sparse-table levels
_BLOCKS_PER_THREAD = 4  # blocks of combinations per thread, for load balance
_STEP = 256  # combinations by which a chunk grows
MIN_MEMORY_BUDGET_MB = 16  # the least --memory-budget accepts (MB of 2**20 bytes)
_CALL_BAR_COMBOS = 250_000_000  # bars x combinations per kernel call: ~0.5 s here
_MIN_CALL_COMBOS = 256  # enough blocks for every thread even on very long series
_TABLE_BYTES = 3  # the result table's peak while pandas joins and concatenates its parts
EVIDENCE_BYTES = 8 * (4 * 16 + 8)
"""Bytes per combination of the overfitting statistics: PBO's four (16, n) block tables
(sums, squares, levels, flat masks) and the objective, Sharpe and row index copies."""
_MIN_TABLE_ROWS = 16  # indicator rows the smallest useful chunk holds
_PIECE_ROWS = 16  # indicator rows a shared table may add per call (`_SharedTable`)


def evaluate_space(
    columns: Mapping[str, Float64Array1D],
    space: ParamSpace,
    execution: ExecutionConfig,
    *,
    periods_per_year: float,
    first_bar: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: Progress | None = None,
    signal_columns: Mapping[str, Float64Array1D] | None = None,
    signal_of: Int64Array1D | None = None,
    reserved_bytes: int = 0,
    device: str = "cpu",
) -> Float64Array2D:
    """Metrics of every combination of `space` on `columns`: float64, (n_combos, N_METRICS).

    Signals use every bar of `columns` (or `signal_columns`, see `evaluate_windows`); trading
    and metrics start at `first_bar`. Row j equals `ivybt.engine.simulation.simulate_strategy` for
    combination j, bit for bit (on the CPU; see `evaluate_windows` for `device`).
    """
    windows = np.array([[first_bar, len(columns["close"])]], dtype=np.int64)
    return evaluate_windows(
        columns, space, execution, windows, periods_per_year=periods_per_year,
        memory_budget=memory_budget, progress=progress, signal_columns=signal_columns,
        signal_of=signal_of, reserved_bytes=reserved_bytes, device=device,
    )[:, 0, :]  # fmt: skip


def evaluate_windows(
    columns: Mapping[str, Float64Array1D],
    space: ParamSpace,
    execution: ExecutionConfig,
    windows: Int64Array2D,
    *,
    periods_per_year: float,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: Progress | None = None,
    signal_columns: Mapping[str, Float64Array1D] | None = None,
    signal_of: Int64Array1D | None = None,
    reserved_bytes: int = 0,
    device: str = "cpu",
) -> Float64Array3D:
    """Metrics of every combination on each window: float64, (n_combos, n_windows, N_METRICS).

    `windows` (int64, (n_windows, 2)) holds half-open [start, end) bar ranges of `columns`.
    Signals run once over every bar; each window is traded from flat with the initial cash,
    its indicators warmed up on the bars before it. out[j, w] equals
    `simulate_strategy(columns, ..., window=slice(start, end))` for combination j, bit for
    bit; bars after `end` cannot change it (signals are causal).

    With `signal_columns` (Renko bricks' OHLCV) the indicators and signals run on those
    bars instead, and `signal_of[t]` (int64, per bar of `columns`) names the last signal bar
    completed at or before bar t (-1: none yet): its decision holds from bar t's close on
    (`ivybt.kernels.grid.expand_to_bars_nb`); trading stays on the real bars.

    `reserved_bytes` of `memory_budget` are already taken by the caller's per-combination
    arrays (`combination_bytes`); the indicator chunks plan within the rest.

    `device="gpu"` runs a built-in single-symbol strategy's combinations on the GPU
    (`ivybt.engine.gpu.GpuGrid`, chosen by `ivybt.engine.gpu.choose_device`): the same
    metrics to 1e-12 relative (`ivybt.kernels.grid_cuda` says why not bit for bit), one
    kernel call per indicator chunk, the chunks planned within the smaller of the budget and
    the device's free memory.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu' (resolved), not {device!r}")
    if isinstance(signal_columns, UniverseBars):  # a universe with the settings varied
        columns, signal_columns = signal_columns, None
    strategy = space.strategy
    n_bars = len(columns["close"])
    windows = np.ascontiguousarray(windows, dtype=np.int64).reshape(-1, 2)
    if device == "gpu":  # the run chose it (`study_device`); a direct caller is checked here
        from ivybt.engine.gpu import gpu_refusal, not_on_gpu

        universe = isinstance(columns, UniverseBars)
        if problem := not_on_gpu(strategy, universe=universe, cluster=False):
            raise gpu_refusal(problem)
    if isinstance(columns, UniverseBars):
        _check_windows(windows, n_bars)
        budget = memory_budget - reserved_bytes
        return _universe_windows(columns, space, execution, windows,
                                 periods_per_year=periods_per_year, budget=budget,
                                 progress=progress)  # fmt: skip
    _check_windows(windows, n_bars)
    signals = columns if signal_columns is None else signal_columns
    if signal_columns is not None and (signal_of is None or len(signal_of) != n_bars):
        raise ConfigError("signal_columns need signal_of: one signal bar index per bar")
    kernel: Callable[..., Float64Array3D]
    if device == "gpu":
        from ivybt.engine.gpu import GpuGrid, device_budget

        kernel = GpuGrid()
        budget = device_budget(memory_budget - reserved_bytes)
        work_per_combo = 0  # one call per indicator chunk: its table is copied once
    else:
        kernel = _kernel_for(strategy)
        budget = memory_budget - reserved_bytes
        work_per_combo = n_bars * max(len(windows), 1)
    prices = _prices(columns, execution, space)
    params = kernel_params(space, execution)
    plan = with_close_tables(_grid_plan(space, execution, windows, signal_of), prices[1])
    kernel_execution = execution_tuple(execution)
    out = np.empty((len(space), len(windows), N_METRICS), dtype=np.float64)
    done = 0

    def call(rows: Combos, table: Float64Array2D, slots: Int64Array2D) -> None:
        nonlocal done
        with signal_kernel_errors(strategy):  # a plug-in's exception: one line
            out[rows] = kernel(prices, table, slots, params[rows], plan, kernel_execution,
                               periods_per_year)  # fmt: skip
        done += len(slots)
        if progress is not None:
            progress(done, len(space))

    with _interrupted_grid(len(space), lambda: done):
        _for_each_call(space, signals, n_bars, budget, work_per_combo, call)
    return out


def evaluate_block_tables(
    columns: Mapping[str, Float64Array1D],
    space: ParamSpace,
    execution: ExecutionConfig,
    *,
    n_blocks: int,
    first_bar: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    reserved_bytes: int = 0,
    progress: Progress | None = None,
    signal_columns: Mapping[str, Float64Array1D] | None = None,
    signal_of: Int64Array1D | None = None,
) -> tuple[Float64Array2D, Float64Array2D, Float64Array2D]:
    """PBO's block tables (sums, squares, levels; float64, (n_blocks, n_combos)) of every
    combination's per-bar returns on bars [first_bar, n): equal bit for bit to
    `ivybt.stats.pbo.block_tables(evaluate_returns(...), n_blocks)`, without the returns
    matrix.

    A built-in strategy runs the fused kernel `ivybt.kernels.grid_blocks` in the chunks and
    calls of `evaluate_windows` (indicator tables within the budget, `progress(done, total)`
    combinations after each call, Ctrl-C between calls); a user's strategy goes through its
    returns kernel in slices whose matrix fits a quarter of the budget left. Raises
    ConfigError when the window has fewer than 2 bars per block or a return is not finite.
    """
    from ivybt.kernels.grid_blocks import grid_block_stats_builtin_nb
    from ivybt.stats.pbo import block_tables, check_block_rows

    if isinstance(signal_columns, UniverseBars):  # a universe with the settings varied
        columns, signal_columns = signal_columns, None
    strategy = space.strategy
    n_bars = len(columns["close"])
    n_out = n_bars - first_bar
    check_block_rows(n_out, n_blocks)
    sums = np.empty((n_blocks, len(space)), dtype=np.float64)
    squares = np.empty_like(sums)
    levels = np.empty_like(sums)
    budget = memory_budget - reserved_bytes
    universe = isinstance(columns, UniverseBars)
    if universe or strategy.signal_kernel not in SIGNAL_CODES:  # through the returns path
        size = max(1, budget // 4 // (8 * max(n_out, 1)))
        for first in range(0, len(space), size):
            last = min(first + size, len(space))
            subset = space.subset(slice(first, last))
            part = block_tables(evaluate_returns(
                columns, subset, execution, first_bar=first_bar, signal_columns=signal_columns,
                signal_of=signal_of,
            ), n_blocks)  # fmt: skip
            sums[:, first:last], squares[:, first:last], levels[:, first:last] = part
            if progress is not None:
                progress(last, len(space))
        return _finite_tables(sums, squares, levels)
    prices = _prices(columns, execution, space)
    params = kernel_params(space, execution)
    plan = with_close_tables(
        _grid_plan(space, execution, np.array([[first_bar, n_bars]]), signal_of), prices[1]
    )
    kernel_execution = execution_tuple(execution)

    done = 0

    def call(rows: Combos, table: Float64Array2D, slots: Int64Array2D) -> None:
        nonlocal done
        part = grid_block_stats_builtin_nb(prices, table, slots, params[rows], plan,
                                           kernel_execution, n_blocks)  # fmt: skip
        sums[:, rows], squares[:, rows], levels[:, rows] = part
        done += len(slots)
        if progress is not None:
            progress(done, len(space))

    signals = columns if signal_columns is None else signal_columns
    _for_each_call(space, signals, n_bars, budget, n_bars, call)
    return _finite_tables(sums, squares, levels)


def _finite_tables(
    sums: Float64Array2D, squares: Float64Array2D, levels: Float64Array2D
) -> tuple[Float64Array2D, Float64Array2D, Float64Array2D]:
    """The tables, or ConfigError when a return was infinite (`block_tables`' rule)."""
    bad = ~(np.isfinite(sums) & np.isfinite(squares)).all(axis=0)
    if bad.any():
        column = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"returns must be finite or NaN (NaN = no position), but combination {column} has "
            "an infinite or undefined return; fix or drop that combination"
        )
    return sums, squares, levels


def combination_bytes(
    n_params: int, n_slots: int, n_windows: int = 1, *, evidence: bool = True,
    kept_rows: int = 0,
) -> int:  # fmt: skip
    """Bytes a study holds per combination for the whole run (module docstring): its
    parameters and indicator slots (8 each), its metrics on each window (8 x N_METRICS), the
    result table's row as pandas builds it, `EVIDENCE_BYTES` with the overfitting
    statistics, and `kept_rows` more table rows (a walk-forward keeps two surface rows per
    fold, concatenated once at the end). Measured: 690 bytes a combination for sma_cross
    without the statistics (181,497 combinations on 5,241 SPY bars, indicator chunk
    included), estimated 563."""
    row = 8 * (n_params + N_METRICS) + 1
    held = 8 * (n_params + n_slots) + 8 * N_METRICS * n_windows + _TABLE_BYTES * row
    held += kept_rows * 2 * (row + 8 * 3)  # + fold, side, combo columns; x2 for the concat
    return held + (EVIDENCE_BYTES if evidence else 0)


def check_memory(
    n_combos: int, per_combination: int, memory_budget: int, n_bars: int, *,
    evidence: bool, what: str = "",
) -> int:  # fmt: skip
    """The bytes `n_combos` x `per_combination` reserve in `memory_budget`; ConfigError when
    they leave no room for the threads' buffers and one indicator chunk of
    `_MIN_TABLE_ROWS` rows of `n_bars`, with the budget that would do."""
    reserved = n_combos * per_combination
    threads = working_bytes(n_bars)
    need = reserved + 2 * (threads + _MIN_TABLE_ROWS * 8 * n_bars)
    if need > memory_budget:
        raise ConfigError(
            f"{n_combos:,} combinations{what} need about {reserved / 2**20:,.0f} MiB for their "
            f"results (~{per_combination:,} bytes each: parameters, metrics, the table"
            f"{', PBO block tables' if evidence else ''}) plus "
            f"{(need - reserved) / 2**20:,.0f} MiB to evaluate them on {n_bars:,} bars, more "
            f"than the memory budget of {memory_budget / 2**20:,.0f} MiB; give "
            f"--memory-budget {max(MIN_MEMORY_BUDGET_MB, math.ceil(need * 1.1 / 2**20))} or "
            "more, narrow the ranges"
            + (", or skip PBO and DSR with --no-evidence" if evidence else "")
        )  # fmt: skip
    return reserved


def evaluate_returns(
    columns: Mapping[str, Float64Array1D],
    space: ParamSpace,
    execution: ExecutionConfig,
    *,
    first_bar: int = 0,
    signal_columns: Mapping[str, Float64Array1D] | None = None,
    signal_of: Int64Array1D | None = None,
) -> Float64Array2D:
    """Per-bar returns of every combination of `space` on bars [first_bar, n): float64,
    (n - first_bar, n_combos), one column per combination (`ivybt.kernels.grid_returns`).

    The caller keeps the matrix within its memory budget (8 bytes x bars x combinations):
    `ivybt.studies.evidence` passes the top combinations when all do not fit.
    """
    from ivybt.kernels.grid_returns import grid_returns_builtin_nb

    if isinstance(signal_columns, UniverseBars):  # a universe with the settings varied
        columns, signal_columns = signal_columns, None
    strategy = space.strategy
    n_bars = len(columns["close"])
    if isinstance(columns, UniverseBars):
        return _universe_returns(columns, space, execution, first_bar)
    signals = columns if signal_columns is None else signal_columns
    distinct, slot_ids = space_indicators(space)
    table, rows = indicator_table(signals, distinct)
    local = np.array([rows[indicator] for indicator in distinct], dtype=np.int64)
    plan = _grid_plan(space, execution, np.array([[first_bar, n_bars]]), signal_of)
    kernel = (
        grid_returns_builtin_nb if strategy.signal_kernel in SIGNAL_CODES
        else _checked(strategy, _custom_returns_kernel(strategy.signal_kernel))
    )  # fmt: skip
    out = np.empty((n_bars - first_bar, len(space)), dtype=np.float64)
    with signal_kernel_errors(strategy):  # a plug-in's exception: one line
        kernel(_prices(columns, execution, space), table, local[slot_ids],
               kernel_params(space, execution), plan, execution_tuple(execution), out)  # fmt: skip
    return out


def _prices(
    columns: Mapping[str, Float64Array1D], execution: ExecutionConfig, space: ParamSpace
) -> Float64Array2D:
    """The kernels' price rows: open and close, (2, n_bars), contiguous; with stops (fixed,
    or varied by the space) also the high, the low and the ATR of `sl_atr`
    (`ivybt.engine.simulation.stop_bars`)."""
    if execution.has_stops or space.exit_names:
        if "sl_atr" in space.exit_names and execution.sl_atr is None:
            execution = execution.model_copy(update={"sl_atr": 1.0})  # for its ATR row
        return stop_bars(columns, execution, slice(None))
    return np.ascontiguousarray(np.vstack([columns["open"], columns["close"]]))


def kernel_params(space: ParamSpace, execution: ExecutionConfig) -> Float64Array2D:
    """The parameter rows the grid kernels take: the space's own, and when it varies exits,
    the strategy's columns then all five exits (`ivybt.kernels.simulate.Stops` order), those
    the space does not vary set from `execution` (`GridPlan.exit_column`)."""
    if not space.exit_names:
        return space.combos
    n_strategy = len(space.names) - len(space.exit_names)
    fixed = {"sl": execution.sl, "tp": execution.tp, "trail": execution.trail,
             "sl_atr": execution.sl_atr, "max_bars": execution.max_bars}  # fmt: skip
    columns = [space.combos[:, :n_strategy]]
    for name in EXIT_PARAMS:
        if name in space.exit_names:
            k = n_strategy + space.exit_names.index(name)
            columns.append(space.combos[:, k : k + 1])
        else:
            columns.append(np.full((len(space), 1), float(fixed[name] or 0.0)))
    return np.ascontiguousarray(np.hstack(columns))


def _grid_plan(
    space: ParamSpace, execution: ExecutionConfig, windows: Int64Array2D,
    signal_of: Int64Array1D | None,
) -> GridPlan:  # fmt: skip
    """The kernels' plan: the strategy's signal code (-1 for a user's kernel), the direction,
    blocks of combinations (`_BLOCKS_PER_THREAD` per thread), the windows and the signal-bar
    map (empty: signals on the real bars)."""
    return GridPlan(
        code=SIGNAL_CODES.get(space.strategy.signal_kernel, -1),
        direction=DIRECTION_CODES[execution.direction],
        n_blocks=min(max(len(space), 1), _BLOCKS_PER_THREAD * get_num_threads()),
        windows=np.ascontiguousarray(windows, dtype=np.int64),
        exit_column=len(space.names) - len(space.exit_names) if space.exit_names else -1,
        signal_of=np.zeros(0, dtype=np.int64) if signal_of is None
        else np.ascontiguousarray(signal_of, dtype=np.int64),
    )  # fmt: skip


def _for_each_call(
    space: ParamSpace, signals: Mapping[str, Float64Array1D], n_bars: int, budget: int,
    work_per_combo: int, call: Callable[[Combos, Float64Array2D, Int64Array2D], None],
) -> None:  # fmt: skip
    """`call(rows, table, slots)` for each kernel call over `space`: the combinations `rows`
    (a slice, or ascending indices when the chunks tile the space; `_slices` of
    `work_per_combo` bar-steps each), their indicator table on the `signals` bars and their
    slots' rows in it. Tables are built per chunk of combinations whose distinct indicator
    rows fit `budget` next to the threads' buffers of `n_bars` real bars (`_rows_budget`,
    `chunk_plan`), one chunk's table at a time; on one series the chunks share one table
    whose rows a chunk no longer needs are overwritten by the next chunk's (`_SharedTable`),
    so a row two chunks in a row need is computed once."""
    distinct, slot_ids = space_indicators(space)
    universe = isinstance(signals, UniverseBars)
    rows_budget = _rows_budget(
        budget, signals.memory_bars if universe else max(n_bars, len(signals["close"]))
    )
    order, breaks = chunk_plan(slot_ids, rows_budget)
    shared = None if universe or len(breaks) < 2 else _SharedTable(signals, distinct, rows_budget)
    for start, stop in breaks:
        combos = order[start:stop] if order is not None else None
        chunk_ids = slot_ids[start:stop] if combos is None else slot_ids[combos]
        needed = np.unique(chunk_ids)
        if shared is not None and len(needed) <= rows_budget:
            table, local = shared.holding(needed)
        else:
            wanted = [distinct[i] for i in needed]
            if universe:
                table, found = symbol_tables(signals.panel, wanted)
            else:
                table, rows = indicator_table(signals, wanted)
                found = [rows[indicator] for indicator in wanted]
            local = np.full(len(distinct), -1, dtype=np.int64)
            local[needed] = found
        for first, last in _slices(start, stop, work_per_combo):
            if combos is None:
                call(slice(first, last), table, local[slot_ids[first:last]])
            else:
                picked = combos[first - start : last - start]
                call(picked, table, local[slot_ids[picked]])
        del table  # the next chunk's table must not coexist with this one


class _SharedTable:
    """One indicator table of `capacity` rows shared by consecutive chunks on one series.

    `holding(needed)` keeps the rows of `needed` (ids into `distinct`) it already holds,
    computes the others (`indicator_table`, one call) into rows the chunk does not need, and
    returns the table and each id's row in it (-1: not held). Memory: the table, plus the
    rows being added while they are copied in, at most `_PIECE_ROWS` or a quarter of the
    table at a time, and never more than the table itself: within the budget (a chunk's
    table fits half of it, `_rows_budget`)."""

    def __init__(
        self, signals: Mapping[str, Float64Array1D], distinct: list[Indicator], capacity: int
    ) -> None:
        self.signals = signals
        self.distinct = distinct
        self.table = np.empty((capacity, len(signals["close"])), dtype=np.float64)
        self.local = np.full(len(distinct), -1, dtype=np.int64)  # id -> row
        self.held = np.full(capacity, -1, dtype=np.int64)  # row -> id

    def holding(self, needed: Int64Array1D) -> tuple[Float64Array2D, Int64Array1D]:
        missing = needed[self.local[needed] < 0]
        if len(missing):
            keep = np.zeros(len(self.distinct), dtype=bool)
            keep[needed] = True
            free = np.flatnonzero((self.held < 0) | ~keep[self.held])[: len(missing)]
            gone = self.held[free]
            self.local[gone[gone >= 0]] = -1
            piece = max(_PIECE_ROWS, len(self.table) // 4)
            for first in range(0, len(missing), piece):
                ids = missing[first : first + piece]
                wanted = [self.distinct[i] for i in ids]
                part, rows = indicator_table(self.signals, wanted)
                for indicator, row in zip(wanted, free[first : first + piece], strict=True):
                    self.table[row] = part[rows[indicator]]  # row by row: no third copy
                del part
            self.held[free] = missing
            self.local[missing] = free
        return self.table, self.local


def chunk_breaks(
    space: ParamSpace, signals: Mapping[str, Float64Array1D], n_bars: int, budget: int
) -> tuple[Int64Array1D | None, list[tuple[int, int]]]:
    """The chunks `_for_each_call` builds one indicator table for (`chunk_plan`: an order of
    the combinations, None for enumeration order, and [start, stop) blocks of it): the cut
    `ivybt.studies.cluster` keeps when it spreads a grid over Dask tasks."""
    universe = isinstance(signals, UniverseBars)
    if universe or not len(space):
        return None, [(0, len(space))] if len(space) else []
    _, slot_ids = space_indicators(space)
    return chunk_plan(slot_ids, _rows_budget(budget, max(n_bars, len(signals["close"]))))


def _slices(start: int, stop: int, work_per_combo: int) -> Iterator[tuple[int, int]]:
    """Cut [start, stop) into kernel calls of about `_CALL_BAR_COMBOS` bar-combinations, so
    progress moves and Ctrl-C answers (between calls) every ~0.5 s on a big grid; each call
    ends with threads waiting for the slowest block, so calls are not made shorter. With
    `work_per_combo` <= 0, one call (the GPU's: each call copies its table)."""
    if work_per_combo <= 0:
        yield start, stop
        return
    size = max(_MIN_CALL_COMBOS, _CALL_BAR_COMBOS // max(work_per_combo, 1))
    for first in range(start, stop, size):
        yield first, min(first + size, stop)


def _kernel_for(strategy: type[Strategy]) -> Callable[..., Float64Array3D]:
    if strategy.signal_kernel in SIGNAL_CODES:
        return grid_builtin_nb
    return _checked(strategy, _custom_kernel(strategy.signal_kernel))


@lru_cache(maxsize=32)
def _custom_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Float64Array3D]:
    """The grid kernel of a user's signal kernel, bounds-checked (`ivybt.engine.user_kernels`)."""
    return make_grid_kernel(checked_kernel(signal_kernel))


@lru_cache(maxsize=32)
def _custom_returns_kernel(signal_kernel: Callable[..., None]) -> Callable[..., None]:
    """The per-bar returns kernel of a user's signal kernel, bounds-checked."""
    from ivybt.kernels.grid_returns import make_returns_kernel

    return make_returns_kernel(checked_kernel(signal_kernel))


def _checked(strategy: type[Strategy], kernel: Callable[..., Any]) -> Callable[..., Any]:
    """`kernel` (from `_custom_kernel` or `_custom_returns_kernel`) with the arguments of its
    built-in twin: it passes the `out_bad` array the checks write, then raises for the first
    combination of the call, in enumeration order, whose signal kernel broke the target rule
    or raised (`ivybt.engine.user_kernels.raise_first_bad`); under a budget that tiles the
    space, the first call with one decides."""

    def run(*args: Any) -> Any:
        _, table, slots, params, plan = args[:5]
        out_bad = np.empty((plan.n_blocks, 3), dtype=np.int64)
        result = kernel(*args, out_bad)
        signal_of = plan.signal_of if len(plan.signal_of) else None
        raise_first_bad(strategy, out_bad, table, slots, params, signal_of)
        return result

    return run


def working_bytes(n_bars: int) -> int:
    """The kernels' working memory on `n_bars` bars besides the indicator table: the threads'
    block buffers and the series' close tables (floor(log2 n) + 1 sparse-table levels)."""
    blocks = _BLOCKS_PER_THREAD * get_num_threads()
    levels = max(n_bars, 1).bit_length()
    tables = _SUMS_BYTES_PER_BAR + _LEVEL_BYTES_PER_BAR * levels
    return n_bars * (blocks * _THREAD_BYTES_PER_BAR + tables)


def _rows_budget(memory_budget: int, n_bars: int) -> int:
    """Indicator rows one chunk may hold: half the budget, after the threads' buffers."""
    threads_bytes = working_bytes(n_bars)
    rows = (memory_budget // 2 - threads_bytes) // (8 * n_bars)
    if rows < 8:  # the budget for 8 rows, rounded up, and never below the option's minimum
        need = max(MIN_MEMORY_BUDGET_MB, -(-2 * (threads_bytes + 8 * 8 * n_bars) // 2**20))
        raise ConfigError(
            f"a memory budget of {memory_budget / 2**20:g} MB is too small for {n_bars:,} bars "
            f"on {get_num_threads()} threads; give --memory-budget {need} or more"
        )
    return int(rows)


def space_indicators(space: ParamSpace) -> tuple[list[Indicator], Int64Array2D]:
    """The distinct indicators of every combination, and each combination's slot rows.

    Returns (distinct, slot_ids): `slot_ids[j, k]` indexes `distinct` for slot k of
    combination j. The strategy's `indicators` is called once with whole parameter columns;
    if it cannot take arrays (it converts or branches on a value), once per combination.
    """
    strategy = space.strategy
    columns = {
        param.name: space.combos[:, k].astype(np.int64 if param.kind is int else np.float64)
        for k, param in enumerate(strategy.params)
    }
    try:
        declared = strategy.indicators(columns)
    except (TypeError, ValueError, ConfigError):
        declared = None
    n_combos = len(space)
    if declared is None:
        return _indicators_one_by_one(space)
    distinct: dict[Indicator, int] = {}
    slot_ids = np.empty((n_combos, len(declared)), dtype=np.int64)
    for k, spec in enumerate(declared):
        if spec.kind == TA_KIND:  # settings of mixed types: only the columns vary
            varied = [i for i, arg in enumerate(spec.args) if isinstance(arg, np.ndarray)]
        else:
            varied = list(range(len(spec.args)))
        dtype = np.int64 if spec.kind != TA_KIND else np.float64
        args = np.column_stack(
            [np.broadcast_to(np.asarray(spec.args[i], dtype=dtype), (n_combos,)) for i in varied]
        ) if varied else np.zeros((n_combos, 0), dtype=dtype)  # fmt: skip
        unique, inverse = _unique_rows(args)
        ids = [distinct.setdefault(_declared(spec, varied, row), len(distinct))
               for row in unique]  # fmt: skip
        slot_ids[:, k] = np.asarray(ids, dtype=np.int64)[inverse.reshape(-1)]
    return list(distinct), slot_ids


def _declared(spec: Indicator, varied: list[int], row: np.ndarray) -> Indicator:
    """The Indicator of one combination: `spec` (declared with parameter columns) with the
    args at positions `varied` taken from `row`, each in its column's type (int or float)."""
    args = list(spec.args)
    for i, value in zip(varied, row, strict=True):
        integral = np.issubdtype(np.asarray(spec.args[i]).dtype, np.integer)
        args[i] = int(value) if integral or spec.kind != TA_KIND else float(value)
    return replace(spec, args=tuple(args))


def _unique_rows(args: Int64Array2D) -> tuple[Int64Array2D, Int64Array1D]:
    """The distinct rows of `args`, sorted, and each row's index among them.

    `np.unique(args, axis=0)` does the same through a structured view, about 10x slower on a
    15,000-row grid; a lexicographic sort and a cumulative sum of the changes do it directly.
    """
    n_rows = args.shape[0]
    if args.shape[1] == 0 or n_rows == 0:
        return args[:1], np.zeros(n_rows, dtype=np.int64)
    order = np.lexsort(args.T[::-1])
    ordered = args[order]
    starts = np.ones(n_rows, dtype=bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(n_rows, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse


def _indicators_one_by_one(space: ParamSpace) -> tuple[list[Indicator], Int64Array2D]:
    distinct: dict[Indicator, int] = {}
    rows = [
        [distinct.setdefault(indicator, len(distinct))
         for indicator in space.strategy.indicators(space.combination(j))]
        for j in range(len(space))
    ]  # fmt: skip
    return list(distinct), np.array(rows, dtype=np.int64).reshape(len(space), -1)


def chunk_plan(
    slot_ids: Int64Array2D, rows_budget: int
) -> tuple[Int64Array1D | None, list[tuple[int, int]]]:
    """Chunks of combinations whose distinct indicator rows (`slot_ids`: int64, (n_combos,
    n_slots), ids of `space_indicators`) fit `rows_budget`: `(order, breaks)`, where chunk i
    holds the combinations `order[start:stop]` of `breaks[i]`, ascending, and `order` is None
    when the chunks keep enumeration order (then chunk i is [start, stop) itself).

    When every distinct row fits, one chunk holds them all. Otherwise the combinations are
    taken in tiles of the parameter plane (`_tiled_order`): for fast x slow SMA pairs a chunk
    of a x b pairs needs a + b rows, where enumeration order needs almost every slow row again
    in each chunk (about 11,000 rows computed instead of 203 on W1 with 140 rows of room).
    The result table keeps enumeration order: callers write each chunk's rows back in place.
    """
    n_combos = slot_ids.shape[0]
    if slot_ids.max(initial=-1) < rows_budget:  # every distinct indicator fits at once
        return None, [(0, n_combos)] if n_combos else []
    order = _tiled_order(slot_ids, rows_budget)
    breaks = list(_chunks(slot_ids[order], rows_budget))
    for start, stop in breaks:  # each chunk in enumeration order, as one call writes it
        order[start:stop].sort()
    return order, breaks


def _tiled_order(slot_ids: Int64Array2D, rows_budget: int) -> Int64Array1D:
    """An order of the combinations whose consecutive blocks need few distinct rows.

    The slot with the most distinct rows is the stream; the other slots' row tuples, sorted,
    are grouped into bands whose rows fill about half of `rows_budget`. Band by band, the
    combinations are taken by stream row, so a block cut from the order needs its band's
    rows plus a run of stream rows: a tile of the plane (band rows x stream rows), for any
    number of slots. Ties keep enumeration order.
    """
    n_combos, n_slots = slot_ids.shape
    if n_slots == 0:
        return np.arange(n_combos, dtype=np.int64)
    n_distinct = [len(np.unique(slot_ids[:, k])) for k in range(n_slots)]
    stream = int(np.argmax(n_distinct))
    others = [k for k in range(n_slots) if k != stream]
    if not others:
        return np.argsort(slot_ids[:, stream], kind="stable").astype(np.int64)
    tuples, tuple_of = _unique_rows(np.ascontiguousarray(slot_ids[:, others]))
    band_rows = max(1, rows_budget // 2)
    band_of = np.empty(len(tuples), dtype=np.int64)
    band, held = 0, set()
    for i, ids in enumerate(tuples.tolist()):
        grown = held.union(ids)
        if len(grown) > band_rows and held:  # this tuple opens the next band
            band, grown = band + 1, set(ids)
        held = grown
        band_of[i] = band
    return np.lexsort((tuple_of, slot_ids[:, stream], band_of[tuple_of])).astype(np.int64)


def _chunks(slot_ids: Int64Array2D, rows_budget: int) -> Iterator[tuple[int, int]]:
    """[start, stop) blocks of the combinations `slot_ids` (in the order given), each as long
    as its distinct indicators fit `rows_budget`; one combination always runs, even if its
    own slots exceed the budget.

    A slot's row is new to a block starting at `start` when its previous occurrence (in
    the flattened ids) lies before `start`, so a block's distinct rows are a cumulative sum
    of those flags, read over a window (twice the last block) that doubles until the budget
    is passed.
    """
    n_combos, n_slots = slot_ids.shape
    if n_slots == 0:
        yield from [(0, n_combos)] if n_combos else []
        return
    flat = np.ascontiguousarray(slot_ids).reshape(-1)
    by_id = np.argsort(flat, kind="stable")
    repeat = flat[by_id[1:]] == flat[by_id[:-1]]
    previous = np.full(flat.size, -1, dtype=np.int64)
    previous[by_id[1:][repeat]] = by_id[:-1][repeat]
    previous_combo = (previous // n_slots).reshape(n_combos, n_slots)  # -1: none
    start, width = 0, _STEP
    while start < n_combos:
        while True:
            stop = min(start + width, n_combos)
            rows = np.cumsum((previous_combo[start:stop] < start).sum(axis=1))
            fits = int(np.searchsorted(rows, rows_budget, side="right"))
            if fits < stop - start or stop == n_combos:
                break
            width *= 2
        yield start, start + max(fits, 1)
        start += max(fits, 1)
        width = 2 * max(fits, 1)  # the next block is likely as long as this one


def _check_windows(windows: Int64Array2D, n_bars: int) -> None:
    if len(windows) and not (
        (windows[:, 0] >= 0).all() and (windows[:, 0] < windows[:, 1]).all()
        and (windows[:, 1] <= n_bars).all()
    ):  # fmt: skip
        raise ConfigError(f"windows must satisfy 0 <= start < end <= {n_bars}; got {windows}")


_CROSS_SECTION_CALL = 256  # combinations per cross-sectional kernel call (progress lines)


def _universe_windows(
    bars: UniverseBars, space: ParamSpace, execution: ExecutionConfig, windows: Int64Array2D,
    *, periods_per_year: float, budget: int, progress: Progress | None,
) -> Float64Array3D:  # fmt: skip
    """`evaluate_windows` on a universe: each combination traded as one portfolio
    (`ivybt.kernels.portfolio_grid`), in the same chunks and calls as one symbol, with its
    own exits when the space varies them (`kernel_params`, `GridPlan.exit_column`)."""
    from ivybt.kernels.portfolio import PORTFOLIO_TRADE_DTYPE

    strategy = space.strategy
    if is_cross_sectional(strategy):
        return _cross_section_windows(
            bars, space, execution, windows, periods_per_year=periods_per_year, budget=budget,
            progress=progress,
        )  # fmt: skip
    check_weighting(strategy, bars.portfolio)  # "score" weights need scores: one line
    universe = universe_arrays(bars.panel, bars.portfolio, execution,
                               varied_exits=space.exit_names)  # fmt: skip
    rules = portfolio_rules(bars.portfolio, execution)
    plan = _grid_plan(space, execution, windows, None)
    params = kernel_params(space, execution)
    no_trades = np.empty(0, dtype=PORTFOLIO_TRADE_DTYPE)
    builtin = strategy.signal_kernel in SIGNAL_CODES
    kernel = portfolio_grid_builtin_nb if builtin else _custom_portfolio_kernel(
        strategy.signal_kernel)  # fmt: skip
    out = np.empty((len(space), len(windows), N_METRICS), dtype=np.float64)
    done = 0

    def call(rows: Combos, tables: Any, slots: Int64Array2D) -> None:
        nonlocal done
        call_params = params[rows]
        args = (universe, tables, slots, call_params, plan, rules, periods_per_year, no_trades)
        with signal_kernel_errors(strategy):  # a plug-in's exception: one line
            if builtin:
                out[rows] = kernel(*args)
            else:
                out_bad = np.empty((plan.n_blocks, 3), dtype=np.int64)
                out[rows] = kernel(*args, out_bad)
                _raise_first_bad_symbol(strategy, out_bad, bars, tables, slots, call_params)
        done += len(slots)
        if progress is not None:
            progress(done, len(space))

    n_work = bars.memory_bars * max(len(windows), 1)
    with _interrupted_grid(len(space), lambda: done):
        _for_each_call(space, bars, bars.n_bars, budget, n_work, call)
    return out


def _cross_section_windows(
    bars: UniverseBars, space: ParamSpace, execution: ExecutionConfig, windows: Int64Array2D,
    *, periods_per_year: float, budget: int, progress: Progress | None,
) -> Float64Array3D:  # fmt: skip
    """`evaluate_windows` for a cross-sectional strategy: every combination's scores, ranks
    and account in one parallel kernel pass (`ivybt.kernels.cross_section_grid`), in calls
    of `_CROSS_SECTION_CALL` combinations for progress; memory is a scores and a sides
    buffer (bars x symbols) per thread.

    `cluster_mean_reversion` shares its correlation matrices: the combinations are taken one
    lookback at a time, that lookback's matrices at every selection bar are computed once
    (`lookback_correlations_nb`) and each threshold, reversion and k of it reads them, when
    they fit a quarter of `budget` (else each combination computes its own, as a backtest
    does; the scores are the same bit for bit either way)."""
    from ivybt.engine.portfolio import cross_section_selection
    from ivybt.kernels.cross_section import cluster_reversion_score_nb, lookback_correlations_nb
    from ivybt.kernels.cross_section_grid import SCORE_CODES, cross_section_grid_builtin_nb
    from ivybt.kernels.portfolio import PORTFOLIO_TRADE_DTYPE

    strategy = space.strategy
    panel = bars.panel
    if len(space):  # each parameter's largest value fits the universe
        largest = dict(zip(space.names, space.combos.max(axis=0).tolist(), strict=True))
        strategy.check_universe(largest, panel.symbols)  # type: ignore[attr-defined]
    portfolio = check_weighting(strategy, bars.portfolio)
    # score weights: the kernel writes each combination's strength into a buffer of its own
    universe = universe_arrays(panel, portfolio, execution, np.zeros((0, 0)),
                               varied_exits=space.exit_names)  # fmt: skip
    rules = portfolio_rules(portfolio, execution)
    plan = _grid_plan(space, execution, windows, None)
    kernel_rows = kernel_params(space, execution)  # exits varied: each combination's own
    close = np.ascontiguousarray(panel.mark, dtype=np.float64)
    score_kernel = strategy.score_kernel  # type: ignore[attr-defined]
    code = SCORE_CODES.get(score_kernel, -1)
    selection = cross_section_selection(panel, strategy, portfolio.rebalance, code)
    kernel = cross_section_grid_builtin_nb if code >= 0 else _custom_cross_section_kernel(
        score_kernel)  # fmt: skip
    n_selections = int(np.count_nonzero(selection.at))
    matrices = n_selections * panel.n_symbols**2 * 8
    shared = score_kernel is cluster_reversion_score_nb and matrices <= budget // 4
    lookback = space.combos[:, space.names.index("lookback")] if shared else np.zeros(0)
    groups = ([np.flatnonzero(lookback == value) for value in np.unique(lookback)] if shared
              else [np.arange(len(space))])  # fmt: skip
    no_trades = np.empty(0, dtype=PORTFOLIO_TRADE_DTYPE)
    out = np.empty((len(space), len(windows), N_METRICS), dtype=np.float64)
    done = 0
    with _interrupted_grid(len(space), lambda: done):
        for rows in groups:
            if shared and len(rows):
                corr = np.empty((n_selections, panel.n_symbols, panel.n_symbols))
                lookback_correlations_nb(close, int(lookback[rows[0]]), selection.at, corr)
                call_selection = selection._replace(corr=corr)
            else:
                call_selection = selection
            for first in range(0, len(rows), _CROSS_SECTION_CALL):
                chunk = rows[first : first + _CROSS_SECTION_CALL]
                params = np.ascontiguousarray(kernel_rows[chunk])
                with signal_kernel_errors(strategy):  # a plug-in's exception: one line
                    out[chunk] = kernel(universe, close, params, call_selection, plan, rules,
                                        periods_per_year, no_trades)  # fmt: skip
                done += len(chunk)
                if progress is not None:
                    progress(done, len(space))
            corr = call_selection = None  # this lookback's matrices go before the next one's
    return out


@lru_cache(maxsize=32)
def _custom_cross_section_kernel(score_kernel: Callable[..., None]) -> Callable[..., Any]:
    """The cross-sectional grid kernel of a user's score kernel, bounds-checked."""
    from ivybt.kernels.cross_section_grid import make_cross_section_grid_kernel

    return make_cross_section_grid_kernel(checked_kernel(score_kernel))


def _universe_returns(
    bars: UniverseBars, space: ParamSpace, execution: ExecutionConfig, first_bar: int
) -> Float64Array2D:
    """`evaluate_returns` on a universe: a built-in strategy in one parallel kernel pass
    (`portfolio_grid_returns_builtin_nb`), a plug-in one combination at a time; each
    combination with its own exits when the space varies them."""
    from ivybt.engine.portfolio import account_plan, simulate_targets
    from ivybt.kernels.portfolio import PORTFOLIO_TRADE_DTYPE
    from ivybt.kernels.portfolio_grid import portfolio_grid_returns_builtin_nb

    strategy = space.strategy
    check_weighting(strategy, bars.portfolio)
    n_bars = bars.n_bars
    out = np.empty((n_bars - first_bar, len(space)), dtype=np.float64)
    if strategy.signal_kernel not in SIGNAL_CODES:  # a plug-in or a cross-sectional one
        initial = float(execution.initial_cash)
        for j in range(len(space)):
            target, portfolio, basis = account_plan(
                bars.panel, strategy, space.combination(j), execution.direction, bars.portfolio
            )
            traded_with = execution_with(execution, space.exits(j))  # 0: off
            equity = simulate_targets(bars.panel, target, traded_with, portfolio, first_bar,
                                      n_bars, 1.0, basis).equity  # fmt: skip
            previous = np.r_[initial, equity[:-1]]
            out[:, j] = np.where(equity != previous, equity / previous - 1.0, 0.0)
        return out
    distinct, slot_ids = space_indicators(space)
    tables, found = symbol_tables(bars.panel, distinct)
    slots = np.ascontiguousarray(np.asarray(found, dtype=np.int64)[slot_ids])
    plan = _grid_plan(space, execution, np.array([[first_bar, n_bars]]), None)
    with signal_kernel_errors(strategy):
        portfolio_grid_returns_builtin_nb(
            universe_arrays(bars.panel, bars.portfolio, execution,
                            varied_exits=space.exit_names),
            tables, slots, kernel_params(space, execution), plan,
            portfolio_rules(bars.portfolio, execution),
            np.empty(0, dtype=PORTFOLIO_TRADE_DTYPE), out,
        )  # fmt: skip
    return out


@lru_cache(maxsize=32)
def _custom_portfolio_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Any]:
    """The portfolio grid kernel of a user's signal kernel, bounds-checked."""
    from ivybt.kernels.portfolio_grid import make_portfolio_grid_kernel

    return make_portfolio_grid_kernel(checked_kernel(signal_kernel))


def _raise_first_bad_symbol(
    strategy: type[Strategy], out_bad: Int64Array2D, bars: UniverseBars, tables: Any,
    slots: Int64Array2D, params: Float64Array2D,
) -> None:  # fmt: skip
    """Raise for the first flagged combination (`raise_first_bad`), rerunning it alone on
    each symbol's bars until the symbol where its signal kernel breaks the target rule."""
    from ivybt.engine.user_kernels import run_user_kernel
    from ivybt.kernels.portfolio_grid import symbol_table_nb

    failed = out_bad[out_bad[:, 0] >= 0]
    if not len(failed):
        return
    combo = int(failed[np.argmin(failed[:, 0]), 0])
    for s in range(bars.panel.n_symbols):
        table = symbol_table_nb(tables, s)
        run_user_kernel(strategy, np.ascontiguousarray(table), slots[combo], params[combo])
    raise StrategyError(
        f"{strategy.name} with parameters {params[combo].tolist()}: its signal kernel broke the "
        "target rule or raised in a portfolio grid but not when run alone on each symbol; a "
        "signal kernel must depend on its arguments only (no global state)"
    )


@contextlib.contextmanager
def _interrupted_grid(total: int, done: Callable[[], int]) -> Iterator[None]:
    """Ctrl-C inside a grid's kernel calls (or Numba's SystemError wrapping it): one
    `StudyInterrupted` saying how many of `total` combinations were `done()`; a grid is
    written whole, so nothing was written."""
    try:
        yield
    except (KeyboardInterrupt, SystemError) as err:
        if not is_interrupt(err):
            raise
        raise StudyInterrupted(
            done(), total, "combinations", "a grid is written whole, so nothing was written"
        ) from err
