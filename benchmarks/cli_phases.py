"""Where the time of `ivybt grid` goes, end to end (issue #19): W1's space (sma_cross fast
2:101 x slow 5:204, 15,247 combinations) on the bundled SPY 1d series, as the command runs.

    .venv/bin/python benchmarks/cli_phases.py [--runs 5] [--mode no-evidence|evidence]

Each run is a fresh `python -m ivybt grid ...` process (after one untimed run that fills the
Numba cache), timed from the parent; inside it, the command's own functions are wrapped to
stamp its phases:

- startup: the interpreter starting and exiting (the process's wall time minus the rest);
- imports: `import ivybt.cli, ivybt.runs.grid` (what the command loads before it works);
- cli: parsing, the run configuration, the space (until the bars are loaded);
- data: loading and checking the bars (`prepare_inputs`);
- grid: `evaluate_space` (the first call loads the Numba cache of the kernels it calls);
- table: building the result table (between the grid and the statistics);
- evidence: PBO and DSR (`overfitting_evidence`; 0 with --no-evidence);
- report: report.html's page (`grid_report_html`: the figures, plotly's import, the HTML);
- write: the files (grid.parquet, metrics.json, manifest.json, report.html), the folder;
- rest: what is left (the best rows printed, logging, exit handlers).

Prints the machine line, then per mode the median of `--runs` of every phase, the process's
wall time, its CPU time (user + system, every thread: steadier than wall time on a busy
machine) and its peak RSS (VmHWM). Imports and the report run lazily inside other phases
would be counted there. Asserts no time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["grid", "sma_cross", "--symbol", "SPY", "--source", "sample", "-p", "fast=2:101",
        "-p", "slow=5:204", "--overwrite"]  # fmt: skip
MODES = {"no-evidence": ["--no-evidence"], "evidence": []}
PHASES = ("startup", "imports", "cli", "data", "grid", "table", "evidence", "report", "write",
          "rest")  # fmt: skip


def _hwm_mb() -> float:
    """This process's peak RSS so far, MiB (VmHWM: its own, not carried over from exec)."""
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
    return int(status.split()[0]) / 1024


def child(out: str, report: str, extra: list[str]) -> None:
    """One `ivybt grid` run in this process, its phases stamped; JSON to `report`: the
    seconds of each phase and the peak RSS reached by its end (`<phase>_mb`)."""
    began = time.perf_counter()
    stamps: dict[str, float] = {}

    import ivybt.cli
    import ivybt.runs.grid as runs_grid

    stamps["imports"] = time.perf_counter() - began
    stamps["imports_mb"] = _hwm_mb()

    def timed(owner: object, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                stamps[phase] = stamps.get(phase, 0.0) + time.perf_counter() - start
                stamps.setdefault(f"{phase}_start", start - began)
                stamps[f"{phase}_end"] = time.perf_counter() - began
                stamps[f"{phase}_mb"] = _hwm_mb()

        setattr(owner, name, wrapper)

    timed(runs_grid, "prepare_inputs", "data")
    timed(runs_grid, "evaluate_space", "grid")
    timed(runs_grid, "overfitting_evidence", "evidence")
    timed(runs_grid.GridResult, "write", "write")

    # report.html's builder is imported inside GridResult.write: wrap it on first import
    import importlib.abc
    import importlib.machinery

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name != "ivybt.report.grid":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module

            def exec_module(module):  # type: ignore[no-untyped-def]
                run(module)
                timed(module, "grid_report_html", "report")

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())
    sys.argv = ["ivybt", *ARGS, *extra, "--out", out]
    try:
        ivybt.cli.main()
    except SystemExit as err:
        if err.code not in (0, None):
            raise
    total = time.perf_counter() - began
    stamps["cli"] = stamps["data_start"] - stamps["imports"]
    stamps["table"] = stamps.get("evidence_start", stamps["write_start"]) - stamps["grid_end"]
    stamps["write"] -= stamps["report"]
    stamps["rest"] = total - sum(stamps.get(p, 0.0) for p in PHASES if p != "startup")
    stamps["total_inside"] = total
    stamps["rest_mb"] = stamps["peak_rss_mb"] = _hwm_mb()
    Path(report).write_text(json.dumps(stamps))


def run_once(repo: Path, extra: list[str], folder: str) -> dict[str, float]:
    """One timed child process running `repo`'s IvyBT: its phases, wall time, peak RSS."""
    report = os.path.join(folder, "phases.json")
    command = [sys.executable, __file__, "--child", str(repo), os.path.join(folder, "run"),
               report, *extra]  # fmt: skip
    errors = os.path.join(folder, "stderr.txt")
    with open(errors, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = Path(errors).read_text()[-2000:]
        raise SystemExit(f"ivybt grid failed ({proc.returncode}): {tail}")
    stamps = json.loads(Path(report).read_text())
    stamps["wall"] = wall
    stamps["cpu"] = usage.ru_utime + usage.ru_stime  # every thread's, Numba's included
    stamps["startup"] = wall - stamps["total_inside"]
    return stamps


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, sys.argv[2])  # that checkout's ivybt, not the installed one
        child(sys.argv[3], sys.argv[4], sys.argv[5:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=sorted(MODES), action="append")
    parser.add_argument(
        "--repo", type=Path, action="append",
        help="an IvyBT checkout to run (default: this one); give two to compare, interleaved",
    )  # fmt: skip
    args = parser.parse_args()
    runs = [(repo.resolve(), mode) for repo in args.repo or [ROOT]
            for mode in args.mode or list(MODES)]  # fmt: skip
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import w1_data  # numpy and pandas: in the parent only, never before a child's clock

    print(w1_data.machine())
    print(f"python -m ivybt {' '.join(ARGS)} --out TMP [--no-evidence]: median of {args.runs} "
          "warm runs (s), peak RSS reached by the end of each phase (MiB)")  # fmt: skip
    results: dict[tuple[Path, str], list[dict[str, float]]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as folder:
        for repo, mode in runs:
            run_once(repo, MODES[mode], folder)  # fills the Numba cache; untimed
        for _ in range(args.runs):  # interleaved, so a busy spell hits every column
            for repo, mode in runs:
                results[repo, mode].append(run_once(repo, MODES[mode], folder))
    for k, (repo, mode) in enumerate(runs):
        print(f"[{k}] {mode} on {repo}")
    print(f"{'phase':<10}" + "".join(f"{f'[{k}] s':>9}{'MiB':>6}" for k in range(len(runs))))
    for name in (*PHASES, "wall", "cpu"):
        cells = ""
        for run in runs:
            rows = results[run]
            seconds = statistics.median(r.get(name, 0.0) for r in rows)
            mib = [r[f"{name}_mb"] for r in rows if f"{name}_mb" in r]
            cells += f"{seconds:>9.3f}" + (f"{statistics.median(mib):>6.0f}" if mib else " " * 6)
        print(f"{name:<10}{cells}")
    peaks = "".join(
        f"{'':>9}{statistics.median(r['peak_rss_mb'] for r in results[run]):>6.0f}" for run in runs
    )
    print(f"{'peak RSS':<10}{peaks}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
