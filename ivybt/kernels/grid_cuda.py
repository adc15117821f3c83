"""A built-in strategy's whole grid on an NVIDIA GPU: one CUDA thread per combination.

Each thread runs the CPU grid's own kernels: `combination_traded_nb` (the signal kernel, the
Renko signal-bar map, the direction), `combination_execution_nb` (the combination's exits)
and `window_metrics_nb` (the event account of `ivybt.kernels.evaluate`, or the account with
stops, and every metric, reduced in the thread). Numba compiles those `@njit` functions for
the GPU when this kernel calls them, so fills, costs, directions, stops, Renko signal bars
and the metrics follow one code; nothing about a strategy is written twice. What differs
from `ivybt.kernels.grid.grid_builtin_nb`:

- each thread's target buffer is its column of a time-major int8 array (`work[t, j]`) and the
  indicator table is time-major (Fortran order: `table[r, t]` at r + t x n_rows), so the
  threads of a warp, stepping through the bars together, touch neighbouring bytes;
- a crossover's targets are written and then followed (`target_metrics_nb`), where the CPU
  follows the sign's moves without a target array (`follow_moves_metrics_nb`): the two give
  the same metrics bit for bit (tests/test_grid.py);
- arithmetic: the same operations in the same order, except that NVVM, which compiles for
  the GPU, may contract a multiply and an add into one fused multiply-add (its default),
  which rounds once instead of twice. A price, a fill or a return can then differ from the
  CPU's in its last bit, and the metrics agree to 1e-12 relative (the event account's own
  bound against the per-bar account, `ivybt.kernels.holding`, is of the same order), the
  trade counts exactly unless a comparison sits on a tie within one rounding.

Under Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`, how the tests run it on a machine
without a GPU) the kernel is plain Python and its arrays are the simulator's wrappers, which
compiled `@njit` functions cannot take; `native_array_nb` unwraps them there and is the
identity on a GPU.
"""

from __future__ import annotations

import numpy as np
from numba import config, cuda, njit

from ivybt.kernels.grid import (
    GridPlan,
    combination_execution_nb,
    combination_traded_nb,
    window_metrics_nb,
)
from ivybt.kernels.simulate import Execution

THREADS_PER_BLOCK = 128
"""CUDA threads per block of `grid_builtin_cuda` (four warps)."""

SETTINGS = (
    "fee_rate", "slippage_rate", "size", "fill_on_close", "initial_cash", "stop_loss",
    "take_profit", "trailing", "stop_atr", "max_bars", "periods_per_year", "code", "direction",
    "exit_column", "close_usable",
)  # fmt: skip
"""The scalars `grid_builtin_cuda` takes in one float64 array `settings`, in this order: the
`Execution` fields, the bars per year, and the `GridPlan` fields that are not arrays (small
integers and flags, exact as float64)."""


@njit(cache=True, inline="always")
def native_array_nb(value: np.ndarray) -> np.ndarray:
    """An array argument of `grid_builtin_cuda` as the `@njit` kernels take it: itself on a GPU
    (the simulator's stand-in unwraps it, `_simulated_array`)."""
    return value


def _simulated_array(value: object) -> np.ndarray:
    """The NumPy array inside the CUDA simulator's in-kernel array wrapper."""
    inner = getattr(value, "_item", value)
    return np.asarray(getattr(inner, "_ary", inner))


_native = _simulated_array if config.ENABLE_CUDASIM else native_array_nb


def _grid_thread(
    prices: np.ndarray, table: np.ndarray, slots: np.ndarray, params: np.ndarray,
    windows: np.ndarray, signal_of: np.ndarray, sums: np.ndarray, sparse: np.ndarray,
    levels: np.ndarray, settings: np.ndarray, no_bars: np.ndarray, no_trades: np.ndarray,
    work: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """Thread j: combination j's metrics on every window into out[j] (`grid_builtin_nb`'s)."""
    j = cuda.grid(1)
    if j >= out.shape[0]:
        return
    prices = _native(prices)
    table = _native(table)
    slots = _native(slots)
    params = _native(params)
    windows = _native(windows)
    signal_of = _native(signal_of)
    sums = _native(sums)
    sparse = _native(sparse)
    levels = _native(levels)
    settings = _native(settings)
    no_bars = _native(no_bars)
    no_trades = _native(no_trades)
    work = _native(work)
    out = _native(out)
    execution = Execution(
        settings[0], settings[1], settings[2], settings[3] != 0.0, settings[4], settings[5],
        settings[6], settings[7], settings[8], int(settings[9]),
    )  # fmt: skip
    exit_column = int(settings[13])
    usable = settings[14] != 0.0
    plan = GridPlan(int(settings[11]), int(settings[12]), 1, windows, signal_of, exit_column,
                    sums, sparse, levels, usable)  # fmt: skip
    column = work[:, j]
    combination_traded_nb(table, slots[j], params[j], plan, column)
    traded = column[: prices.shape[1]]
    traded_with = combination_execution_nb(execution, params[j], exit_column)
    window_metrics_nb(prices, traded, windows, traded_with, (sums, sparse, levels, usable),
                      settings[10], (no_bars, no_trades), out[j])  # fmt: skip


grid_builtin_cuda = cuda.jit(cache=True)(_grid_thread)
"""The CUDA kernel: launch with `THREADS_PER_BLOCK` threads and one thread per row of `out`.

prices : float64, (2 or 5, n_bars), C order (`grid_builtin_nb`'s).
table : float64, (n_rows, n_signal_bars), Fortran order (time-major).
slots, params : int64 and float64, one row per combination of this launch.
windows, signal_of : `GridPlan`'s.
sums, sparse, levels : the close tables (`ivybt.kernels.holding.CloseTables`).
settings : float64, the scalars named by `SETTINGS`.
no_bars, no_trades : empty float64 and `TRADE_DTYPE` arrays (`no_records_nb`).
work : int8, (n_bars + n_signal_bars with a signal-bar map, else n_bars; n_combos), C order:
    each thread's targets in its column (`combination_traded_nb`).
out : float64, (n_combos, n_windows, N_METRICS), written.
"""
