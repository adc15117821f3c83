"""Optuna search: batched evaluation, resume by name, reproducibility, several objectives,
recovery of trials a killed run left RUNNING, and the CLI."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.studies.optimize import optimize
from ivybt.studies.study_storage import INTERRUPTED, storage_url_of

SPACE = {"fast": "2:60", "slow": "10:200:5"}
COMMON = {"symbol": "SPY", "source": "sample", "params": SPACE, "start": "2010-01-01"}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_trial_equals_its_single_backtest(tmp_path):
    result = optimize("sma_cross", **COMMON, trials=40, seed=1, batch_size=16, results=tmp_path)
    complete = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) > 20
    for trial in complete[::7]:
        single = ivybt.backtest("sma_cross", symbol="SPY", source="sample", start="2010-01-01",
                                params=trial.params)  # fmt: skip
        assert trial.value == single.metrics["sharpe"]
        for name, value in single.metrics.items():
            assert trial.user_attrs[name] == value or (np.isnan(value) and np.isnan(
                trial.user_attrs[name]))  # fmt: skip
    pruned = [t for t in result.study.trials if t.state == TrialState.PRUNED]
    assert all(t.params["fast"] >= t.params["slow"] for t in pruned)


def test_resume_by_name_adds_trials_up_to_the_target(tmp_path):
    first = optimize("sma_cross", **COMMON, trials=30, seed=2, results=tmp_path)
    before = [(t.number, t.params) for t in first.study.trials]
    again = optimize("sma_cross", **COMMON, trials=50, seed=2, results=tmp_path)
    assert len(again.study.trials) == 50
    assert [(t.number, t.params) for t in again.study.trials[:30]] == before
    assert len(optimize("sma_cross", **COMMON, trials=50, seed=2, results=tmp_path)
               .study.trials) == 50  # fmt: skip


def test_same_seed_same_trials(tmp_path):
    runs = [
        optimize("sma_cross", **COMMON, trials=48, seed=5, batch_size=16, results=tmp_path / name)
        for name in ("a", "b")
    ]
    params = [[t.params for t in run.study.trials] for run in runs]
    assert params[0] == params[1]


def test_study_records_its_settings_and_refuses_other_data(tmp_path):
    result = optimize("sma_cross", **COMMON, trials=10, seed=3, results=tmp_path)
    recorded = result.study.user_attrs["ivybt"]
    assert recorded["sampler"]["name"] == "tpe" and recorded["sampler"]["multivariate"] is True
    assert recorded["sampler"]["constant_liar"] is True and recorded["sampler"]["seed"] == 3
    assert recorded["data_sha256"] == result.inputs.record["sha256"]
    assert recorded["execution"]["commission"] == 0.001
    with pytest.raises(ConfigError, match="resume it with the same settings"):
        optimize("sma_cross", **{**COMMON, "start": "2012-01-01"}, trials=20, results=tmp_path)


def test_two_objectives_give_a_pareto_front(tmp_path):
    result = optimize(
        "sma_cross", **COMMON, objectives=("sharpe", "max_drawdown"), sampler="nsga2",
        trials=60, seed=4, results=tmp_path,
    )  # fmt: skip
    front = result.best_trials()
    assert front
    values = np.array([t.values for t in result.study.trials if t.state == TrialState.COMPLETE])
    for trial in front:  # nothing dominates a front member (both objectives maximised)
        better = (values >= trial.values).all(axis=1) & (values > trial.values).any(axis=1)
        assert not better.any()


def test_trials_left_running_by_a_killed_run_are_failed_and_redone(tmp_path):
    url = storage_url_of(None, tmp_path)
    optimize("sma_cross", **COMMON, trials=20, seed=6, results=tmp_path)
    from ivybt.studies.study_storage import open_storage

    study = optuna.load_study(study_name="sma_cross-SPY", storage=open_storage(url))
    ints = optuna.distributions.IntDistribution
    orphan = study.ask({"fast": ints(2, 60), "slow": ints(10, 200, step=5)})
    orphan_params = orphan.params
    result = optimize("sma_cross", **COMMON, trials=25, seed=6, results=tmp_path)
    trials = result.study.trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = trials[orphan.number]
    assert failed.state == TrialState.FAIL and failed.user_attrs[INTERRUPTED] is True
    redone = [t for t in trials[orphan.number + 1 :] if t.params == orphan_params]
    assert redone and redone[0].state.is_finished()
    counted = [t for t in trials if not t.user_attrs.get(INTERRUPTED)]
    assert len(counted) == 25


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "random", "nsga2"])
def test_every_sampler_runs_a_search(tmp_path, sampler):
    """Each `--sampler` runs end to end (cmaes needs the `cmaes` package, a dependency)."""
    result = optimize("sma_cross", **COMMON, trials=24, batch_size=8, sampler=sampler, seed=4,
                      results=tmp_path)  # fmt: skip
    complete = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len(result.study.trials) == 24 and complete
    assert result.study.user_attrs["ivybt"]["sampler"]["name"] == sampler


def test_grid_sampler_and_bad_input(tmp_path):
    result = optimize(
        "sma_cross", symbol="SPY", source="sample", params={"fast": "5,10", "slow": "30,60"},
        sampler="grid", trials=4, seed=0, results=tmp_path,
    )  # fmt: skip
    assert sorted(tuple(t.params.values()) for t in result.study.trials) == [
        (5, 30), (5, 60), (10, 30), (10, 60),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="nothing to search"):
        optimize("sma_cross", symbol="SPY", source="sample", params={"fast": "5"},
                 results=tmp_path)  # fmt: skip
    with pytest.raises(ConfigError, match="unknown objective 'sharp'"):
        optimize("sma_cross", **COMMON, objectives=("sharp",), results=tmp_path)


def test_cli_optimize(tmp_path):
    args = [
        "--results-dir",
        str(tmp_path),
        "optimize",
        "sma_cross",
        "-s",
        "SPY",
        "--source",
        "sample",
        "-p",
        "fast=2:50",
        "-p",
        "slow=20:120",
        "--trials",
        "40",
        "--seed",
        "9",
    ]
    result = CliRunner().invoke(cli, args)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "40/40 trials" in result.output
    assert f"study 'sma_cross-SPY' in journal://{tmp_path.resolve()}/optuna.journal" in (
        result.output
    )
    (folder,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert folder.name.startswith("optimize-sma_cross-SPY-")
    assert sorted(path.name for path in folder.iterdir()) == [
        "manifest.json", "metrics.json", "report.html", "trials.parquet",
    ]  # fmt: skip
    import json

    import pandas as pd

    headline = json.loads((folder / "metrics.json").read_text())
    assert headline["n_trials"] == 40 and headline["objectives"] == ["sharpe"]
    assert len(pd.read_parquet(folder / "trials.parquet")) == 40
    assert json.loads((folder / "manifest.json").read_text())["status"] == "finished"
    rerun = CliRunner().invoke(cli, [*args[:-4], "--trials", "50", "--seed", "9"])
    assert rerun.exit_code == 0 and ": 50 trials" in rerun.output


_KILLABLE = """
import sys
import optuna
from ivybt.studies.optimize import optimize
optuna.logging.set_verbosity(optuna.logging.WARNING)
optimize("sma_cross", symbol="SPY", source="sample", params={"fast": "2:60", "slow": "10:200:5"},
         start="2010-01-01", trials=100000, seed=8, batch_size=16, results=sys.argv[1])
