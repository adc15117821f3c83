"""Walk-forward target of issue #6: 10 rolling folds x the W1 grid (15,247 SMA pairs) on
2,520 bars (bundled SPY, the last 2,520 daily bars), IS and OOS surfaces, <= 1 s warm.

    .venv/bin/python benchmarks/wf_surface.py [--repeats 7]

Windows: --is 1000 --folds 10 (rolling), so each fold has a 1,000-bar IS window and a
152-bar OOS window right after it. Prints, median of warm runs:
- engine: every fold's IS and OOS surface (`evaluate_windows`, one call per fold over the
  bars up to the fold's end, as `ivybt walkforward` makes them) plus the selection;
- end to end: `ivybt.walk_forward(...)` writing its whole run folder (surfaces, stitched
  equity, scores, report.html and the stability page).
Prints figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

import ivybt
from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.tables import bar_columns
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_windows
from ivybt.studies.selection import select
from ivybt.studies.space import build_space
from ivybt.studies.windows import make_folds

PARAMS = {"fast": "2:101", "slow": "5:204"}
EXECUTION = ExecutionConfig(commission=w1_data.COMMISSION, slippage=0.0, fill="close")


def engine(frame, space, folds) -> int:
    columns = bar_columns(frame)
    sharpe = METRIC_NAMES.index("sharpe")
    chosen = 0
    for fold in folds:
        cut = {name: values[: fold.oos_end] for name, values in columns.items()}
        windows = np.array([[fold.is_start, fold.is_end], [fold.oos_start, fold.oos_end]])
        metrics = evaluate_windows(cut, space, EXECUTION, windows, periods_per_year=252.0)
        valid = metrics[:, 0, METRIC_NAMES.index("n_trades")] >= 1
        chosen += select(space.combos, metrics[:, 0, sharpe], valid, "best")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(w1_data.machine())
    frame = load_sample("SPY", "1d")[0].iloc[-2520:]
    space = build_space(BUILTIN["sma_cross"], PARAMS)
    folds = make_folds(frame.index, in_sample=1000, folds=10)
    print(f"{len(folds)} rolling folds (IS {folds[0].is_end - folds[0].is_start} bars, OOS "
          f"{folds[0].oos_end - folds[0].oos_start}) x {len(space):,} pairs on {len(frame):,} "
          "bars; IS and OOS surfaces")  # fmt: skip
    engine(frame, space, folds)  # warm-up: Numba cache load
    median, times = w1_data.median_time(lambda: engine(frame, space, folds), args.repeats)
    print(f"engine (surfaces + selection), warm runs (s): {', '.join(f'{t:.3f}' for t in times)}")
    print(f"engine median {median:.3f} s (target <= 1 s)")
    with tempfile.TemporaryDirectory() as tmp:

        def end_to_end() -> None:
            ivybt.walk_forward("sma_cross", data=frame, params=PARAMS, in_sample=1000, folds=10,
                               commission=w1_data.COMMISSION, slippage=0.0, fill="close",
                               out=Path(tmp) / "wf", overwrite=True)  # fmt: skip

        end_to_end()
        median, times = w1_data.median_time(end_to_end, 3)
    print(f"ivybt.walk_forward end to end (run folder, report), warm (s): "
          f"{', '.join(f'{t:.3f}' for t in times)}; median {median:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
