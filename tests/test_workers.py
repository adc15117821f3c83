"""Many workers on one Optuna study (issue #18 section 1): `ivybt optimize --workers N` and
`ivybt worker` on PostgreSQL (and --workers on the journal file).

- `--trials N` is the study's total whoever runs the trials: the workers stop at N together.
- "No duplicates" means no parameter set is evaluated twice because two workers drew the
  same sample: each batch's sampler is seeded from the seed and the number of trials stored
  when the batch is reserved, so with the random sampler, batches of equal size and a total
  that is a multiple of them, the workers make exactly the parameter sets one process makes
  (which, for this seed and a space of 77 000 points, are all distinct).
- A worker killed mid-batch (kill -9 while its trials are RUNNING) leaves them to the
  heartbeat check: the next worker fails them, their parameters are retried
  (`RetryFailedTrialCallback`) and the study still stops at --trials, nothing RUNNING.
- The password never shows in a run folder or in the workers' output.

The PostgreSQL server comes from tests/postgres.py: these tests skip without one, and fail
under CI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from ivybt.cli import cli
from ivybt.studies.study_identity import WORKER_ATTR
from ivybt.studies.study_storage import (
    RESERVED,
    RUN_ATTR,
    counted,
    is_interrupted,
    open_storage,
)
from tests.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.test_secrets import files_holding

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
SEARCH = ["sma_cross", "-s", "SPY", "--source", "sample", "--start", "2010-01-01",
          "-p", "fast=2:200", "-p", "slow=10:400", "--sampler", "random", "--seed", "5",
          "--batch-size", "8", "--no-evidence"]  # fmt: skip

# `ivybt <argv>` whose worker hangs (as if killed) once it has reserved its second batch:
# the trials stay RUNNING in the storage, with heartbeats, until the process is killed.
_HANG_ON_SECOND_BATCH = """
import sys, time
from pathlib import Path
import ivybt.cli
from ivybt.studies import study_storage
flag = Path(sys.argv[1])
reserve = study_storage._Reservation.reserve
batches = []
def hanging(self, asked):
    reserve(self, asked)
    batches.append(len(asked))
    if len(batches) == 2:
        flag.touch()
        while True:
            time.sleep(1)
