"""X1, cluster part: cluster_mean_reversion's default grid on X1's synthetic universes, with
the correlation matrices shared per lookback (the default) and without (each combination
computes its own, as before), issue #15.

    export NUMBA_CACHE_DIR=/tmp/numba-x1
    .venv/bin/python benchmarks/x1_cluster.py             # ~3 min (the unshared 100-symbol run)

Universes: the first 20, then all 100, of X1's geometric random walks (2,520 daily bars).
Grid: the strategy's default space (lookback 20..120 step 20 x threshold 0.3..0.8 step 0.1 x
reversion 5..20 step 5 x k 1..5: 720 combinations), weekly selection (its schedule), both
directions, equal weight, commission 0.1%, next-open fills, one `evaluate_space` call.
Checks the shared grid equals the unshared one bit for bit and 3 rows equal
`simulate_portfolio`, then prints one warm run of each. Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data
import x1_momentum

import ivybt.studies.grid as grid_module
from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space

PORTFOLIO = PortfolioConfig()  # rebalance "signal": the strategy's weekly selection
EXECUTION = ExecutionConfig(commission=0.001, slippage=0.0, direction="both")


def timed(bars: UniverseBars, grid, *, shared: bool) -> tuple[np.ndarray, float]:
    """One warm `evaluate_space`; `shared=False` leaves the matrices no room in the budget
    (what a universe too large for them gets): each combination computes its own."""
    original = grid_module._cross_section_windows

    def no_room(*args, **kwargs):
        return original(*args, **(kwargs | {"budget": 0}))

    grid_module._cross_section_windows = original if shared else no_room
    try:
        start = time.perf_counter()
        out = evaluate_space(bars, grid, EXECUTION, periods_per_year=252.0)
        return out, time.perf_counter() - start
    finally:
        grid_module._cross_section_windows = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-unshared-100", action="store_true",
                        help="no unshared run on 100 symbols (about 1 minute)")  # fmt: skip
    args = parser.parse_args()
    full = x1_momentum.universe()
    grid = build_space(BUILTIN["cluster_mean_reversion"], {})
    for n_symbols in (20, 100):
        panel = full.panel.subset(tuple(range(n_symbols)))
        bars = UniverseBars(panel, PORTFOLIO)
        selections = int(np.count_nonzero(
            np.diff(panel.index.to_period("W").asi8, prepend=-1)))  # fmt: skip
        matrices = selections * n_symbols**2 * 8 / 2**20
        print(
            f"== {n_symbols} symbols x {panel.n_bars:,} bars x {len(grid)} combinations; "
            f"{selections} weekly selections, one lookback's matrices {matrices:.1f} MiB"
        )
        evaluate_space(bars, build_space(BUILTIN["cluster_mean_reversion"],
                                         {"lookback": "20", "k": "1"}), EXECUTION,
                       periods_per_year=252.0)  # compile  # fmt: skip
        shared, shared_s = timed(bars, grid, shared=True)
        for j in (0, len(grid) // 2, len(grid) - 1):
            single = simulate_portfolio(panel, grid.strategy, grid.combination(j), EXECUTION,
                                        PORTFOLIO, periods_per_year=252.0)  # fmt: skip
            want = np.array([single.metrics[name] for name in METRIC_NAMES])
            if not np.array_equal(shared[j], want, equal_nan=True):
                raise SystemExit(f"grid row {j} != simulate_portfolio")
        print(
            f"  shared per lookback: {shared_s:.2f} s ({shared_s / len(grid) * 1e3:.1f} ms a "
            "combination); rows 0, middle, last == simulate_portfolio bit for bit"
        )
        if n_symbols == 100 and args.skip_unshared_100:
            continue
        alone, alone_s = timed(bars, grid, shared=False)
        if not np.array_equal(alone, shared, equal_nan=True):
            raise SystemExit("the shared grid differs from the unshared one")
        print(
            f"  each combination its own: {alone_s:.2f} s; the same metrics bit for bit; "
            f"sharing {alone_s / shared_s:.1f}x faster"
        )
    print(f"peak RSS {w1_data.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
