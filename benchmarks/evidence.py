"""The overfitting statistics of a grid (issue #8, sped up in issue #13 point 24): where the
time of `ivybt grid`'s PBO and DSR goes, on W1's space (sma_cross fast 2:101 x slow 5:204,
15,247 combinations) over the whole bundled SPY 1d series (5,241 bars, what `ivybt grid -s
SPY` uses) and EURUSD 1h (74,439 bars).

    .venv/bin/python benchmarks/evidence.py [--data spy|eurusd] [--repeats 3] [--skip-cli]

Phases, each timed warm (after an untimed call that loads the Numba cache), median of
`--repeats`: the grid itself (`evaluate_space`); PBO's block tables straight from the kernels
(`evaluate_block_tables`, what the grid runs now) and the returns-matrix path it replaced
(`evaluate_returns` in chunks of a quarter of the 1 GiB budget, each reduced with
`block_tables`; checked equal first: levels exactly, sums to 1e-12 relative, the held runs'
sums being prefix-sum differences, `ivybt.kernels.holding`); the 12,870 CSCV splits
(`pbo_from_block_tables`); the DSR (the selected combination's returns and
`deflated_sharpe_of_trials`). Then `ivybt grid` end to end as a subprocess, with
`--no-evidence` and with the statistics (default), as `python -m ivybt` from this checkout's
root (so a git worktree times its own code, not the installed one's). Default costs (0.1%
commission, 0.05% slippage, next-open fills), as the command runs. Prints the machine line
with its load average; asserts no time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.tables import bar_columns
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.stats.pbo import block_tables, pbo_from_block_tables
from ivybt.stats.sharpe import deflated_sharpe_of_trials
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import evaluate_block_tables, evaluate_returns, evaluate_space
from ivybt.studies.space import build_space

DATA = {"spy": ("SPY", "1d", 252.0), "eurusd": ("EURUSD", "1h", 6205.0)}
BUDGET = 1 << 30


def engine(name: str, repeats: int) -> None:
    symbol, interval, periods_per_year = DATA[name]
    columns = bar_columns(load_sample(symbol, interval)[0])
    n_bars = len(columns["close"])
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": "5:204"})
    execution = ExecutionConfig()
    rows = np.arange(len(space))

    def grid() -> np.ndarray:
        return evaluate_space(columns, space, execution, periods_per_year=periods_per_year)

    def fused() -> tuple[np.ndarray, ...]:
        return evaluate_block_tables(columns, space, execution, n_blocks=16)

    chunk = BUDGET // 4 // (8 * n_bars)

    def matrix() -> tuple[np.ndarray, ...]:
        from ivybt.studies.space import ParamSpace

        parts = []
        for k in range(0, len(space), chunk):
            local = rows[k : k + chunk]
            subset = ParamSpace(space.strategy, space.names, space.combos[local], len(local), ())
            parts.append(block_tables(evaluate_returns(columns, subset, execution), 16))
        return tuple(np.concatenate(p, axis=1) for p in zip(*parts, strict=True))

    metrics = grid()
    tables = fused()
    reference = matrix()
    assert np.array_equal(tables[2], reference[2], equal_nan=True)  # levels: exactly
    worst = 0.0
    for mine, theirs in zip(tables[:2], reference[:2], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-13)
        worst = max(worst, float(np.nanmax(np.abs(mine - theirs))))
    print(f"{symbol} {interval}: {n_bars:,} bars x {len(space):,} combinations; block tables "
          f"equal the returns-matrix path (levels exactly, sums within {worst:.1e})")  # fmt: skip
    sharpe = metrics[:, METRIC_NAMES.index("sharpe")]
    best = int(np.nanargmax(sharpe))

    def cscv() -> object:
        return pbo_from_block_tables(*tables, n_periods=n_bars)

    def dsr() -> object:
        from ivybt.studies.space import ParamSpace

        one = ParamSpace(space.strategy, space.names, space.combos[best : best + 1], 1, ())
        selected = evaluate_returns(columns, one, execution)[:, 0]
        return deflated_sharpe_of_trials(selected, sharpe[np.isfinite(sharpe)],
                                         trial_sharpe_unit="annual",
                                         periods_per_year=periods_per_year)  # fmt: skip

    cscv()
    dsr()
    for label, run in (("grid (evaluate_space)", grid), ("PBO block tables, fused", fused),
                       (f"PBO via returns matrix ({-(-len(space) // chunk)} chunks)", matrix),
                       ("CSCV, 12,870 splits", cscv), ("DSR", dsr)):  # fmt: skip
        median, times = w1_data.median_time(run, repeats)
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(f"  {label:<42} {median:7.2f} s  ({shown})")


def cli(name: str, repeats: int) -> None:
    symbol, interval, _ = DATA[name]
    root = Path(__file__).resolve().parents[1]  # `-m ivybt` from here: this checkout's code
    base = [sys.executable, "-m", "ivybt", "grid", "sma_cross", "-s", symbol, "-i", interval,
            "--source", "sample", "-p", "fast=2:101", "-p", "slow=5:204"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for label, extra in (("--no-evidence", ["--no-evidence"]), ("with PBO and DSR", [])):

            def run(extra: list[str] = extra) -> None:
                subprocess.run([*base, *extra, "--out", f"{folder}/run", "--overwrite"],
                               check=True, capture_output=True, cwd=root)  # fmt: skip

            run()  # warm the Numba cache
            median, times = w1_data.median_time(run, repeats)
            shown = ", ".join(f"{t:.2f}" for t in times)
            print(f"  ivybt grid {label:<31} {median:7.2f} s  ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(DATA), action="append")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    print(w1_data.machine())
    for name in args.data or sorted(DATA, reverse=True):
        engine(name, args.repeats)
        if not args.skip_cli:
            cli(name, args.repeats)
    print(f"load average at the end: {__import__('os').getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
