"""Evaluate every combination of a parameter space in chunks bounded by a memory budget.

Combinations are cut, in enumeration order, into chunks whose indicator table (distinct
indicators x bars x 8 bytes) fits half the budget; each chunk is one parallel kernel call
(`ivybt.kernels.grid`) that returns only metrics. Peak memory is the table of one chunk plus
the threads' buffers, whatever the number of combinations. A chunk's table serves several
kernel calls of ~0.5 s each, between which progress is reported and Ctrl-C is answered with
`StudyInterrupted` (what was finished).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache

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
from ivybt.errors import ConfigError, StudyInterrupted
from ivybt.kernels.grid import SIGNAL_CODES, GridPlan, grid_builtin_nb, make_grid_kernel
from ivybt.kernels.metrics import N_METRICS
from ivybt.simulation import execution_tuple
from ivybt.strategies.base import Indicator, Strategy
from ivybt.studies.space import ParamSpace
from ivybt.tables import indicator_table

Progress = Callable[[int, int], None]
"""progress(done, total): called after each kernel call with the combinations done so far."""

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes: 1 GiB
_THREAD_BYTES_PER_BAR = 1  # the target buffer of each block
_BLOCKS_PER_THREAD = 4  # blocks of combinations per thread, for load balance
_STEP = 256  # combinations by which a chunk grows
_CALL_BAR_COMBOS = 250_000_000  # bars x combinations per kernel call: ~0.5 s here
_MIN_CALL_COMBOS = 256  # enough blocks for every thread even on very long series


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
) -> Float64Array2D:
    """Metrics of every combination of `space` on `columns`: float64, (n_combos, N_METRICS).

    Signals use every bar of `columns` (or `signal_columns`, see `evaluate_windows`); trading
    and metrics start at `first_bar`. Row j equals `ivybt.simulation.simulate_strategy` for
    combination j, bit for bit.
    """
    windows = np.array([[first_bar, len(columns["close"])]], dtype=np.int64)
    return evaluate_windows(
        columns, space, execution, windows, periods_per_year=periods_per_year,
        memory_budget=memory_budget, progress=progress, signal_columns=signal_columns,
        signal_of=signal_of,
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
    """
    strategy = space.strategy
    n_bars = len(columns["close"])
    windows = np.ascontiguousarray(windows, dtype=np.int64).reshape(-1, 2)
    if len(windows) and not (
        (windows[:, 0] >= 0).all() and (windows[:, 0] < windows[:, 1]).all()
        and (windows[:, 1] <= n_bars).all()
    ):  # fmt: skip
        raise ConfigError(f"windows must satisfy 0 <= start < end <= {n_bars}; got {windows}")
    prices = np.ascontiguousarray(np.vstack([columns["open"], columns["close"]]))
    signals = columns if signal_columns is None else signal_columns
    if signal_columns is not None and (signal_of is None or len(signal_of) != n_bars):
        raise ConfigError("signal_columns need signal_of: one signal bar index per bar")
    kernel = _kernel_for(strategy)
    n_blocks = min(len(space), _BLOCKS_PER_THREAD * get_num_threads())
    plan = GridPlan(
        code=SIGNAL_CODES.get(strategy.signal_kernel, -1),
        direction=DIRECTION_CODES[execution.direction], n_blocks=n_blocks, windows=windows,
        signal_of=np.zeros(0, dtype=np.int64) if signal_of is None
        else np.ascontiguousarray(signal_of, dtype=np.int64),
    )  # fmt: skip
    kernel_execution = execution_tuple(execution)
    rows_budget = _rows_budget(memory_budget, max(n_bars, len(signals["close"])))
    out = np.empty((len(space), len(windows), N_METRICS), dtype=np.float64)
    distinct, slot_ids = space_indicators(space)
    done = 0
    try:
        for start, stop in _chunks(slot_ids, rows_budget):
            needed = np.unique(slot_ids[start:stop])
            table, rows = indicator_table(signals, [distinct[i] for i in needed])
            local = np.full(len(distinct), -1, dtype=np.int64)
            local[needed] = [rows[distinct[i]] for i in needed]
            for first, last in _slices(start, stop, n_bars * max(len(windows), 1)):
                out[first:last] = kernel(
                    prices, table, local[slot_ids[first:last]], space.combos[first:last],
                    plan, kernel_execution, periods_per_year,
                )  # fmt: skip
                done = last
                if progress is not None:
                    progress(done, len(space))
            del table  # the next chunk's table must not coexist with this one
    except KeyboardInterrupt as err:
        raise StudyInterrupted(
            done, len(space), "combinations", "a grid is written whole, so nothing was written"
        ) from err
    return out


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
    from ivybt.kernels.grid_returns import grid_returns_builtin_nb, make_returns_kernel

    strategy = space.strategy
    n_bars = len(columns["close"])
    prices = np.ascontiguousarray(np.vstack([columns["open"], columns["close"]]))
    signals = columns if signal_columns is None else signal_columns
    distinct, slot_ids = space_indicators(space)
    table, rows = indicator_table(signals, distinct)
    local = np.array([rows[indicator] for indicator in distinct], dtype=np.int64)
    plan = GridPlan(
        code=SIGNAL_CODES.get(strategy.signal_kernel, -1),
        direction=DIRECTION_CODES[execution.direction],
        n_blocks=min(max(len(space), 1), _BLOCKS_PER_THREAD * get_num_threads()),
        windows=np.array([[first_bar, n_bars]], dtype=np.int64),
        signal_of=np.zeros(0, dtype=np.int64) if signal_of is None
        else np.ascontiguousarray(signal_of, dtype=np.int64),
    )  # fmt: skip
    kernel = (
        grid_returns_builtin_nb if strategy.signal_kernel in SIGNAL_CODES
        else make_returns_kernel(strategy.signal_kernel)
    )  # fmt: skip
    out = np.empty((n_bars - first_bar, len(space)), dtype=np.float64)
    kernel(prices, table, local[slot_ids], space.combos, plan, execution_tuple(execution), out)
    return out


