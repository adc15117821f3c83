"""Issue #18: grid chunks and walk-forward folds on a 2-worker Dask LocalCluster vs local.

    NUMBA_CACHE_DIR=/tmp/numba-dask .venv/bin/python benchmarks/dask_grid.py [--repeats 3]

- grid: the W1 grid (15,247 SMA pairs, fast 2:101 x slow 5:204) on the bundled SPY daily bars
  with --memory-budget 16, so the grid runs in many indicator chunks; local (one process,
  every core to Numba) vs Dask (2 worker processes x cores // 2 Numba threads, the bars
  scattered once per worker). Overhead per task = (Dask - local) / tasks.
- walk-forward: 10 rolling folds of the same grid (--is 1000 --folds 10 on the last 2,520
  bars, as benchmarks/wf_surface.py), local vs one Dask task per fold.
- the start and stop of a `--cluster local:2` (what a command pays on top).

Untimed warm-up runs compile the kernels (here and on the workers); the Dask tables are
checked equal to the local ones, bit for bit, before any timing. Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

import ivybt
from ivybt.data.sample import load_sample
from ivybt.studies import cluster as cluster_module
from ivybt.studies import grid as grid_module

GRID = {"symbol": "SPY", "source": "sample", "params": {"fast": "2:101", "slow": "5:204"},
        "evidence": False, "memory_budget_mb": 16}  # fmt: skip
WF = {"params": {"fast": "2:101", "slow": "5:204"}, "in_sample": 1000, "folds": 10,
      "evidence": False}  # fmt: skip


def timed(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    import distributed

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(w1_data.machine())
    print(f"dask {distributed.__version__}, ivybt {ivybt.__version__}")
    cores = os.cpu_count() or 1
    tasks_seen: list[int] = []
    chunks_seen: list[int] = []
    original_plan = grid_module.chunk_plan

    def counting_plan(slot_ids, rows_budget):
        order, breaks = original_plan(slot_ids, rows_budget)
        chunks_seen.append(len(breaks))
        return order, breaks

    grid_module.chunk_plan = counting_plan
    original = cluster_module.run_tasks

    def counting(client, function, items, **kwargs):
        tasks_seen.append(len(items))
        return original(client, function, items, **kwargs)

    cluster_module.run_tasks = counting
    start = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None,
        env={"NUMBA_NUM_THREADS": str(max(1, cores // 2))},
    ) as local_cluster:  # fmt: skip
        startup = time.perf_counter() - start
        address = local_cluster.scheduler_address
        # grid -------------------------------------------------------------------------------
        here = ivybt.grid("sma_cross", **GRID)  # warm-up (compiles) and reference
        n_chunks = chunks_seen[-1]
        there = ivybt.grid("sma_cross", scheduler=address, **GRID)  # warm-up on the workers
        pd.testing.assert_frame_equal(here.table, there.table, check_exact=True)
        n_tasks = tasks_seen[-1]
        t_local = timed(lambda: ivybt.grid("sma_cross", **GRID), args.repeats)
        t_dask = timed(lambda: ivybt.grid("sma_cross", scheduler=address, **GRID), args.repeats)
        print(f"grid: {len(here.table):,} combinations on SPY daily bars, "
              f"memory budget {GRID['memory_budget_mb']} MB: {n_chunks} indicator chunks locally, "
              f"{n_tasks} Dask tasks")  # fmt: skip
        print(f"  local   {t_local:7.3f} s")
        print(f"  dask    {t_dask:7.3f} s   overhead {(t_dask - t_local) / n_tasks * 1e3:+.1f} "
              "ms per task")  # fmt: skip
        # walk-forward -----------------------------------------------------------------------
        frame, _ = load_sample("SPY", "1d")
        spy = frame.iloc[-2520:]
        with tempfile.TemporaryDirectory() as tmp:
            runs = iter(range(10**6))

            def walk(**kwargs):
                return ivybt.walk_forward("sma_cross", data=spy, out=Path(tmp) / str(next(runs)),
                                          **WF, **kwargs)  # fmt: skip

            a, b = walk(), walk(scheduler=address)
            for name in ("folds.parquet", "surface.parquet", "oos_equity.parquet"):
                pd.testing.assert_frame_equal(pd.read_parquet(a.folder / name),
                                              pd.read_parquet(b.folder / name),
                                              check_exact=True)  # fmt: skip
            w_local = timed(walk, args.repeats)
            w_dask = timed(lambda: walk(scheduler=address), args.repeats)
        print(
            f"walk-forward: {len(a.folds)} folds x {len(a.space):,} combinations, "
            "IS and OOS surfaces, whole run folder"
        )
        print(f"  local   {w_local:7.3f} s")
        per_fold = (w_dask - w_local) / len(a.folds) * 1e3
        print(f"  dask    {w_dask:7.3f} s   overhead {per_fold:+.1f} ms per fold")
    print(f"LocalCluster(2) start {startup:.2f} s")
    start = time.perf_counter()
    ivybt.grid("sma_cross", cluster="local:2", **GRID)
    print(f"ivybt.grid(..., cluster='local:2') incl. start and stop: "
          f"{time.perf_counter() - start:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
