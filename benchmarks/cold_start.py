"""Issue #19: the first `ivybt grid` on an empty Numba cache, and what each kernel's compilation
costs in it.

    .venv/bin/python benchmarks/cold_start.py                 # W1 grid, with and without evidence
    .venv/bin/python benchmarks/cold_start.py --runs 3 --repo /other/checkout

The command is W1's grid on the bundled SPY bars:
`python -m ivybt grid sma_cross --symbol SPY --source sample -p fast=2:101 -p slow=5:204
--out DIR --overwrite`, with the overfitting statistics (the default) and with --no-evidence.

1. Wall and CPU time (user + system, all threads) of the plain command in a fresh process, on
   an empty NUMBA_CACHE_DIR (cold), then again on the cache that run filled (warm); `--runs`
   times each, medians printed.
2. The same cold run in-process with `numba.core.dispatcher.Dispatcher.compile` wrapped: for
   each Numba function, the signatures compiled, the seconds spent compiling it (its own
   time: a kernel's compile includes the typing and compiling of the kernels it calls, which
   are timed as their own entries and subtracted from the caller's) and the cache loads. A
   function compiled for more than one signature is listed with its signatures (duplicate
   specialisations: a caller passing int32 and int64, or C and A layouts).

`--repo` runs another checkout (the "before" figures). The machine is shared: wall figures
are noisy, CPU seconds steadier (compiling is single-threaded). Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

HERE = Path(__file__).resolve().parent
GRID = ["grid", "sma_cross", "--symbol", "SPY", "--source", "sample", "-p", "fast=2:101",
        "-p", "slow=5:204", "--overwrite"]  # fmt: skip


def child(out_dir: str, evidence: bool, report: str) -> None:
    """In-process cold run with every Dispatcher.compile timed; JSON records to `report`."""
    from numba.core.dispatcher import Dispatcher

    records: list[dict] = []
    stack: list[list[float]] = []  # the children's [wall, CPU] seconds of each open compile
    original = Dispatcher.compile

    def timed(self, sig):
        hits, misses = sum(self._cache_hits.values()), sum(self._cache_misses.values())
        n_before = len(self.overloads)
        stack.append([0.0, 0.0])
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return original(self, sig)
        finally:
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - start_cpu
            nested = stack.pop()
            if stack:
                stack[-1][0] += elapsed
                stack[-1][1] += cpu
            if len(self.overloads) > n_before:  # a new overload: compiled or loaded
                func = self.py_func
                records.append({
                    "name": f"{func.__module__}.{func.__qualname__}",
                    "sig": str(sig), "seconds": elapsed - nested[0], "total": elapsed,
                    "cpu": cpu - nested[1],
                    "loaded": sum(self._cache_hits.values()) > hits,
                    "compiled": sum(self._cache_misses.values()) > misses,
                })  # fmt: skip

    Dispatcher.compile = timed
    sys.argv = ["ivybt", *GRID, "--out", out_dir, *([] if evidence else ["--no-evidence"])]
    start, start_cpu = time.perf_counter(), time.process_time()
    from ivybt.cli import main

    try:
        main()
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    Path(report).write_text(json.dumps({"wall": wall, "cpu": cpu, "records": records}))


def plain(repo: str, cache: str, out: str, evidence: bool) -> tuple[float, float]:
    """Wall and CPU (user + system, every thread) seconds of one fresh `ivybt grid`."""
    command = [sys.executable, "-m", "ivybt", *GRID, "--out", out]
    command += [] if evidence else ["--no-evidence"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=repo, env={**os.environ, "NUMBA_CACHE_DIR": cache},
                   check=True, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def profile(repo: str, evidence: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        report = f"{out}/profile.json"
        command = [sys.executable, __file__, "--child", "--repo", repo, "--report", report,
                   "--out-dir", f"{out}/run"]  # fmt: skip
        command += [] if evidence else ["--no-evidence"]
        subprocess.run(command, cwd=repo, env={**os.environ, "NUMBA_CACHE_DIR": cache},
                       check=True, capture_output=True)  # fmt: skip
        return json.loads(Path(report).read_text())


def show(got: dict, label: str) -> None:
    """Per function: compile seconds (wall and CPU, own time), signatures, cache loads."""
    by_name: dict[str, dict] = defaultdict(
        lambda: {"seconds": 0.0, "cpu": 0.0, "sigs": [], "loaded": 0}
    )
    for record in got["records"]:
        entry = by_name[record["name"]]
        entry["seconds"] += record["seconds"]
        entry["cpu"] += record["cpu"]
        entry["sigs"].append(record["sig"])
        entry["loaded"] += record["loaded"]
    wall = sum(entry["seconds"] for entry in by_name.values())
    cpu = sum(entry["cpu"] for entry in by_name.values())
    print(f"\n== {label}: in-process cold run {got['wall']:.2f} s ({got['cpu']:.2f} s CPU), of "
          f"which compiling {wall:.2f} s ({cpu:.2f} s CPU); {len(by_name)} functions, "
          f"{len(got['records'])} signatures")  # fmt: skip
    print(f"{'seconds':>8} {'CPU s':>7} {'share':>6} {'sigs':>4}  function (CPU share)")
    small = []
    for name, entry in sorted(by_name.items(), key=lambda item: -item[1]["cpu"]):
        if entry["cpu"] < 0.02 and len(entry["sigs"]) < 2:
            small.append(entry)
            continue
        loaded = f" ({entry['loaded']} loaded from the cache)" if entry["loaded"] else ""
        print(f"{entry['seconds']:>8.3f} {entry['cpu']:>7.3f} {entry['cpu'] / cpu:>6.1%} "
              f"{len(entry['sigs']):>4}  {name}{loaded}")  # fmt: skip
        if len(entry["sigs"]) > 1:
            for sig in entry["sigs"]:
                print(f"{'':>29}{sig[:140]}")
    print(
        f"{sum(e['seconds'] for e in small):>8.3f} {sum(e['cpu'] for e in small):>7.3f} "
        f"{sum(e['cpu'] for e in small) / cpu:>6.1%}       {len(small)} more under 0.02 s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1, help="plain cold/warm runs of each")
    parser.add_argument("--repo", default=str(HERE.parent), help="the IvyBT checkout to time")
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-evidence", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = str(Path(args.repo).resolve())
    if args.child:
        sys.path.insert(0, repo)
        child(args.out_dir, not args.no_evidence, args.report)
        return
    print(w1_data.machine())
    print(f"ivybt from {repo}; command: python -m ivybt {' '.join(GRID)} --out DIR "
          "[--no-evidence]")  # fmt: skip
    for evidence in (True, False):
        label = "with PBO and DSR" if evidence else "--no-evidence"
        if not args.skip_plain:
            cold, warm = [], []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
                    cold.append(plain(repo, cache, f"{out}/run", evidence))
                    warm.append(plain(repo, cache, f"{out}/run", evidence))
            for name, runs in (("cold", cold), ("warm", warm)):
                print(f"{label}, {name} cache: {statistics.median(r[0] for r in runs):.2f} s "
                      f"wall, {statistics.median(r[1] for r in runs):.2f} s CPU (runs: "
                      f"{', '.join(f'{w:.2f}/{c:.2f}' for w, c in runs)})")  # fmt: skip
        if not args.skip_profile:
            show(profile(repo, evidence), label)


if __name__ == "__main__":
    main()
