"""Issue #19: W1 under a memory budget smaller than its indicator table, against no budget.

    NUMBA_CACHE_DIR=/tmp/numba-x .venv/bin/python benchmarks/memory_budget.py
    .venv/bin/python benchmarks/memory_budget.py --data eurusd --rounds 3 --repo /other/checkout

W1's space (sma_cross fast 2:101 x slow 5:204, 15,247 pairs, 203 distinct SMA rows) on EURUSD
1h (74,439 bars) and on SPY's last 2,520 daily bars, `evaluate_space` in a fresh process per
run (`/usr/bin/time -f %M` gives its peak RSS), with these budgets:

- none: the default 1 GiB, so the whole indicator table is one chunk;
- table/6: the per-combination arrays `check_memory` reserves (`combination_bytes`, no
  overfitting statistics) and the kernels' working memory (`working_bytes`: block buffers
  and close tables) plus a sixth of the full table (rows x bars x 8 bytes); a chunk's table
  then gets half of that sixth (`_rows_budget`), 15 rows on either series;
- chunk/6: the same reserve plus what lets a chunk's table be a sixth of the full table
  (twice that sixth and the threads' buffers), 33 rows;
- 160 MiB (EURUSD only): benchmarks/README.md's earlier memory-budget run (140 rows).

Each child warms up (loads the kernels) on a small space untimed, then times `--repeats` full
runs and reports their median, the indicator chunks of one run, its `indicator_table` calls and
the table rows they computed in all, wall and CPU (process) seconds; the parent checks
every budgeted table equal to the unbudgeted one bit for bit and prints the time ratios.
`--rounds` repeats the whole set, interleaved, and takes the median of the children's medians
(the machine is shared: noisy; CPU seconds are steadier than wall seconds there).
`--repo` imports IvyBT from another checkout (the "before" figures); `--threads 1` times the
work alone: on a loaded machine each parallel call waits for its other threads to be
scheduled, which inflates runs of many small chunks most. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
SPACE = {"fast": "2:101", "slow": "5:204"}
WARM_SPACE = {"fast": "2:5", "slow": "5:10"}
SYMBOLS = {"spy": ("SPY", "1d"), "eurusd": ("EURUSD", "1h")}
BUDGETS = {"spy": ("none", "table/6", "chunk/6"),
           "eurusd": ("none", "table/6", "chunk/6", "160MiB")}  # fmt: skip


def child(name: str, mode: str, repeats: int, out: str) -> None:
    """One fresh process: warm up, time `repeats` runs under budget `mode`, save the table."""

    from ivybt.config import ExecutionConfig
    from ivybt.data.sample import load_sample
    from ivybt.engine.tables import bar_columns
    from ivybt.strategies import BUILTIN
    from ivybt.studies import grid as grid_module
    from ivybt.studies.space import build_space

    symbol, interval = SYMBOLS[name]
    frame, _ = load_sample(symbol, interval)
    last = w1_data.DATASETS[name]["last"]
    columns = bar_columns(frame if last is None else frame.iloc[-int(last) :])
    ppy = float(w1_data.DATASETS[name]["periods_per_year"])
    execution = ExecutionConfig(commission=w1_data.COMMISSION, slippage=0.0, fill="close",
                                direction="long", size=1.0)  # fmt: skip
    strategy = BUILTIN["sma_cross"]
    space = build_space(strategy, SPACE)
    n_bars = len(columns["close"])
    distinct, _ = grid_module.space_indicators(space)
    table_bytes = len(distinct) * n_bars * 8
    reserved = len(space) * grid_module.combination_bytes(2, 2, evidence=False)
    threads = grid_module.working_bytes(n_bars)  # block buffers and close tables
    budget = {
        "none": grid_module.DEFAULT_MEMORY_BUDGET,
        "table/6": reserved + 2 * threads + table_bytes // 6,
        "chunk/6": reserved + 2 * (threads + table_bytes // 6),
        "160MiB": 160 * MIB,
    }[mode]
    reserved = 0 if mode == "160MiB" else reserved  # the README's run passed none
    tables: list[int] = []
    original = grid_module.indicator_table

    def counting(signals, wanted):
        table, rows = original(signals, wanted)
        tables.append(table.shape[0])
        return table, rows

    grid_module.indicator_table = counting
    chunks: list[int] = []
    if hasattr(grid_module, "chunk_plan"):  # older checkouts: one table per chunk
        planned = grid_module.chunk_plan

        def counting_plan(slot_ids, rows_budget):
            order, breaks = planned(slot_ids, rows_budget)
            chunks.append(len(breaks))
            return order, breaks

        grid_module.chunk_plan = counting_plan

    def run(which):
        return grid_module.evaluate_space(
            columns, which, execution, periods_per_year=ppy, memory_budget=budget,
            reserved_bytes=reserved,
        )  # fmt: skip

    run(build_space(strategy, WARM_SPACE))  # loads (or compiles) the kernels: untimed
    times, cpu = [], []
    for _ in range(repeats):
        tables.clear()
        chunks.clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        metrics = run(space)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    np.save(out, metrics)
    print(json.dumps({
        "seconds": float(np.median(times)), "times": times, "cpu": float(np.median(cpu)),
        "chunks": chunks[0] if chunks else len(tables), "table_calls": len(tables),
        "rows": int(sum(tables)), "distinct": len(distinct), "n_bars": n_bars,
        "combos": len(space), "budget_mib": budget / MIB, "reserved_mib": reserved / MIB,
        "rows_budget": grid_module._rows_budget(budget - reserved, n_bars),
        "table_mib": table_bytes / MIB,
    }))  # fmt: skip


def fresh(name: str, mode: str, repeats: int, repo: str, out: str) -> dict:
    gnu_time = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    command = [sys.executable, __file__, "--child", name, "--budget", mode, "--repeats",
               str(repeats), "--repo", repo, "--save", out]  # fmt: skip
    done = subprocess.run(gnu_time + command, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        raise SystemExit(f"{name} {mode} failed:\n{done.stderr}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["peak_rss_mib"] = int(done.stderr.strip().splitlines()[-1]) / 1024 if gnu_time else None
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=["spy", "eurusd", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--repo", default=str(HERE.parent), help="the IvyBT checkout to time")
    parser.add_argument("--threads", type=int, help="NUMBA_NUM_THREADS of the runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--budget", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.repo).resolve()))
    if args.threads:
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    if args.child:
        child(args.child, args.budget, args.repeats, args.save)
        return
    import ivybt

    print(w1_data.machine())
    print(f"ivybt from {Path(ivybt.__file__).parent}, NUMBA_CACHE_DIR="
          f"{os.environ.get('NUMBA_CACHE_DIR', 'unset')}")  # fmt: skip
    names = ["spy", "eurusd"] if args.data == "both" else [args.data]
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            runs: dict[str, list[dict]] = {mode: [] for mode in BUDGETS[name]}
            for _ in range(args.rounds):
                for mode in BUDGETS[name]:
                    out = f"{folder}/{name}-{mode.replace('/', '')}.npy"
                    runs[mode].append(fresh(name, mode, args.repeats, args.repo, out))
            whole = np.load(f"{folder}/{name}-none.npy")
            first = runs["none"][0]
            base = float(np.median([r["seconds"] for r in runs["none"]]))
            base_cpu = float(np.median([r["cpu"] for r in runs["none"]]))
            print(f"\n== W1 {name}: {first['n_bars']:,} bars x {first['combos']:,} pairs, "
                  f"{first['distinct']} distinct SMA rows, full table {first['table_mib']:.1f} "
                  f"MiB; {args.rounds} round(s) x {args.repeats} warm runs")  # fmt: skip
            print(f"{'budget':>8} {'MiB':>8} {'rows room':>9} {'chunks':>6} {'calls':>6} "
                  f"{'rows':>6} {'seconds':>8} {'ratio':>6} {'CPU s':>7} {'ratio':>6} "
                  f"{'peak RSS MiB':>12}  same table")  # fmt: skip
            for mode, got in runs.items():
                same = np.array_equal(
                    np.load(f"{folder}/{name}-{mode.replace('/', '')}.npy"), whole,
                    equal_nan=True,
                )  # fmt: skip
                seconds = float(np.median([r["seconds"] for r in got]))
                cpu = float(np.median([r["cpu"] for r in got]))
                rss = max(r["peak_rss_mib"] or 0 for r in got)
                print(f"{mode:>8} {got[0]['budget_mib']:>8.1f} {got[0]['rows_budget']:>9} "
                      f"{got[0]['chunks']:>6} {got[0]['table_calls']:>6} {got[0]['rows']:>6} "
                      f"{seconds:>8.3f} "
                      f"{seconds / base:>5.2f}x {cpu:>7.3f} {cpu / base_cpu:>5.2f}x {rss:>12.0f}  "
                      f"{'yes' if same else 'NO'}")  # fmt: skip
                if not same:
                    raise SystemExit(f"{name} {mode}: the table differs from the unbudgeted one")


if __name__ == "__main__":
    main()
