"""Optuna journal files under kills, full disks and stale locks, and Optuna's own output
(#13 points 2 and 21): a torn tail is cut off and kept aside, a journal an older version
broke is repaired, a failed append is taken back, a dead holder's lock does not stall the
next run, and the commands print IvyBT's lines only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner, Result
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from ivybt.cli import cli
from ivybt.errors import DiskFullError, JournalRepairedWarning
from ivybt.studies.study_storage import open_storage

SEARCH = ["-p", "fast=2:60", "-p", "slow=10:200:5", "--start", "2010-01-01", "--seed", "1",
          "--batch-size", "8", "--source", "sample"]  # fmt: skip
OPTUNA_LINE = re.compile(r"^\[[DIWE] \d{4}-\d\d-\d\d", re.MULTILINE)  # Optuna's log format


def optimize_cli(results: Path, symbol: str, trials: int, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--results-dir", str(results), "optimize", "sma_cross", "-s", symbol, *SEARCH,
         "--trials", str(trials), "--study-name", f"sma_cross-{symbol}", *extra],
    )  # fmt: skip


def plain_optuna(journal: Path) -> JournalStorage:
    """The journal read by Optuna itself, as `optuna-dashboard FILE` would."""
    return JournalStorage(JournalFileBackend(str(journal)))


def n_trials(storage: object, name: str) -> int:
    return len(optuna.load_study(study_name=name, storage=storage).trials)


def test_a_torn_tail_is_cut_off_kept_aside_and_every_study_stays_readable(tmp_path):
    """Point 2: optimize, `truncate -s -300` the journal, optimize again: the rerun says so
    in one warning line and resumes; both studies in the journal stay readable."""
    results = tmp_path / "results"
    journal = results / "optuna.journal"
    assert optimize_cli(results, "SPY", 16).exit_code == 0
    assert optimize_cli(results, "MSFT", 16).exit_code == 0
    whole = journal.read_bytes()
    os.truncate(journal, len(whole) - 300)
    torn = whole[whole.rindex(b"\n", 0, len(whole) - 300) + 1 : len(whole) - 300]

    rerun = optimize_cli(results, "SPY", 24)

    assert rerun.exit_code == 0, rerun.output
    warnings = [line for line in rerun.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "torn record" in warnings[0], rerun.output
    (side,) = results.glob("optuna.journal.torn-*")
    assert side.read_bytes() == torn and str(side) in warnings[0]
    assert journal.read_bytes().endswith(b"\n")
    storage = plain_optuna(journal)
    assert n_trials(storage, "sma_cross-SPY") == 24
    assert n_trials(storage, "sma_cross-MSFT") == 15  # the torn trial is the one lost
    assert optimize_cli(results, "MSFT", 16).exit_code == 0  # and it resumes too
    assert n_trials(plain_optuna(journal), "sma_cross-MSFT") == 16


def test_a_journal_an_older_version_broke_is_repaired_when_opened(tmp_path):
    """A torn record with a whole record appended onto it (what Optuna's own backend does,
    optuna issue #5138) makes Optuna fail on every read; IvyBT keeps the appended record and
    moves the torn bytes aside."""
    results = tmp_path / "results"
    journal = results / "optuna.journal"
    assert optimize_cli(results, "SPY", 16).exit_code == 0
    os.truncate(journal, journal.stat().st_size - 300)
    study = optuna.load_study(study_name="sma_cross-SPY", storage=plain_optuna(journal))
    study.set_user_attr("note", "appended onto the torn record")
    with pytest.raises(ValueError, match=r"Expecting|Invalid"):
        study.set_user_attr("next", "appended after it")  # written, then unreadable
    with pytest.raises(ValueError, match=r"Expecting|Invalid"):
        plain_optuna(journal)  # every later read fails: the studies are lost to Optuna

    with pytest.warns(JournalRepairedWarning, match="1 damaged record"):
        storage = open_storage(f"journal://{journal}")

    repaired = optuna.load_study(study_name="sma_cross-SPY", storage=storage)
    assert len(repaired.trials) == 15
    assert repaired.user_attrs["note"] == "appended onto the torn record"
    assert repaired.user_attrs["next"] == "appended after it"
    assert n_trials(plain_optuna(journal), "sma_cross-SPY") == 15
    (side,) = results.glob("optuna.journal.torn-*")
    assert side.read_bytes() and b"\n" not in side.read_bytes()


def test_a_failed_append_is_taken_back(tmp_path, monkeypatch):
    """A full disk in the middle of an append leaves the journal as it was, and the error
    says what happened, as one IvyBT error."""
    results = tmp_path / "results"
    journal = results / "optuna.journal"
    assert optimize_cli(results, "SPY", 8).exit_code == 0
    before = journal.read_bytes()
    study = optuna.load_study(study_name="sma_cross-SPY", storage=open_storage(
        f"journal://{journal}"))  # fmt: skip

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(DiskFullError, match=r"the disk is full.*nothing was written"):
        study.set_user_attr("note", "x" * 10_000)
    monkeypatch.undo()
    assert journal.read_bytes() == before


_DIE_HOLDING_THE_LOCK = """
import os, signal, sys
from optuna.storages.journal import JournalFileSymlinkLock
if sys.argv[2] == "optuna":
    JournalFileSymlinkLock(sys.argv[1]).acquire()  # Optuna's own lock, as before the fix
else:
    from ivybt.studies.journal import JournalLock
    JournalLock(sys.argv[1]).acquire()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
@pytest.mark.parametrize("holder", ["optuna", "ivybt"])
def test_a_lock_left_by_a_killed_process_does_not_stall_the_next_run(tmp_path, capfd, holder):
    """Point 21: a process killed (kill -9) while holding the journal's lock; the next run
    goes on at once (Optuna waited 30 s, then forced the lock with two `[W ...]` lines)."""
    results = tmp_path / "results"
    journal = results / "optuna.journal"
    assert optimize_cli(results, "SPY", 8).exit_code == 0
    killed = subprocess.run([sys.executable, "-c", _DIE_HOLDING_THE_LOCK, str(journal), holder],
                            check=False)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert Path(f"{journal}.lock").is_symlink()  # the stale lock the killed holder left
    capfd.readouterr()

    started = time.monotonic()
    rerun = optimize_cli(results, "SPY", 16)
    elapsed = time.monotonic() - started

    assert rerun.exit_code == 0, rerun.output
    assert elapsed < 12, f"the stale lock stalled the run for {elapsed:.0f} s"
    captured = capfd.readouterr()
    assert not OPTUNA_LINE.search(captured.out + captured.err + rerun.output)
    assert not Path(f"{journal}.lock").is_symlink()
    assert n_trials(plain_optuna(journal), "sma_cross-SPY") == 16


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivybt", "--results-dir", str(tmp_path / "results"), *args],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_the_search_commands_print_ivybts_lines_only(tmp_path):
    """Point 21: no Optuna log line reaches the terminal from optimize, walkforward --search
    optuna or grid --export-study (walkforward printed 34); `-vv` shows them as debug."""
    walk = _run(tmp_path, "walkforward", "sma_cross", "-s", "SPY", "--source", "sample",
                "--start", "2016-01-01", "-p", "fast=5:50:5", "-p", "slow=20:200:10",
                "--is", "2y", "--oos", "1y", "--search", "optuna", "--trials", "12",
                "--seed", "1")  # fmt: skip
    search = _run(tmp_path, "optimize", "sma_cross", "-s", "SPY", *SEARCH, "--trials", "24",
                  "--sampler", "tpe")  # fmt: skip
    export = _run(tmp_path, "grid", "sma_cross", "-s", "SPY", "--source", "sample",
                  "-p", "fast=5:20:5", "-p", "slow=30:60:10", "--export-study")  # fmt: skip
    for done in (walk, search, export):
        assert done.returncode == 0, done.stderr
        printed = done.stdout + done.stderr
        assert not OPTUNA_LINE.search(printed), printed
        assert "ExperimentalWarning" not in printed
    verbose = _run(tmp_path, "-vv", "optimize", "sma_cross", "-s", "MSFT", *SEARCH,
                   "--trials", "8")  # fmt: skip
    assert verbose.returncode == 0 and "debug: A new study created" in verbose.stderr
