"""Issue #18 section 1: trials/s of `ivybt optimize --workers N` (1, 2, 4) on PostgreSQL and
on the journal file: sma_cross on the bundled SPY, a random sampler (its sampling costs
nothing, so the figures show the storage and the workers), batches of 32.

Each figure is the wall time of the whole command (start-up, loading the bars, the study,
the workers' start-up and the run folder) over the trials made; a warm-up run compiles the
kernels first (untimed), so every run finds Numba's cache warm. Parity: each run must end
with exactly --trials trials, distinct parameter sets (the sampler's seeds differ per batch).

PostgreSQL: $IVYBT_TEST_POSTGRES_URL, else a throw-away server from .ci/postgres.sh.

    .venv/bin/python benchmarks/optimize_workers.py [--trials 400] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from w1_data import machine  # noqa: E402

SEARCH = ["sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=2:200",
          "-p", "slow=10:400", "--sampler", "random", "--seed", "7", "--batch-size", "32",
          "--no-evidence"]  # fmt: skip


def run(results: Path, storage: str | None, name: str, trials: int, workers: int) -> float:
    argv = [sys.executable, "-m", "ivybt", "--results-dir", str(results), "optimize", *SEARCH,
            "--trials", str(trials), "--study-name", name, "--workers", str(workers)]  # fmt: skip
    if storage:
        argv += ["--storage", storage]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
    check(results, storage, name, trials)
    return seconds


def check(results: Path, storage: str | None, name: str, trials: int) -> None:
    import optuna

    from ivybt.studies.study_storage import counted, open_storage

    url = storage or f"journal://{results / 'optuna.journal'}"
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    distinct = {tuple(sorted(t.params.items())) for t in study.trials}
    assert counted(study) == len(study.trials) == trials, (name, len(study.trials))
    assert len(distinct) >= trials - 2, (name, len(distinct))  # a random draw may repeat


def postgres() -> tuple[str, str | None]:
    url = os.environ.get("IVYBT_TEST_POSTGRES_URL")
    if url:
        return url, None
    out = subprocess.run([str(REPO / ".ci" / "postgres.sh"), "start"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    return env["IVYBT_TEST_POSTGRES_URL"], env["IVYBT_TEST_POSTGRES_DIR"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(machine())
    url, started = postgres()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results"
            run(results, None, "warm-up", 32, 1)  # compiles the kernels into Numba's cache
            print(f"ivybt optimize, {args.trials} trials, batches of 32, random sampler")
            print(f"{'storage':<12}{'workers':>8}{'seconds':>10}{'trials/s':>10}")
            for kind, storage in (("postgresql", url), ("journal", None)):
                for n in counts:
                    seconds = run(results, storage, f"{kind}-{n}", args.trials, n)
                    print(f"{kind:<12}{n:>8}{seconds:>10.1f}{args.trials / seconds:>10.1f}")
    finally:
        if started:
            subprocess.run([str(REPO / ".ci" / "postgres.sh"), "stop", started], check=False)


if __name__ == "__main__":
    main()