def _slices(start: int, stop: int, work_per_combo: int) -> Iterator[tuple[int, int]]:
    """Cut [start, stop) into kernel calls of about `_CALL_BAR_COMBOS` bar-combinations, so
    progress moves and Ctrl-C answers (between calls) every ~0.5 s on a big grid; each call
    ends with threads waiting for the slowest block, so calls are not made shorter."""
    size = max(_MIN_CALL_COMBOS, _CALL_BAR_COMBOS // max(work_per_combo, 1))
    for first in range(start, stop, size):
        yield first, min(first + size, stop)


def _kernel_for(strategy: type[Strategy]) -> Callable[..., Float64Array3D]:
    if strategy.signal_kernel in SIGNAL_CODES:
        return grid_builtin_nb
    return _custom_kernel(strategy.signal_kernel)


@lru_cache(maxsize=32)
def _custom_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Float64Array3D]:
    return make_grid_kernel(signal_kernel)


def _rows_budget(memory_budget: int, n_bars: int) -> int:
    """Indicator rows one chunk may hold: half the budget, after the threads' buffers."""
    threads_bytes = _BLOCKS_PER_THREAD * get_num_threads() * n_bars * _THREAD_BYTES_PER_BAR
    rows = (memory_budget // 2 - threads_bytes) // (8 * n_bars)
    if rows < 8:
        need = (threads_bytes + 16 * 8 * n_bars) / 2**20
        raise ConfigError(
            f"a memory budget of {memory_budget / 2**20:.0f} MiB is too small for {n_bars} bars; "
            f"give --memory-budget {need:.0f} MiB or more"
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
        args = np.column_stack(
            [np.broadcast_to(np.asarray(arg, dtype=np.int64), (n_combos,)) for arg in spec.args]
        ) if spec.args else np.zeros((n_combos, 0), dtype=np.int64)  # fmt: skip
        unique, inverse = _unique_rows(args)
        ids = [
            distinct.setdefault(Indicator(spec.kind, tuple(int(a) for a in row), spec.source),
                                len(distinct))
            for row in unique
        ]  # fmt: skip
        slot_ids[:, k] = np.asarray(ids, dtype=np.int64)[inverse.reshape(-1)]
    return list(distinct), slot_ids


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


def _chunks(slot_ids: Int64Array2D, rows_budget: int) -> Iterator[tuple[int, int]]:
    """[start, stop) blocks of combinations whose distinct indicators fit `rows_budget`.

    A block grows by `_STEP` combinations while its distinct rows fit, halving the step when
    they do not; one combination always runs, even if its own slots exceed the budget.
    """
    n_combos = slot_ids.shape[0]
    if slot_ids.max(initial=-1) < rows_budget:  # every distinct indicator fits at once
        yield 0, n_combos
        return
    start = 0
    while start < n_combos:
        stop = start + 1
        step = _STEP
        while stop < n_combos and step >= 1:
            grown = min(stop + step, n_combos)
            if len(np.unique(slot_ids[start:grown])) <= rows_budget:
                stop = grown
            else:
                step //= 2
        yield start, stop
        start = stop