"""


@pytest.mark.slow
def test_a_study_killed_midway_resumes_with_every_finished_trial_kept(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from ivybt.studies.study_storage import open_storage

    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "")}
    process = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(tmp_path)], env=env)
    storage = open_storage(storage_url_of(None, tmp_path))
    deadline = time.monotonic() + 120
    finished: list[optuna.trial.FrozenTrial] = []
    while time.monotonic() < deadline and len(finished) < 100:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name="sma_cross-SPY", storage=storage)
        except KeyError:
            continue
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(finished) >= 100, "the study never got going"
    before = {
        t.number: (t.state, t.params)
        for t in optuna.load_study(study_name="sma_cross-SPY", storage=storage).get_trials()
        if t.state.is_finished()
    }
    counted = len(before)
    result = optimize("sma_cross", **COMMON, trials=counted + 20, seed=8, batch_size=16,
                      results=tmp_path)  # fmt: skip
    after = {t.number: (t.state, t.params) for t in result.study.trials}
    assert all(after[number] == kept for number, kept in before.items())
    assert not [t for t in result.study.trials if t.state == TrialState.RUNNING]


@pytest.mark.slow
def test_dashboard_serves_the_study_over_http(tmp_path):
    """`ivybt dashboard` on localhost; the study and its trials come back over its HTTP API."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    optimize("sma_cross", **COMMON, trials=24, seed=11, results=tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "ivybt", "--results-dir", str(tmp_path), "dashboard",
         "--port", str(port)], stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        studies = None
        deadline = time.monotonic() + 60
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as answer:
                    studies = json.load(answer)["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "the dashboard did not answer"
        (summary,) = studies
        assert summary["study_name"] == "sma_cross-SPY"
        url = f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0"
        with urllib.request.urlopen(url) as answer:
            detail = json.load(answer)
        assert len(detail["trials"]) == 24
        assert detail["objective_names"] == ["sharpe"]  # set with study.set_metric_names
        complete = [t for t in detail["trials"] if t["state"].lower() == "complete"]
        attrs = {item["key"] for item in complete[0]["user_attrs"]}
        assert {"sharpe", "total_return", "max_drawdown", "n_trades"} <= attrs
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_dashboard_without_studies_says_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "dashboard"])
    assert result.exit_code == 2
    assert "no studies at journal://" in result.output and "run `ivybt optimize` first" in (
        result.output
    )
