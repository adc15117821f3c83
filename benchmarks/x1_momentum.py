"""X1 on IvyBT: a cross-sectional grid (issue #15): momentum_rotation's lookback x k on 100
synthetic symbols x 2,520 daily bars, one account per combination, in one `evaluate_space`.

    export NUMBA_CACHE_DIR=/tmp/numba-x1
    .venv/bin/python benchmarks/x1_momentum.py            # ~1 min

Universe: 100 geometric random walks (seed 0; daily drift and volatility drawn per symbol),
every symbol listed on every bar. Grid: lookback 21..252 step 21 (12 values) x k 1..20
(20 values), skip 21: 240 combinations; `--rebalance monthly` (the strategy's own schedule),
equal weight, long only, commission 0.1%, next-open fills. Checks 3 grid rows against
`simulate_portfolio` bit for bit, then prints the median of warm runs, and the time and peak
RSS of a fresh process with the default 1 GiB memory budget. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data.panel import panel_from_frames
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space

N_SYMBOLS, N_BARS, PPY = 100, 2_520, 252.0
SPACE = {"lookback": "21:252:21", "skip": "21", "k": "1:20"}
PORTFOLIO = PortfolioConfig(rebalance="monthly")
EXECUTION = ExecutionConfig(commission=0.001, slippage=0.0, direction="long")


def universe() -> UniverseBars:
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2010-01-04", periods=N_BARS)
    frames = {}
    for s in range(N_SYMBOLS):
        drift, vol = rng.normal(0.0003, 0.0003), rng.uniform(0.008, 0.03)
        close = 50.0 * np.exp(np.cumsum(rng.normal(drift, vol, N_BARS)))
        opened = close * np.exp(rng.normal(0.0, vol / 4, N_BARS))
        frames[f"X{s:03d}"] = pd.DataFrame(
            {"open": opened, "high": np.maximum(opened, close) * 1.002,
             "low": np.minimum(opened, close) * 0.998, "close": close, "volume": 1e6},
            index=index,
        )  # fmt: skip
    return UniverseBars(panel_from_frames(frames, "1d"), PORTFOLIO)


def evaluate(bars: UniverseBars, grid) -> np.ndarray:
    return evaluate_space(bars, grid, EXECUTION, periods_per_year=PPY)


def one_run(repeats: int) -> None:
    """Child mode: a fresh process's first run (loads the Numba cache) and warm runs."""
    bars, grid = universe(), build_space(BUILTIN["momentum_rotation"], SPACE)
    before = w1_data.peak_rss_mb()
    start = time.perf_counter()
    evaluate(bars, grid)
    first = time.perf_counter() - start
    warm, _ = w1_data.median_time(lambda: evaluate(bars, grid), repeats)
    print(json.dumps({"first": first, "warm": warm, "rss_before_mb": before,
                      "peak_rss_mb": w1_data.peak_rss_mb()}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.repeats)
        return
    bars, grid = universe(), build_space(BUILTIN["momentum_rotation"], SPACE)
    cells = N_BARS * N_SYMBOLS * len(grid)
    print(f"== X1: momentum_rotation, {N_BARS:,} bars x {N_SYMBOLS} symbols x {len(grid)} "
          f"combinations = {cells / 1e6:.1f} M bar-symbol-combinations")  # fmt: skip
    metrics = evaluate(bars, grid)  # compiles on a cold cache
    for j in (0, len(grid) // 2, len(grid) - 1):
        single = simulate_portfolio(bars.panel, grid.strategy, grid.combination(j), EXECUTION,
                                    PORTFOLIO, periods_per_year=PPY)  # fmt: skip
        want = np.array([single.metrics[name] for name in METRIC_NAMES])
        if not np.array_equal(metrics[j], want, equal_nan=True):
            raise SystemExit(f"grid row {j} != simulate_portfolio")
    print("grid rows 0, middle, last == simulate_portfolio bit for bit")
    median, times = w1_data.median_time(lambda: evaluate(bars, grid), args.repeats)
    print(f"warm runs (s): {', '.join(f'{t:.3f}' for t in times)}; median {median:.3f} s, "
          f"{cells / median / 1e6:.0f} M bar-symbol-combinations/s")  # fmt: skip
    command = [sys.executable, __file__, "--one-run", "--repeats", "3"]
    fresh = json.loads(subprocess.run(command, capture_output=True, text=True, check=True)
                       .stdout.strip().splitlines()[-1])  # fmt: skip
    print(f"fresh process: first run {fresh['first']:.3f} s, warm median {fresh['warm']:.3f} s;"
          f" peak RSS {fresh['peak_rss_mb']:.0f} MiB ({fresh['rss_before_mb']:.0f} MiB after "
          "imports and data; default memory budget 1,024 MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
