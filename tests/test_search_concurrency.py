"""Several processes on one study (#13 point 11): `--trials N` is the size of the study,
whoever runs it, and processes that start together on a new sqlite file do not collide.

The processes are real `ivybt` command lines, started together: each imports IvyBT, says it
is ready and waits for a start file, so they reach the storage at the same moment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from ivybt.runs.optimize import optimize
from ivybt.studies.study_storage import open_storage

_TOGETHER = """
import sys, time
from pathlib import Path
import ivybt.cli
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
sys.argv = ["ivybt", *sys.argv[3:]]
ivybt.cli.main()
"""

_CREATE_SQLITE_STUDY = """
import sys, time
from pathlib import Path
import optuna
from ivybt.studies.study_storage import open_storage
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.001)
optuna.create_study(storage=open_storage(sys.argv[3]), study_name="s", load_if_exists=True)
"""

SPACE = {"fast": "2:60", "slow": "10:200:5"}
SETTINGS = {"trials": 96, "batch_size": 8, "seed": 5}


def start_together(tmp_path: Path, script: str, argvs: list[list[str]]) -> list[str]:
    """Run `script` once per argument list, all released at once; their stderr."""
    go = tmp_path / "go"
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "")}
    processes = []
    for k, argv in enumerate(argvs):
        ready = tmp_path / f"ready-{k}"
        processes.append((ready, subprocess.Popen(
            [sys.executable, "-c", script, str(ready), str(go), *argv], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )))  # fmt: skip
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _ in processes) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    errors = []
    for _, process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        errors.append(err)
    return errors


def cli_args(results: Path, storage: str | None) -> list[str]:
    args = ["--results-dir", str(results), "optimize", "sma_cross", "-s", "SPY", "--source",
            "sample", "--start", "2010-01-01", "-p", "fast=2:60", "-p", "slow=10:200:5",
            "--trials", "96", "--batch-size", "8", "--seed", "5"]  # fmt: skip
    return [*args, "--storage", storage] if storage else args


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_processes_on_one_study_make_exactly_the_trials_of_one(tmp_path, kind):
    """Two `ivybt optimize ... --trials 96` started together on one study: 96 trials, and
    exactly those one process alone makes (before: 192, many parameter sets twice)."""
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    url = None if kind == "journal" else f"sqlite:///{shared / 'studies.db'}"
    shared.mkdir()
    start_together(tmp_path, _TOGETHER, [cli_args(shared, url), cli_args(shared, url)])

    storage = open_storage(url or f"journal://{shared / 'optuna.journal'}")
    (name,) = optuna.get_all_study_names(storage)
    together = optuna.load_study(study_name=name, storage=storage).trials
    reference = optimize("sma_cross", symbol="SPY", source="sample", start="2010-01-01",
                         params=SPACE, **SETTINGS, results_dir=alone).study.trials  # fmt: skip
    assert len(together) == 96
    assert [(t.params, t.state, t.values) for t in together] == [
        (t.params, t.state, t.values) for t in reference
    ]


@pytest.mark.slow
def test_processes_creating_one_new_sqlite_study_at_once_do_not_collide(tmp_path):
    """Three processes open a new sqlite file and create one study at the same moment (one
    used to die with `table ... already exists` or a UNIQUE constraint error)."""
    for round_ in range(3):
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        url = f"sqlite:///{folder / 'studies.db'}"
        start_together(folder, _CREATE_SQLITE_STUDY, [[url]] * 3)
        assert [s.study_name for s in optuna.get_all_study_summaries(open_storage(url))] == ["s"]
