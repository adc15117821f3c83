"""W1 with stops (issue #16): an SMA-cross grid on W1's SPY bars (2,520; fast 2..203 x slow
5..204 as the strategy admits: 20,500 pairs, W1's execution settings) traded with a fixed
stop-loss and trailing stop, against the same grid without them.

    export NUMBA_CACHE_DIR=/tmp/numba-w1
    .venv/bin/python benchmarks/w1_stops.py              # ~1 min

A stop needs the bar's high and low at every held bar and takes crossovers off their
one-pass path (a stop exit is not a sign change), so it adds work per held bar; this prints
how much. Checks 20 sampled rows against single backtests bit for bit first. Prints figures
only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data
import w1_grid

from ivybt.engine.simulation import simulate_strategy
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_space
from ivybt.studies.space import build_space, with_exits

STOPS = {"sl": 0.05, "trail": 0.08}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    columns = w1_grid.load_columns("spy")
    ppy = float(w1_data.DATASETS["spy"]["periods_per_year"])
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:203", "slow": "5:204"})
    plain = w1_grid.EXECUTION
    stopped = plain.model_copy(update=STOPS)
    print(w1_data.machine())
    for label, execution in (("without stops", plain), (f"with {STOPS}", stopped)):
        metrics = evaluate_space(columns, space, execution, periods_per_year=ppy)  # compiles
        rng = np.random.default_rng(0)
        for j in rng.choice(len(space), size=20, replace=False):
            single = simulate_strategy(columns, space.strategy, space.combination(int(j)),
                                       execution, periods_per_year=ppy)  # fmt: skip
            want = np.array([single.metrics[name] for name in METRIC_NAMES])
            if not np.array_equal(metrics[j], want, equal_nan=True):
                raise SystemExit(f"{label}: grid row {j} != simulate_strategy")

        def run(execution=execution):
            return evaluate_space(columns, space, execution, periods_per_year=ppy)

        median, times = w1_data.median_time(run, args.repeats)
        held = float(np.mean(metrics[:, METRIC_NAMES.index("exposure")]))
        print(
            f"{label}: {len(space):,} pairs, warm {', '.join(f'{t:.3f}' for t in times)} s, "
            f"median {median * 1e3:.1f} ms; mean exposure {held:.1%}; 20 rows == backtests"
        )
    exit_grid(args.repeats)


def exit_grid(repeats: int) -> None:
    """The same pairs x `-p sl=0.01:0.10:0.01` (10 values): one kernel pass."""
    columns = w1_grid.load_columns("spy")
    ppy = float(w1_data.DATASETS["spy"]["periods_per_year"])
    space = with_exits(build_space(BUILTIN["sma_cross"], {"fast": "2:203", "slow": "5:204"}),
                       {"sl": "0.01:0.10:0.01"}, max_combinations=10_000_000)  # fmt: skip
    execution = w1_grid.EXECUTION
    metrics = evaluate_space(columns, space, execution, periods_per_year=ppy)
    rng = np.random.default_rng(0)
    for j in rng.choice(len(space), size=20, replace=False):
        single = simulate_strategy(columns, space.strategy, space.combination(int(j)),
                                   execution.model_copy(update=space.exits(int(j))),
                                   periods_per_year=ppy)  # fmt: skip
        want = np.array([single.metrics[name] for name in METRIC_NAMES])
        if not np.array_equal(metrics[j], want, equal_nan=True):
            raise SystemExit(f"exit grid: row {j} != simulate_strategy")

    def run():
        return evaluate_space(columns, space, execution, periods_per_year=ppy)

    median, times = w1_data.median_time(run, repeats)
    print(
        f"-p sl=0.01:0.10:0.01 x the pairs: {len(space):,} combinations in one pass, warm "
        f"{', '.join(f'{t:.3f}' for t in times)} s, median {median:.3f} s "
        f"({median / len(space) * 1e6:.1f} us a combination); 20 rows == backtests"
    )


if __name__ == "__main__":
    main()
