"""W1 on IvyBT: the whole SMA-cross grid in one `evaluate_space` call (issue #5, section 5).

    .venv/bin/python benchmarks/w1_grid.py                 # both datasets, CLI and budget runs
    .venv/bin/python benchmarks/w1_grid.py --data spy --skip-cli --skip-budget

For each dataset: check the inputs and a sample of grid rows against single backtests, warm up
(compile) untimed, then print the median of `--repeats` warm runs, bar-combinations per second
and the peak RSS of a fresh process doing one full run; write per-pair metrics to
benchmarks/results/w1_ivybt_<data>.parquet and IvyBT's SMA of every window (2..204) to
w1_ivybt_<data>_sma.npy, for check_parity.py and benchmarks/peers/w1_vectorbt.py. Then time
`ivybt grid` end to end on an empty and on a populated NUMBA_CACHE_DIR, and show peak RSS
against --memory-budget.
Prints figures only: nothing here asserts a time.
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns, indicator_table
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.strategies.base import Indicator
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space

EXECUTION = ExecutionConfig(
    commission=w1_data.COMMISSION, slippage=0.0, fill="close", direction="long", size=1.0
)
SEED = 0
N_CHECKED = 20  # grid rows compared with single backtests before timing
MIB = 1 << 20
WARM_CLI_RUNS = 5


def load_columns(name: str) -> dict[str, np.ndarray]:
    """The bars of dataset `name` through IvyBT's loader, checked against w1_data's reader."""
    symbol, interval = {"spy": ("SPY", "1d"), "eurusd": ("EURUSD", "1h")}[name]
    frame, _ = load_sample(symbol, interval)
    last = w1_data.DATASETS[name]["last"]
    if last is not None:
        frame = frame.iloc[-int(last) :]
    columns = bar_columns(frame)
    if not np.array_equal(columns["close"], w1_data.load_close(name).to_numpy()):
        raise SystemExit(f"{name}: load_sample's closes differ from the bundled parquet file")
    return columns


def evaluate(columns, space, periods_per_year):
    return evaluate_space(columns, space, EXECUTION, periods_per_year=periods_per_year)


def check_rows(columns, space, metrics, periods_per_year) -> None:
    """Sampled grid rows equal single backtests of the same pair, bit for bit."""
    rng = np.random.default_rng(SEED)
    for j in rng.choice(len(space), size=N_CHECKED, replace=False):
        single = simulate_strategy(columns, space.strategy, space.combination(int(j)), EXECUTION,
                                   periods_per_year=periods_per_year)  # fmt: skip
        want = np.array([single.metrics[name] for name in METRIC_NAMES])
        if not np.array_equal(metrics[j], want, equal_nan=True):
            raise SystemExit(f"grid row {j} {space.combination(int(j))} != single backtest")


def one_run(name: str, slow: str, budget_mb: float | None) -> None:
    """Child mode: one full grid in a fresh process; print JSON with its peak RSS."""
    columns = load_columns(name)
    before = w1_data.peak_rss_mb()
    budget = None if budget_mb is None else int(budget_mb * MIB)
    chunks = []
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": slow})
    start = time.perf_counter()
    evaluate_space(columns, space, EXECUTION,
                   periods_per_year=float(w1_data.DATASETS[name]["periods_per_year"]),
                   progress=lambda done, total: chunks.append(done),
                   **({} if budget is None else {"memory_budget": budget}))  # fmt: skip
    print(json.dumps({"combos": len(space), "seconds": time.perf_counter() - start,
                      "chunks": len(chunks), "rss_before_mb": before,
                      "peak_rss_mb": w1_data.peak_rss_mb()}))  # fmt: skip


def fresh_run(name: str, slow: str = "5:204", budget_mb: float | None = None) -> dict:
    command = [sys.executable, __file__, "--one-run", name, "--slow", slow]
    if budget_mb is not None:
        command += ["--memory-budget", str(budget_mb)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(name: str, repeats: int) -> None:
    columns = load_columns(name)
    ppy = float(w1_data.DATASETS[name]["periods_per_year"])
    n_bars = len(columns["close"])
    start = time.perf_counter()
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": "5:204"})
    space_seconds = time.perf_counter() - start
    for _ in range(2):  # untimed warm-up: compile (or load the Numba cache), fault pages in
        metrics = evaluate(columns, space, ppy)
    fast, slow = w1_data.pairs()
    if not (np.array_equal(space.combos[:, 0], fast) and np.array_equal(space.combos[:, 1], slow)):
        raise SystemExit("the space's pairs differ from w1_data.pairs()")
    check_rows(columns, space, metrics, ppy)
    median, times = w1_data.median_time(lambda: evaluate(columns, space, ppy), repeats)
    w1_data.RESULTS_DIR.mkdir(exist_ok=True)
    table = pd.DataFrame(metrics, columns=list(METRIC_NAMES))
    table.insert(0, "slow", slow)
    table.insert(0, "fast", fast)
    table.to_parquet(w1_data.RESULTS_DIR / f"w1_ivybt_{name}.parquet")
    sma = [Indicator("sma", (w,)) for w in range(2, 205)]  # the rows the grid computes
    sma_table, rows = indicator_table(columns, sma)
    np.save(w1_data.RESULTS_DIR / f"w1_ivybt_{name}_sma.npy", sma_table[[rows[i] for i in sma]])
    fresh = fresh_run(name)
    print(f"\n== W1 {name}: {n_bars:,} bars x {len(space):,} pairs "
          f"= {n_bars * len(space):,} bar-combinations")  # fmt: skip
    print(f"grid rows == single backtests for {N_CHECKED} sampled pairs (seed {SEED})")
    print(f"build_space: {space_seconds * 1e3:.1f} ms (not in the times below)")
    print(f"warm runs of evaluate_space (s): {', '.join(f'{t:.3f}' for t in times)}")
    print(f"median {median * 1e3:.1f} ms, {n_bars * len(space) / median / 1e6:,.0f} M "
          "bar-combinations/s")  # fmt: skip
    print(f"fresh process, one full run: {fresh['seconds']:.3f} s (first call: Numba cache "
          f"load), peak RSS {fresh['peak_rss_mb']:.0f} MiB "
          f"({fresh['rss_before_mb']:.0f} MiB after imports and data)")  # fmt: skip


def bench_cli() -> None:
    """`ivybt grid` end to end as a subprocess, cold (empty NUMBA_CACHE_DIR) then warm.

    Peak RSS comes from GNU time (`/usr/bin/time -f %M`), which forks the command from its
    own small process, so the figure is the CLI's own.
    """
    ivybt = str(Path(sys.executable).with_name("ivybt"))
    gnu_time = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        print("\n== ivybt grid sma_cross --symbol SPY --source sample (all 5,241 bars), "
              "15,247 pairs, --fill close --slippage 0")  # fmt: skip
        warm = []
        for label in ["cold"] + ["warm"] * WARM_CLI_RUNS:
            command = [ivybt, "grid", "sma_cross", "--symbol", "SPY", "--source", "sample",
                       "-p", "fast=2:101", "-p", "slow=5:204", "--fill", "close",
                       "--slippage", "0", "--out", f"{out}/run", "--overwrite"]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(gnu_time + command, env=env, check=True, capture_output=True,
                                  text=True)  # fmt: skip
            seconds = time.perf_counter() - start
            peak = (f"peak RSS {int(done.stderr.strip().splitlines()[-1]) / 1024:.0f} MiB"
                    if gnu_time else "peak RSS n/a (no /usr/bin/time)")  # fmt: skip
            print(f"{label} Numba cache: {seconds:.2f} s end to end, {peak}")
            if label == "warm":
                warm.append(seconds)
        print(f"warm median {np.median(warm):.2f} s")


def bench_budget() -> None:
    """Peak RSS of fresh processes on EURUSD 1h: grid size x --memory-budget."""
    print("\n== memory budget, EURUSD 1h (74,439 bars), fresh process per run")
    print(f"{'slow':>8} {'pairs':>7} {'budget MiB':>10} {'chunks':>6} {'seconds':>8} "
          f"{'peak RSS MiB':>12}")  # fmt: skip
    for slow in ("5:204", "5:604"):
        for budget in (160.0, 1024.0):
            got = fresh_run("eurusd", slow, budget)
            print(f"{slow:>8} {got['combos']:>7,} {budget:>10.0f} {got['chunks']:>6} "
                  f"{got['seconds']:>8.2f} {got['peak_rss_mb']:>12.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["spy", "eurusd", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-budget", action="store_true")
    parser.add_argument("--one-run", choices=list(w1_data.DATASETS), help=argparse.SUPPRESS)
    parser.add_argument("--slow", default="5:204", help=argparse.SUPPRESS)
    parser.add_argument("--memory-budget", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.one_run, args.slow, args.memory_budget)
        return
    import numba

    import ivybt

    print(w1_data.machine())
    print(f"ivybt {ivybt.__version__}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"pandas {pd.__version__}")  # fmt: skip
    for name in ["spy", "eurusd"] if args.data == "all" else [args.data]:
        bench(name, args.repeats)
    if not args.skip_cli:
        bench_cli()
    if not args.skip_budget:
        bench_budget()


if __name__ == "__main__":
    main()
