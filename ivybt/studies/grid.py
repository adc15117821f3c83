"""Evaluate every combination of a parameter space in chunks bounded by a memory budget.

Combinations are cut, in enumeration order, into chunks whose indicator table (distinct
indicators x bars x 8 bytes) fits half the budget; each chunk is one parallel kernel call
(`ivybt.kernels.grid`) that returns only metrics. Peak memory is the table of one chunk plus
the threads' buffers, whatever the number of combinations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache

import numpy as np
from numba import get_num_threads

from ivybt._typing import Float64Array1D, Float64Array2D
from ivybt.config import DIRECTION_CODES, ExecutionConfig
from ivybt.errors import ConfigError
from ivybt.kernels.grid import SIGNAL_CODES, grid_builtin_nb, make_grid_kernel
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.simulate import TRADE_DTYPE
from ivybt.simulation import execution_tuple
from ivybt.strategies.base import Indicator, Strategy
from ivybt.studies.space import ParamSpace
from ivybt.tables import indicator_table

Progress = Callable[[int, int], None]
"""progress(done, total): called after each chunk with combinations done so far."""

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes: 1 GiB
_THREAD_BYTES_PER_BAR = 2 * 8 + 1 + 96  # equity + units, target, one trade record
_BLOCKS_PER_THREAD = 4  # blocks of combinations per thread, for load balance


def evaluate_space(
    columns: Mapping[str, Float64Array1D],
    space: ParamSpace,
    execution: ExecutionConfig,
    *,
    periods_per_year: float,
    first_bar: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: Progress | None = None,
) -> Float64Array2D:
    """Metrics of every combination of `space` on `columns`: float64, (n_combos, N_METRICS).

    Signals use every bar of `columns`; trading and metrics start at `first_bar`. Row j equals
    `ivybt.simulation.simulate_strategy` for combination j, bit for bit.
    """
    strategy = space.strategy
    n_bars = len(columns["close"])
    prices = np.ascontiguousarray(np.vstack([columns["open"], columns["close"]]))
    kernel = _kernel_for(strategy)
    settings = np.array(
        [SIGNAL_CODES.get(strategy.signal_kernel, -1), DIRECTION_CODES[execution.direction],
         first_bar], dtype=np.int64,
    )  # fmt: skip
    kernel_execution = execution_tuple(execution)
    rows_budget = _rows_budget(memory_budget, n_bars)
    out = np.empty((len(space), N_METRICS), dtype=np.float64)
    scratch = np.empty((min(len(space), _BLOCKS_PER_THREAD * get_num_threads()), n_bars),
                       dtype=TRADE_DTYPE)  # fmt: skip
    done = 0
    for start, stop, indicators in _chunks(space, rows_budget):
        table, rows = indicator_table(
            columns, dict.fromkeys(i for combo in indicators for i in combo)
        )
        slots = np.array([[rows[i] for i in combo] for combo in indicators], dtype=np.int64)
        out[start:stop] = kernel(
            prices, table, slots.reshape(stop - start, -1), space.combos[start:stop], settings,
            kernel_execution, periods_per_year, scratch,
        )  # fmt: skip
        done = stop
        if progress is not None:
            progress(done, len(space))
    return out


def _kernel_for(strategy: type[Strategy]) -> Callable[..., Float64Array2D]:
    if strategy.signal_kernel in SIGNAL_CODES:
        return grid_builtin_nb
    return _custom_kernel(strategy.signal_kernel)


@lru_cache(maxsize=32)
def _custom_kernel(signal_kernel: Callable[..., None]) -> Callable[..., Float64Array2D]:
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


def _chunks(
    space: ParamSpace, rows_budget: int
) -> Iterator[tuple[int, int, list[tuple[Indicator, ...]]]]:
    """[start, stop) blocks of combinations whose distinct indicators fit `rows_budget`."""
    strategy = space.strategy
    start = 0
    distinct: set[Indicator] = set()
    chunk: list[tuple[Indicator, ...]] = []
    for j in range(len(space)):
        indicators = tuple(strategy.indicators(space.combination(j)))
        new = distinct.union(indicators)
        if chunk and len(new) > rows_budget:
            yield start, j, chunk
            start, distinct, chunk = j, set(indicators), []
        else:
            distinct = new
        chunk.append(indicators)
    yield start, len(space), chunk
