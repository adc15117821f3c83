"""Batch runs (#17): batch files expand and validate whole, jobs run in worker processes, a
dead worker fails only its job, batch.jsonl records every state, a rerun resumes to the
uninterrupted result, and summary.html opens offline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from filelock import FileLock

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.runs.batch import BatchResult, resolve_workers
from ivybt.runs.batch_file import load_batch
from ivybt.runs.batch_log import (
    TIMING_COLUMNS,
    append_record,
    headline_of,
    read_records,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = {
    "data": {"source": "sample", "start": "2014-01-01", "end": "2017-01-01"},
    "study": {"min_trades": 1, "trials": 8, "seed": 3},
}
SMALL_SPACE = {"fast": "5:15:5", "slow": "30:50:20"}
BATCH = {
    "name": "test",
    "defaults": DEFAULTS,
    "jobs": [
        {  # 6 grids
            "command": "grid",
            "strategy": {"space": SMALL_SPACE},
            "matrix": {"strategy": ["sma_cross", "ema_cross"], "symbol": ["SPY", "MSFT", "AAPL"]},
        },
        {  # 4 backtests
            "command": "backtest",
            "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 40}},
            "matrix": {"symbol": ["SPY", "MSFT"], "execution.commission": [0.001, 0.002]},
        },
        {
            "command": "optimize",
            "data": {"symbol": "SPY"},
            "strategy": {"name": "sma_cross", "space": {"fast": "5:20", "slow": "30:60"}},
        },
        {
            "command": "walkforward",
            "data": {"symbol": "SPY"},
            "strategy": {"name": "sma_cross", "space": SMALL_SPACE},
            "study": {"windows": {"in_sample": "1y", "out_of_sample": "6M"}},
        },
        {
            "command": "backtest",
            "name": "momentum",
            "data": {"symbols": ["SPY", "MSFT", "AAPL"]},
            "strategy": {"name": "momentum_rotation", "params": {"lookback": 63, "skip": 0,
                                                                 "k": 1}},
        },
    ],
}  # fmt: skip
N_JOBS = 13


def write_batch(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def job_records(folder: Path) -> list[dict]:
    return [r for r in read_records(folder / "batch.jsonl") if "job" in r]


def last_run(folder: Path) -> list[dict]:
    """The records of the latest batch run in `folder` (after its last "started")."""
    records = read_records(folder / "batch.jsonl")
    start = max(i for i, r in enumerate(records) if r.get("batch") == "started")
    return [r for r in records[start:] if "job" in r]


# -- the file: expansion, names, validation ---------------------------------------------------


def test_the_matrix_is_the_cartesian_product_and_names_each_job(tmp_path):
    plan = load_batch(BATCH)
    names = [job.name for job in plan.jobs]
    assert len(names) == N_JOBS == len(set(names))
    assert names[:6] == [f"grid-{s}-{x}" for s in ("sma_cross", "ema_cross")
                         for x in ("SPY", "MSFT", "AAPL")]  # fmt: skip
    assert names[6:10] == ["backtest-sma_cross-SPY-commission=0.001",
                           "backtest-sma_cross-SPY-commission=0.002",
                           "backtest-sma_cross-MSFT-commission=0.001",
                           "backtest-sma_cross-MSFT-commission=0.002"]  # fmt: skip
    assert names[10:] == ["optimize-sma_cross-SPY", "walkforward-sma_cross-SPY", "momentum"]
    job = plan.job("backtest-sma_cross-MSFT-commission=0.002")
    assert job.config.data.symbol == "MSFT"
    assert job.config.execution.commission == 0.002
    assert job.config.strategy.params == {"fast": 10, "slow": 40}
    assert job.matrix == {"symbol": "MSFT", "execution.commission": 0.002}
    grid = plan.job("grid-ema_cross-AAPL").config
    assert (grid.study.kind, grid.study.trials, grid.study.seed) == ("grid", None, None)
    search = plan.job("optimize-sma_cross-SPY").config  # the defaults' trials and seed
    assert (search.study.kind, search.study.trials, search.study.seed) == ("search", 8, 3)
    assert grid.output.out is None
    assert plan.job("momentum").config.data.symbols == ("SPY", "MSFT", "AAPL")


def test_universe_files_named_jobs_and_section_values(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "three.txt").write_text("SPY\nMSFT\nAAPL\n", encoding="utf-8")
    content = {
        "defaults": {"data": {"source": "sample"}},
        "matrix": {"interval": ["1d"]},  # the file's matrix, crossed with each job's
        "jobs": [
            {"command": "backtest", "strategy": {"name": "momentum_rotation"},
             "matrix": {"universe": ["three.txt", ["SPY", "MSFT"]]}},
            {"name": "costs", "data": {"symbol": "SPY"}, "strategy": {"name": "sma_cross"},
             "matrix": {"command": ["backtest", "grid"],
                        "execution": [{"commission": 0.0}, {"commission": 0.002}]}},
        ],
    }  # fmt: skip
    plan = load_batch(write_batch(tmp_path / "sub" / "many.yaml", content))
    assert plan.name == "many"  # the file's stem
    assert [job.name for job in plan.jobs] == [
        "backtest-momentum_rotation-three-1d", "backtest-momentum_rotation-SPY+1-1d",
        "costs-1d-backtest-commission=0.0", "costs-1d-backtest-commission=0.002",
        "costs-1d-grid-commission=0.0", "costs-1d-grid-commission=0.002",
    ]  # fmt: skip
    assert plan.jobs[0].config.data.symbols == ("SPY", "MSFT", "AAPL")
    assert plan.jobs[5].command == "grid" and plan.jobs[5].config.execution.commission == 0.002


def test_a_job_hash_is_its_command_and_resolved_configuration():
    first, again = load_batch(BATCH), load_batch(BATCH)
    assert [j.hash for j in first.jobs] == [j.hash for j in again.jobs]
    changed = json.loads(json.dumps(BATCH))
    changed["jobs"][1]["strategy"]["params"]["slow"] = 41
    other = load_batch(changed)
    same = [a.hash == b.hash for a, b in zip(first.jobs, other.jobs, strict=True)]
    assert same == [True] * 6 + [False] * 4 + [True] * 3
    # a backtest's parameters are resolved: slow at its default is the same job
    explicit = {"name": "x", "defaults": DEFAULTS, "jobs": [{"command": "backtest", "data": {
        "symbol": "SPY"}, "strategy": {"name": "sma_cross", "params": {"fast": 10}}}]}  # fmt: skip
    implicit = json.loads(json.dumps(explicit))
    implicit["jobs"][0]["strategy"]["params"]["slow"] = 50
    assert load_batch(explicit).jobs[0].hash == load_batch(implicit).jobs[0].hash


def _bad(**job: object) -> dict:
    base = {"command": "grid", "data": {"symbol": "SPY"},
            "strategy": {"name": "sma_cross", "space": SMALL_SPACE}}  # fmt: skip
    return {"name": "bad", "defaults": DEFAULTS, "jobs": [{**base, **job}]}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_bad(strategy={"name": "sma_crss"}),
         "job grid-sma_crss-SPY (jobs[0]): strategy.name: unknown strategy 'sma_crss' "
         "(did you mean 'sma_cross'?)"),
        (_bad(strategy={"name": "sma_cross", "space": {"fastt": "5:10"}}),
         "job grid-sma_cross-SPY (jobs[0]): strategy.space: unknown parameter 'fastt'"),
        (_bad(command="backtest", strategy={"name": "sma_cross", "params": {"fst": 3}}),
         "job backtest-sma_cross-SPY (jobs[0]): strategy.params: unknown parameter 'fst'"),
        (_bad(command="backtest", strategy={"name": "sma_cross"}, study={"trials": 5}),
         "job backtest-sma_cross-SPY (jobs[0]): study.trials is not used by a backtest"),
        (_bad(command="backtest"),
         "job backtest-sma_cross-SPY (jobs[0]): strategy.space is not used by a backtest"),
        (_bad(study={"trials": 5}),
         "job grid-sma_cross-SPY (jobs[0]): study.trials is not used by grid (only by "
         "optimize, walkforward)"),
        (_bad(data={"symbol": "SPYX"}),
         "job grid-sma_cross-SPYX (jobs[0]): data.symbol: SPYX 1d is not bundled"),
        (_bad(data={"symbol": "SPY", "interval": "7x"}),
         "job grid-sma_cross-SPY (jobs[0]): data.interval:"),
        (_bad(data={"symbol": "SPY", "start": "2015-13-45"}),
         "job grid-sma_cross-SPY (jobs[0]): data.start: expected a date"),
        (_bad(execution={"commission": 0.5}),
         "job grid-sma_cross-SPY (jobs[0]): execution.commission: Input should be less than"),
        (_bad(command="walkforward"),
         "job walkforward-sma_cross-SPY (jobs[0]): study.windows: a walkforward job needs "
         "windows"),
        (_bad(study={"objective": "sharp"}),
         "job grid-sma_cross-SPY (jobs[0]): study.objective: unknown objective 'sharp'"),
        (_bad(stratgy={"name": "sma_cross"}),
         "unknown field jobs[0].stratgy (did you mean 'strategy'?)"),
        (_bad(output={"out": "x"}), "jobs[0].output: a batch gives each job its run folder"),
        (_bad(matrix={"symbol": []}), "jobs[0].matrix: matrix key 'symbol' lists no values"),
        (_bad(matrix={"colour": ["red"]}), "jobs[0]: matrix.colour: unknown matrix key"),
        (_bad(command=None), "(jobs[0]): command: no command given"),
        ({**_bad(), "jobs": [_bad()["jobs"][0]] * 2},
         "jobs[0] and jobs[1] both make the job 'grid-sma_cross-SPY'; give them distinct "
         "name: fields"),
        ({**_bad(), "objective": "sharp"}, "objective: unknown metric 'sharp'"),
        ({"name": "x", "jobs": []}, "jobs: List should have at least 1 item"),
    ],
)  # fmt: skip
def test_validation_errors_are_one_line_naming_the_job_and_the_field(content, expected):
    content = json.loads(json.dumps(content))
    for job in content.get("jobs", []):
        for key in [k for k, v in job.items() if v is None]:
            del job[key]
    with pytest.raises(ConfigError) as caught:
        load_batch(content)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("batch: ")
    assert expected in message, message


def test_the_cli_refuses_a_bad_file_in_one_line_before_anything_runs(tmp_path):
    path = write_batch(tmp_path / "b.yaml", _bad(strategy={"name": "sma_crss"}))
    result = CliRunner().invoke(cli, ["batch", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: batch file {path}: job grid-sma_crss-SPY (jobs[0])"
                                    ": strategy.name: unknown strategy 'sma_crss'")  # fmt: skip
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "y.yaml").write_text("jobs: [\n", encoding="utf-8")
    broken = CliRunner().invoke(cli, ["batch", str(tmp_path / "y.yaml")])
    assert broken.exit_code == 2 and "not valid YAML" in broken.output
    missing = CliRunner().invoke(cli, ["batch", "status", str(tmp_path)])
    assert missing.exit_code == 2 and "holds no IvyBT batch" in missing.output


def test_dry_run_lists_the_jobs_and_runs_nothing(tmp_path):
    content = {key: value for key, value in BATCH.items() if key != "name"}
    path = write_batch(tmp_path / "nightly.yaml", content)
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path / "r"), "batch", str(path),
                                      "--dry-run"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (f"{path}: {N_JOBS} jobs, all valid; batch folder "
                        f"{tmp_path / 'r' / 'batch-nightly'}")  # fmt: skip
    assert lines[1].split() == ["grid-sma_cross-SPY", "grid", "run"]
    assert len(lines) == N_JOBS + 1
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="has no name; add name:"):
        ivybt.batch(content)  # a mapping names its folder with name: or out=


def test_a_folder_that_holds_something_else_or_a_running_batch_is_refused(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no IvyBT batch"):
        ivybt.batch(_bad(), out=other)
    busy = tmp_path / "busy"
    busy.mkdir()
    with FileLock(busy / ".batch.lock"), pytest.raises(ConfigError, match="another `ivybt batch"):
        ivybt.batch(_bad(), out=busy)


def test_workers_times_threads_stays_within_the_cores(monkeypatch):
    monkeypatch.setattr("ivybt.runs.batch.available_cores", lambda: 8)
    assert resolve_workers(None, 20) == (4, 2)  # default: half the cores
    assert resolve_workers(3, 20) == (3, 2)
    assert resolve_workers(8, 20) == (8, 1)
    assert resolve_workers(4, 2) == (2, 4)  # never more workers than jobs
    monkeypatch.setattr("ivybt.runs.batch.available_cores", lambda: 1)
    assert resolve_workers(None, 5) == (1, 1)


def test_a_record_is_one_whole_line_even_after_a_killed_write(tmp_path):
    log = tmp_path / "batch.jsonl"
    append_record(log, {"job": "a", "hash": "1", "state": "running"})
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"job": "a", "hash": "1", "sta')  # a write cut short by a kill
    append_record(log, {"job": "a", "hash": "1", "state": "finished", "seconds": float("nan")})
    records = read_records(log)
    assert [r["state"] for r in records] == ["running", "finished"]
    assert records[1]["seconds"] is None and "time" in records[1]


def test_headlines_of_each_command():
    grid = {
        "best": {"params": {"fast": 5}, "metrics": {"sharpe": 1.5}},
        "overfitting": {"pbo": {"pbo": 0.4}, "dsr": {"dsr": 0.9}},
        "n_combinations": 12,
    }
    shown = headline_of("grid", grid)
    assert (shown["basis"], shown["best_params"], shown["sharpe"]) == (
        "in-sample best",
        "fast=5",
        1.5,
    )
    assert (shown["pbo"], shown["dsr"], shown["n_evaluated"]) == (0.4, 0.9, 12)
    folds = [{"params": {"fast": 5}}, {"params": {"fast": 9}}]
    walk = headline_of(
        "walkforward",
        {
            "oos": {"sharpe": 0.3},
            "wfe": 0.5,
            "n_combinations": 4,
            "folds": folds,
            "overfitting": {"mean_pbo": 0.6},
        },
    )
    assert (walk["basis"], walk["best_params"], walk["wfe"], walk["pbo"], walk["dsr"]) == (
        "out-of-sample",
        "last fold: fast=9",
        0.5,
        0.6,
        None,
    )
    search = headline_of("optimize", {"best": [], "n_trials": 3})
    assert search["sharpe"] is None and search["n_evaluated"] == 3


# -- running ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    """The test batch, run once, uninterrupted, with two workers."""
    folder = tmp_path_factory.mktemp("batch") / "full"
    return ivybt.batch(BATCH, jobs=2, out=folder)


@pytest.mark.slow
def test_a_mixed_batch_runs_every_job_in_its_command_s_run_folder(finished):
    summary = finished.summary
    assert len(summary) == N_JOBS and summary["state"].eq("finished").all(), summary
    assert finished.failed == [] and len(finished.ran) == N_JOBS
    pd.testing.assert_frame_equal(summary, pd.read_parquet(finished.folder / "summary.parquet"))
    by_job = summary.set_index("job")
    assert set(by_job.loc[["optimize-sma_cross-SPY", "grid-sma_cross-SPY"], "basis"]) == {
        "in-sample best"}  # fmt: skip
    assert by_job.loc["walkforward-sma_cross-SPY", "basis"] == "out-of-sample"
    assert by_job["pbo"].notna().sum() == 8  # grids, the search and the walk-forward
    for job in finished.plan.jobs:
        folder = finished.folder / "jobs" / job.name
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["status"] == "finished"
        assert manifest["command"] == job.command
        assert manifest["config"]["output"]["out"] == str(folder.resolve())
        assert (folder / "report.html").exists()
    assert (finished.folder / "optuna.journal").exists()  # the batch is the search's results dir
    # a job's run folder holds what its command gives: the backtest through the API
    direct = ivybt.backtest("sma_cross", symbol="MSFT", source="sample", start="2014-01-01",
                            end="2017-01-01", params={"fast": 10, "slow": 40},
                            commission=0.002)  # fmt: skip
    job = finished.folder / "jobs" / "backtest-sma_cross-MSFT-commission=0.002"
    written = json.loads((job / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    assert written == json.loads(json.dumps(direct.metrics))
    assert by_job.loc["backtest-sma_cross-MSFT-commission=0.002", "sharpe"] == written["sharpe"]
    states = [r["state"] for r in job_records(finished.folder) if r["job"] == "momentum"]
    assert states == ["pending", "running", "finished"]


@pytest.mark.slow
def test_a_rerun_skips_every_finished_job_and_status_shows_the_table(finished):
    again = ivybt.batch(BATCH, jobs=2, out=finished.folder)
    assert again.ran == [] and len(again.skipped) == N_JOBS
    assert {(r["state"], r.get("previous")) for r in last_run(finished.folder)} == {
        ("skipped", "finished")}  # fmt: skip
    columns = [c for c in again.summary.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(again.summary[columns], finished.summary[columns])
    result = CliRunner().invoke(cli, ["batch", "status", str(finished.folder)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["job", "state", "seconds", "sharpe", "total_return",
                                "max_drawdown", "pbo", "dsr", "folder"]  # fmt: skip
    row = next(line for line in lines if line.startswith("grid-sma_cross-SPY "))
    sharpe = finished.summary.set_index("job").loc["grid-sma_cross-SPY", "sharpe"]
    assert row.split()[1] == "finished" and f"{sharpe:.2f}" in row.split()
    assert row.split()[-1] == "jobs/grid-sma_cross-SPY"
    assert lines[-1] == f"{N_JOBS} jobs: {N_JOBS} finished"
    table = ivybt.batch_status(finished.folder)
    pd.testing.assert_frame_equal(table, again.summary)


CRASHY = '''
import os
import signal

from ivybt.strategies import BUILTIN


class Crashy(BUILTIN["sma_cross"]):
    """sma_cross whose worker dies for fast=13 (kill -9) and fast=14 (os._exit)."""

    name = "crashy"

    @classmethod
    def indicators(cls, p):
        if p["fast"] == 13:
            os.kill(os.getpid(), signal.SIGKILL)
        if p["fast"] == 14:
            os._exit(3)
        return super().indicators(p)
'''


@pytest.mark.slow
def test_a_worker_that_dies_fails_only_its_job_and_failed_jobs_rerun_only_when_asked(tmp_path):
    (tmp_path / "crashy_strategy.py").write_text(CRASHY, encoding="utf-8")
    content = {
        "name": "crash",
        "defaults": {"data": {"symbol": "SPY", "source": "sample", "start": "2014-01-01",
                              "end": "2016-01-01"},
                     "strategy": {"name": "crashy_strategy:Crashy", "params": {"slow": 40}}},
        "jobs": [
            {"command": "backtest", "matrix": {"strategy.params.fast": [5, 13, 20, 14, 25]}},
            {"command": "backtest", "name": "no-bars", "data": {"start": "2030-01-01",
                                                                "end": None}},
        ],
    }  # fmt: skip
    path = write_batch(tmp_path / "crash.yaml", content)
    out = tmp_path / "out"
    args = ["batch", str(path), "--jobs", "2", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("Error: 3 of 6 jobs failed")
    summary = ivybt.batch_status(out).set_index("job")
    dead = ["backtest-Crashy-SPY-fast=13", "backtest-Crashy-SPY-fast=14"]
    assert summary.loc[dead, "state"].eq("failed").all()
    assert "SIGKILL(-9)" in summary.loc[dead[0], "error"]
    assert "EXIT(3)" in summary.loc[dead[1], "error"]
    assert all("its worker process died" in summary.loc[name, "error"] for name in dead)
    assert summary.loc["no-bars", "state"] == "failed"
    assert summary.loc["no-bars", "error"].startswith("no SPY 1d bars")
    alive = [name for name in summary.index if name not in [*dead, "no-bars"]]
    assert len(alive) == 3 and summary.loc[alive, "state"].eq("finished").all()
    assert summary.loc[alive, "sharpe"].notna().all()
    # a rerun skips the finished and the failed jobs ...
    rerun = CliRunner().invoke(cli, args)
    assert rerun.exit_code == 1, rerun.output
    assert {(r["job"], r["state"], r.get("previous")) for r in last_run(out)} == {
        *((name, "skipped", "finished") for name in alive),
        *((name, "skipped", "failed") for name in [*dead, "no-bars"]),
    }  # fmt: skip
    # ... and --retry-failed runs the failed ones again (they fail again), nothing else
    retried = CliRunner().invoke(cli, [*args, "--retry-failed"])
    assert retried.exit_code == 1, retried.output
    ran = {r["job"] for r in last_run(out) if r["state"] == "running"}
    assert ran == {*dead, "no-bars"}
    assert ivybt.batch_status(out).set_index("job").loc[dead, "state"].eq("failed").all()


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ivybt", *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,  # its own process group
    )  # fmt: skip


def _wait_for(folder: Path, state: str, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = [r["state"] for r in job_records(folder)] if folder.exists() else []
        if states.count(state) >= count:
            return
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.05)
    raise AssertionError(f"no {count} {state} records in time")


@pytest.mark.slow
def test_a_killed_batch_resumes_to_the_summary_of_an_uninterrupted_one(finished, tmp_path):
    path = write_batch(tmp_path / "test.yaml", BATCH)
    out = tmp_path / "killed"
    process = _start(["batch", str(path), "--jobs", "2", "--out", str(out)], tmp_path)
    _wait_for(out, "finished", 3, process)
    os.killpg(process.pid, signal.SIGKILL)  # the batch and its workers, as a crash would
    process.communicate(timeout=60)
    before = {r["job"] for r in job_records(out) if r["state"] == "finished"}
    assert 3 <= len(before) < N_JOBS
    resumed = ivybt.batch(path, jobs=2, out=out)
    rerun = last_run(out)
    assert {r["job"] for r in rerun if r["state"] == "skipped"} == before
    assert {r["job"] for r in rerun if r["state"] == "finished"} == {
        job.name for job in resumed.plan.jobs} - before  # fmt: skip
    columns = [c for c in finished.summary.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(resumed.summary[columns], finished.summary[columns])


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_records_the_running_jobs_interrupted(tmp_path):
    path = write_batch(tmp_path / "test.yaml", BATCH)
    out = tmp_path / "stopped"
    process = _start(["batch", str(path), "--jobs", "2", "--out", str(out)], tmp_path)
    _wait_for(out, "finished", 1, process)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends Ctrl-C to the process group
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    assert "stopped by Ctrl-C after" in output.splitlines()[-1]
    assert "rerun the same command to run the rest" in output.splitlines()[-1]
    records = read_records(out / "batch.jsonl")
    assert records[-1]["batch"] == "interrupted"
    states = ivybt.batch_status(out).set_index("job")["state"]
    assert set(states) <= {"finished", "interrupted", "pending"}
    assert (states == "finished").sum() >= 1 and (states != "finished").sum() >= 1
    assert (out / "summary.html").exists()
    with FileLock(out / ".batch.lock").acquire(timeout=0):  # the batch's process let go
        pass


@pytest.mark.slow
def test_summary_html_opens_offline_sorts_and_links_each_report(finished):
    from tests.browser import Chromium, require_chromium

    require_chromium()
    rows = "document.querySelectorAll('table.sortable tbody tr').length"
    sort = """(() => {
      const th = [...document.querySelectorAll('table.sortable th')]
        .find(h => h.textContent === 'sharpe');
      th.click(); th.click();  // descending
      return [...document.querySelectorAll('table.sortable tbody tr')]
        .map(r => r.cells[0].textContent);
    })()"""
    links = """[...document.querySelectorAll('table.sortable a')]
      .map(a => a.getAttribute('href'))"""
    with Chromium() as browser:
        page = browser.open(finished.folder / "summary.html",
                            checks={"rows": rows, "links": links, "sort": sort})  # fmt: skip
    assert page.errors == []
    assert page.external_requests == []
    assert page.graphs == page.plots == 2
    assert page.values["rows"] == N_JOBS
    expected = finished.summary.sort_values("sharpe", ascending=False, kind="stable")["job"]
    assert page.values["sort"] == expected.tolist()
    assert page.values["links"] == [f"jobs/{name}/report.html" for name in
                                    finished.summary["job"]]  # fmt: skip
    for href in page.values["links"]:
        assert (finished.folder / href).exists()
