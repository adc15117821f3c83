"""Issue #20's GPU figures: W1-shaped grids on the GPU against the CPU kernel, same machine.

    python benchmarks/gpu_grid.py                      # every row, 3 timed runs each
    python benchmarks/gpu_grid.py --rows w1 --repeats 5 --json $OUT/gpu_grid.json

Rows (long-only SMA cross, fill at the signal bar's close, 0.1 % commission, all-in; every
metric of docs/metrics.md, on one window):

- w1: fast 2:101 x slow 5:204 (15,247 pairs), the last 2,520 bars of SPY 1d;
- w1-eurusd: the same pairs on all 74,439 bars of EURUSD 1h;
- synthetic: fast 2:101 x slow 5:604 (55,247 pairs) on 100,000 bars of a seeded geometric
  random walk (hourly-like steps, 0.2 % a bar).

For each row it prints, warm (one untimed run first, then the median of --repeats):
`evaluate_space(..., device="cpu")` (Numba's parallel CPU kernel on every core) and
`device="gpu"` end to end (the indicator table built on the CPU, copied once, the kernel,
the metrics copied back), the GPU kernel call alone on a prebuilt table
(`ivybt.engine.gpu.GpuGrid`), bar-combinations a second of each, and the agreement: the
trade counts' mismatches and the largest relative difference of every other metric (NaN
where both are NaN). Issue #20's target: >= 1e11 bar-combinations/s on `synthetic` with
every metric. Needs `pip install 'ivybt[gpu]'` and a GPU (or NUMBA_ENABLE_CUDASIM=1 with
`--rows w1 --small`, which only checks that the script runs). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import w1_data

from ivybt.config import ExecutionConfig
from ivybt.engine import gpu
from ivybt.engine.simulation import execution_tuple
from ivybt.engine.tables import bar_columns, indicator_table
from ivybt.kernels.grid import with_close_tables
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies import grid as grid_module
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space

EXECUTION = ExecutionConfig(fill="close", commission=w1_data.COMMISSION, slippage=0.0)
ROWS = {
    "w1": ("spy", "2:101", "5:204"),
    "w1-eurusd": ("eurusd", "2:101", "5:204"),
    "synthetic": ("synthetic", "2:101", "5:604"),
}


def columns_of(name: str, small: bool) -> tuple[dict[str, np.ndarray], float]:
    """The bar columns of a row's data and its bars per year."""
    if name == "synthetic":
        n = 5_000 if small else 100_000
        rng = np.random.default_rng(20)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0.0, 0.001, n)) * close
        frame = {"open": open_, "high": np.maximum(open_, close) + spread,
                 "low": np.minimum(open_, close) - spread, "close": close,
                 "volume": np.full(n, 1e6)}  # fmt: skip
        return frame, 6205.0
    frame = w1_data.load_bars(name)
    if small:
        frame = frame.iloc[-1000:]
    return bar_columns(frame), float(w1_data.DATASETS[name]["periods_per_year"])


def timed(function, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """(median seconds of `repeats` calls after one untimed call, the last result)."""
    result = function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def kernel_only(columns: dict[str, np.ndarray], space, periods_per_year: float):  # type: ignore[no-untyped-def]
    """A call of `GpuGrid` on a prebuilt indicator table (what `evaluate_space` times
    besides the table): returns a function of no arguments."""
    distinct, slot_ids = grid_module.space_indicators(space)
    table, rows = indicator_table(columns, distinct)
    slots = np.array([[rows[distinct[i]] for i in ids] for ids in slot_ids], dtype=np.int64)
    windows = np.array([[0, len(columns["close"])]], dtype=np.int64)
    prices = grid_module._prices(columns, EXECUTION, space)
    plan = with_close_tables(grid_module._grid_plan(space, EXECUTION, windows, None), prices[1])
    params = grid_module.kernel_params(space, EXECUTION)
    execution = execution_tuple(EXECUTION)
    device_grid = gpu.GpuGrid()
    return lambda: device_grid(prices, table, slots, params, plan, execution, periods_per_year)


def agreement(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Trade-count mismatches and the largest relative difference of each other metric."""
    out: dict[str, float] = {}
    for k, name in enumerate(METRIC_NAMES):
        a, b = got[:, k], want[:, k]
        if name == "n_trades":
            out["n_trades_mismatches"] = int((a != b).sum())
            continue
        both = np.isfinite(a) & np.isfinite(b)
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        scale = np.maximum(np.abs(b[both]), 1e-300)
        worst = float(np.max(np.abs(a[both] - b[both]) / scale)) if both.any() else 0.0
        out[name] = worst if same_nan else float("inf")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny data: checks the script")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    import numba

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{numba.get_num_threads()} Numba threads; {gpu.gpu_name()}")  # fmt: skip
    figures = []
    for row in args.rows.split(","):
        data, fast, slow = ROWS[row]
        columns, periods_per_year = columns_of(data, args.small)
        space = build_space(BUILTIN["sma_cross"], {"fast": fast, "slow": slow})
        n_bars, n_combos = len(columns["close"]), len(space)
        work = float(n_bars) * n_combos

        budget = 8 * 2**30
        run = functools.partial(evaluate_space, columns, space, EXECUTION, memory_budget=budget,
                                periods_per_year=periods_per_year)  # fmt: skip
        cpu_s, cpu = timed(functools.partial(run, device="cpu"), args.repeats)
        gpu_s, on_gpu = timed(functools.partial(run, device="gpu"), args.repeats)
        kernel_s, _ = timed(kernel_only(columns, space, periods_per_year), args.repeats)
        found = {
            "row": row, "bars": n_bars, "combinations": n_combos, "cpu_s": cpu_s,
            "gpu_s": gpu_s, "gpu_kernel_s": kernel_s, "cpu_rate": work / cpu_s,
            "gpu_rate": work / gpu_s, "gpu_kernel_rate": work / kernel_s,
            "agreement": agreement(on_gpu, cpu),  # type: ignore[arg-type]
        }  # fmt: skip
        figures.append(found)
        print(f"{row}: {n_bars:,} bars x {n_combos:,} pairs; CPU {cpu_s:.3f} s "
              f"({work / cpu_s:.2e}/s), GPU {gpu_s:.3f} s ({work / gpu_s:.2e}/s), "
              f"GPU kernel {kernel_s:.4f} s ({work / kernel_s:.2e}/s), "
              f"x{cpu_s / gpu_s:.1f} end to end")  # fmt: skip
        print(f"  agreement: {json.dumps(found['agreement'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
