"""Exits as parameters on a universe (issue #16): an SMA-cross portfolio grid on the bundled
demo universe (SPY, MSFT, AAPL, GOOG, IBM daily bars from 2000, one account per combination)
with and without `-p sl=...` varied per combination.

    export NUMBA_CACHE_DIR=/tmp/numba-uexits
    .venv/bin/python benchmarks/universe_exits.py            # ~1 min

Three timings of `evaluate_space` on a `UniverseBars`: the 50 pairs (fast 5..50 by 5 x slow
50..250 by 50) without exits; the same pairs x `-p sl=0:0.08:0.02` (5 values, 0: off) in one
kernel pass (250 combinations, each reading its stop-loss from its parameter row); and the
5 passes of 50 pairs with that stop-loss fixed (`--sl`), what a universe needed before.
Checks sampled rows against `simulate_portfolio` with their stop-loss bit for bit first.
Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data.panel import load_panel
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space, execution_with, with_exits

SYMBOLS = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")
PAIRS = {"fast": "5:50:5", "slow": "50:250:50"}
STOP_LOSSES = "0:0.08:0.02"
N_CHECKED = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    panel = load_panel(SYMBOLS, "1d", "2000-01-01", None, source="sample")
    bars = UniverseBars(panel, PortfolioConfig())
    pairs = build_space(BUILTIN["sma_cross"], PAIRS)
    varied = with_exits(pairs, {"sl": STOP_LOSSES}, max_combinations=10_000)
    execution = ExecutionConfig(commission=0.001)
    values = sorted({float(v) for v in varied.combos[:, -1]})
    print(w1_data.machine())
    print(f"{len(SYMBOLS)} symbols x {panel.n_bars:,} union bars; {len(pairs)} pairs; sl {values}")

    metrics = evaluate_space(bars, varied, execution, periods_per_year=252.0)  # compiles
    rng = np.random.default_rng(0)
    for j in rng.choice(len(varied), size=N_CHECKED, replace=False):
        traded = execution_with(execution, varied.exits(int(j)))
        single = simulate_portfolio(panel, varied.strategy, varied.combination(int(j)), traded,
                                    PortfolioConfig(), periods_per_year=252.0)  # fmt: skip
        want = np.array([single.metrics[name] for name in METRIC_NAMES])
        if not np.array_equal(metrics[j], want, equal_nan=True):
            raise SystemExit(f"row {j} ({varied.exits(int(j))}) != simulate_portfolio")
    fixed = [execution.model_copy(update={"sl": value or None}) for value in values]
    for each in (execution, *fixed):
        evaluate_space(bars, pairs, each, periods_per_year=252.0)  # compiles both paths

    def plain() -> None:
        evaluate_space(bars, pairs, execution, periods_per_year=252.0)

    def one_pass() -> None:
        evaluate_space(bars, varied, execution, periods_per_year=252.0)

    def five_passes() -> None:
        for each in fixed:
            evaluate_space(bars, pairs, each, periods_per_year=252.0)

    for label, run, n in (
        ("pairs without exits", plain, len(pairs)),
        (f"pairs x -p sl={STOP_LOSSES}, one pass", one_pass, len(varied)),
        ("5 passes of the pairs with a fixed --sl", five_passes, len(varied)),
    ):  # fmt: skip
        median, times = w1_data.median_time(run, args.repeats)
        print(
            f"{label}: {n} combinations, warm {', '.join(f'{t:.3f}' for t in times)} s, "
            f"median {median * 1e3:.1f} ms ({median / n * 1e3:.2f} ms a combination)"
        )
    print(f"{N_CHECKED} sampled rows == simulate_portfolio with their sl, bit for bit")


if __name__ == "__main__":
    main()
