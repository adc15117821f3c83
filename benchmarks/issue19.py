"""Issue #19's table, before and after: each row timed on one or more checkouts, interleaved.

    .venv/bin/python benchmarks/issue19.py --repo /path/to/before --repo .   # every row
    .venv/bin/python benchmarks/issue19.py --repo . --rows w1,wf --repeats 7

Rows (the issue's names; the memory-budget and cold-start rows have their own scripts,
benchmarks/memory_budget.py and benchmarks/cold_start.py):

- w1: `evaluate_space` on W1 (sma_cross fast 2:101 x slow 5:204, 15,247 pairs, the last
  2,520 bars of SPY 1d, fill at close, 0.1 % commission), warm, median of --repeats;
- w1-eurusd: the same on all 74,439 bars of EURUSD 1h, median of 3;
- wf: 10 rolling walk-forward folds x W1, both surfaces (`benchmarks/wf_surface.py`'s engine);
- grid / grid-no-evidence: `ivybt grid sma_cross --symbol SPY --source sample -p fast=2:101
  -p slow=5:204` end to end (all 5,241 bars, default costs), warm Numba cache, with PBO and
  DSR (the default) and with --no-evidence: wall time and peak RSS (GNU time);
- grid-eurusd: the same command on EURUSD 1h with PBO and DSR.

Each checkout runs in its own subprocess with its root first on sys.path (`python -m ivybt`
for the CLI rows), rounds alternate between checkouts, and both wall and CPU seconds (user +
system, every thread) are printed: on a shared machine CPU seconds are the steadier figure.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

ENGINE = r"""
import json, os, resource, sys, time
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
import numpy as np
import ivybt
assert ivybt.__file__.startswith(os.getcwd()), ivybt.__file__
from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.tables import bar_columns
from ivybt.strategies import BUILTIN
from ivybt.studies.space import build_space
row, repeats = sys.argv[1], int(sys.argv[2])
params = {"fast": "2:101", "slow": "5:204"}
space = build_space(BUILTIN["sma_cross"], params)
execution = ExecutionConfig(commission=0.001, slippage=0.0, fill="close")
if row == "wf":
    import wf_surface
    from ivybt.studies.windows import make_folds
    frame = load_sample("SPY", "1d")[0].iloc[-2520:]
    folds = make_folds(frame.index, in_sample=1000, folds=10)
    work = lambda: wf_surface.engine(frame, space, folds)
else:
    from ivybt.studies.grid import evaluate_space
    symbol, interval, last = {"w1": ("SPY", "1d", 2520), "w1-eurusd": ("EURUSD", "1h", None)}[row]
    frame = load_sample(symbol, interval)[0]
    columns = bar_columns(frame if last is None else frame.iloc[-last:])
    work = lambda: evaluate_space(columns, space, execution, periods_per_year=252.0)
work()
wall, cpu = [], []
for _ in range(repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    work()
    cpu.append(time.process_time() - c0); wall.append(time.perf_counter() - w0)
print(json.dumps({"wall": wall, "cpu": cpu,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CLI = {
    "grid": ["--symbol", "SPY"],
    "grid-no-evidence": ["--symbol", "SPY", "--no-evidence"],
    "grid-eurusd": ["--symbol", "EURUSD", "--interval", "1h"],
}
ROWS = ("w1", "w1-eurusd", "wf", "grid", "grid-no-evidence", "grid-eurusd")
ISSUE = {"w1": "78 ms -> <= 35 ms", "w1-eurusd": "2.09 s -> <= 1.0 s",
         "wf": "0.58 s -> <= 0.3 s", "grid": "3.25 s, 513 MiB -> <= 1.5 s, <= 400 MiB",
         "grid-no-evidence": "1.73 s -> <= 1.2 s", "grid-eurusd": "18.2 s -> <= 4 s"}  # fmt: skip


def engine_row(repo: Path, row: str, repeats: int) -> dict[str, list[float]]:
    done = subprocess.run([sys.executable, "-c", ENGINE, row, str(repeats)], cwd=repo,
                          env={**os.environ, "PYTHONPATH": str(repo)}, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_row(repo: Path, row: str, repeats: int) -> dict[str, list[float]]:
    gnu_time = ["/usr/bin/time", "-f", "%e %U %S %M"]
    wall, cpu, rss = [], [], []
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "ivybt", "grid", "sma_cross", "--source", "sample",
                   "-p", "fast=2:101", "-p", "slow=5:204", *CLI[row], "--out", f"{out}/run",
                   "--overwrite"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(repo)}
        subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)  # warm-up
        for _ in range(repeats):
            done = subprocess.run(gnu_time + command, cwd=repo, env=env, check=True,
                                  capture_output=True, text=True)  # fmt: skip
            seconds, user, system, peak = done.stderr.strip().splitlines()[-1].split()
            wall.append(float(seconds))
            cpu.append(float(user) + float(system))
            rss.append(int(peak) / 1024)
    return {"wall": wall, "cpu": cpu, "rss": max(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", type=Path, required=True)
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(w1_data.machine())
    rows = args.rows.split(",")
    got: dict[tuple[str, str], dict[str, list[float]]] = {}
    for _ in range(args.rounds):
        for row in rows:
            repeats = 3 if row in ("w1-eurusd", "grid-eurusd") else args.repeats
            for repo in args.repo:
                run = cli_row if row in CLI else engine_row
                part = run(repo.resolve(), row, repeats)
                key = (row, str(repo))
                merged = got.setdefault(key, {"wall": [], "cpu": [], "rss": 0.0})
                merged["wall"] += part["wall"]
                merged["cpu"] += part["cpu"]
                merged["rss"] = max(merged["rss"], part["rss"])
    print(f"\n{'row':18} {'checkout':28} {'wall median':>12} {'CPU median':>11} {'peak RSS':>9}"
          "  issue's figure and target")  # fmt: skip
    for row in rows:
        for repo in args.repo:
            part = got[(row, str(repo))]
            print(f"{row:18} {str(repo)[-28:]:28} {statistics.median(part['wall']):11.3f}s "
                  f"{statistics.median(part['cpu']):10.3f}s {part['rss']:7.0f}MiB  "
                  f"{ISSUE[row]}")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