study_storage._Reservation.reserve = hanging
sys.argv = ["ivybt", *sys.argv[2:]]
ivybt.cli.main()
"""


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def ivybt(tmp: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivybt", "--results-dir", str(tmp / "results"), *args],
        capture_output=True, text=True, env=env(**extra), timeout=600, check=False,
    )  # fmt: skip


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def params_of(study: optuna.Study) -> list[tuple[tuple[str, int], ...]]:
    return [tuple(sorted(t.params.items())) for t in study.trials if not is_interrupted(t)]


def alone(tmp: Path, trials: int) -> list[tuple[tuple[str, int], ...]]:
    """The parameter sets one process makes with the same settings (journal file)."""
    run = ivybt(tmp / "alone", "optimize", *SEARCH, "--trials", str(trials), "--study-name", "a")
    assert run.returncode == 0, run.stderr
    return params_of(load(f"journal://{tmp / 'alone' / 'results' / 'optuna.journal'}", "a"))


def test_two_workers_on_postgresql_stop_at_trials_with_no_duplicates(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = ivybt(
        tmp_path,
        "optimize",
        *SEARCH,
        "--trials",
        "64",
        "--storage",
        postgres_url,
        "--study-name",
        "two",
        "--workers",
        "2",
        "--out",
        str(tmp_path / "run"),
    )
    assert run.returncode == 0, run.stderr
    study = load(postgres_url, "two")
    states = {t.state for t in study.trials}
    assert len(study.trials) == 64 and counted(study) == 64
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    made = params_of(study)
    assert len(set(made)) == 64  # no parameter set twice
    assert set(made) == set(alone(tmp_path, 64))  # the sets one process makes
    password = make_url(postgres_url).password
    assert password and password not in run.stdout + run.stderr
    assert files_holding(tmp_path / "run", password) == []
    assert password not in str(study.user_attrs)


def test_ivybt_worker_joins_and_refuses_other_data_in_one_line(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A worker started next to `ivybt optimize` shares its study; a worker whose bars hash
    differently refuses with one line, exit 2. The URL reaches it through $IVYBT_STORAGE."""
    first = subprocess.Popen(
        [sys.executable, "-m", "ivybt", "--results-dir", str(tmp_path / "results"), "optimize",
         *SEARCH, "--trials", "96", "--storage", postgres_url, "--study-name", "join"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    storage = open_storage(postgres_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if "join" in names and WORKER_ATTR in load(postgres_url, "join").user_attrs:
            break
        time.sleep(0.05)
    joined = ivybt(tmp_path, "worker", "--study", "join", IVYBT_STORAGE=postgres_url)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert joined.returncode == 0, joined.stderr
    assert "96 trials done" in joined.stdout
    study = load(postgres_url, "join")
    assert counted(study) == len(study.trials) == 96
    assert len(set(params_of(study))) == 96

    spec = dict(study.user_attrs[WORKER_ATTR])
    study.set_user_attr(WORKER_ATTR, {**spec, "data_sha256": "0" * 64})  # other bars there
    refused = ivybt(tmp_path, "worker", "--storage", postgres_url, "--study", "join")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "bars here differ" in lines[0] and "000000000000" in lines[0]
    missing = ivybt(tmp_path, "worker", "--storage", postgres_url, "--study", "nope")
    assert missing.returncode == 2 and "no study 'nope'" in missing.stderr
    password = make_url(postgres_url).password
    assert password not in joined.stdout + joined.stderr + refused.stderr + missing.stderr


def test_a_killed_workers_trials_are_failed_and_retried(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """kill -9 a worker whose second batch is RUNNING; `ivybt worker` then fails those
    trials (heartbeat), re-evaluates their parameters and stops at --trials."""
    flag = tmp_path / "hanging"
    fast = {"IVYBT_HEARTBEAT_S": "1,3"}
    hung = subprocess.Popen(
        [sys.executable, "-c", _HANG_ON_SECOND_BATCH, str(flag), "--results-dir",
         str(tmp_path / "results"), "optimize", *SEARCH, "--trials", "24", "--storage",
         postgres_url, "--study-name", "killed"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(**fast),
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not flag.exists() and time.monotonic() < deadline and hung.poll() is None:
        time.sleep(0.05)
    assert flag.exists(), hung.stderr.read() if hung.stderr else ""
    study = load(postgres_url, "killed")
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(running) == 8 and all(t.user_attrs[RESERVED] for t in running)
    hung.kill()  # SIGKILL: no cleanup, the heartbeats just stop
    hung.wait()

    joined = ivybt(tmp_path, "worker", "--storage", postgres_url, "--study", "killed", **fast)
    assert joined.returncode == 0, joined.stderr
    study = load(postgres_url, "killed")
    by_number = {t.number: t for t in study.trials}
    killed = [by_number[t.number] for t in running]
    assert all(t.state == optuna.trial.TrialState.FAIL and is_interrupted(t) for t in killed)
    retried = [t for t in study.trials if "failed_trial" in t.system_attrs]
    assert sorted(t.system_attrs["failed_trial"] for t in retried) == [t.number for t in killed]
    assert all(t.state.is_finished() and not is_interrupted(t) for t in retried)
    assert {tuple(sorted(t.params.items())) for t in retried} == {
        tuple(sorted(t.params.items())) for t in killed
    }
    assert len({t.user_attrs[RUN_ATTR] for t in retried}) == 1  # the joining worker's run
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.WAITING))  # fmt: skip
    assert counted(study) == 24 and len(study.trials) == 32  # 24 counted + 8 killed


def test_workers_on_the_journal_file_make_the_trials_of_one_process(tmp_path: Path) -> None:
    """--workers 2 on the default journal file: the workers take turns batch by batch (the
    study's file lock), so they make exactly the trials one process makes."""
    runner = CliRunner()
    result = runner.invoke(cli, ["--results-dir", str(tmp_path / "results"), "optimize",
                                 *SEARCH, "--trials", "48", "--study-name", "j",
                                 "--workers", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    study = load(f"journal://{tmp_path / 'results' / 'optuna.journal'}", "j")
    assert len(study.trials) == counted(study) == 48
    assert params_of(study) == alone(tmp_path, 48)
