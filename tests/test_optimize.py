"""Optuna search: batched evaluation, resume by name, reproducibility, several objectives,
recovery of trials a killed run left RUNNING, and the CLI."""

from __future__ import annotations

import re

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.runs.optimize import optimize
from ivybt.studies.study_storage import INTERRUPTED, storage_url_of

SPACE = {"fast": "2:60", "slow": "10:200:5"}
COMMON = {"symbol": "SPY", "source": "sample", "params": SPACE, "start": "2010-01-01"}


def the_study(storage: object) -> str:
    """The name of the one study in `storage` (ValueError while there is none)."""
    (name,) = optuna.get_all_study_names(storage)
    return name


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_trial_equals_its_single_backtest(tmp_path):
    result = optimize(
        "sma_cross", **COMMON, trials=40, seed=1, batch_size=16, results_dir=tmp_path
    )
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
    first = optimize("sma_cross", **COMMON, trials=30, seed=2, results_dir=tmp_path)
    before = [(t.number, t.params) for t in first.study.trials]
    again = optimize("sma_cross", **COMMON, trials=50, seed=2, results_dir=tmp_path)
    assert len(again.study.trials) == 50
    assert [(t.number, t.params) for t in again.study.trials[:30]] == before
    assert len(optimize("sma_cross", **COMMON, trials=50, seed=2, results_dir=tmp_path)
               .study.trials) == 50  # fmt: skip


def test_same_seed_same_trials(tmp_path):
    runs = [
        optimize(
            "sma_cross", **COMMON, trials=48, seed=5, batch_size=16, results_dir=tmp_path / name
        )
        for name in ("a", "b")
    ]
    params = [[t.params for t in run.study.trials] for run in runs]
    assert params[0] == params[1]


def test_study_records_its_settings_and_refuses_other_data(tmp_path):
    result = optimize("sma_cross", **COMMON, trials=10, seed=3, results_dir=tmp_path)
    recorded = result.study.user_attrs["ivybt"]
    assert recorded["sampler"]["name"] == "tpe" and recorded["sampler"]["multivariate"] is True
    assert recorded["sampler"]["constant_liar"] is True and recorded["sampler"]["seed"] == 3
    assert recorded["data_sha256"] == result.inputs.record["sha256"]
    assert recorded["execution"]["commission"] == 0.001
    assert recorded["identity"]["data_sha256"] == result.inputs.record["sha256"]
    name = result.study.study_name
    with pytest.raises(ConfigError, match=r"data_sha256 .* there.*resume it with the same"):
        optimize("sma_cross", **{**COMMON, "start": "2012-01-01"}, trials=20, study_name=name,
                 results_dir=tmp_path)  # fmt: skip
    with pytest.raises(ConfigError, match=r"execution \{commission=0.001"):  # costs too (#13)
        optimize("sma_cross", **COMMON, commission=0.002, trials=20, study_name=name,
                 results_dir=tmp_path)  # fmt: skip


def test_the_default_study_name_tells_settings_apart(tmp_path):
    """#13 (README, in order): `optimize sma_cross -s SPY -p fast=2:101 ...` then `optimize
    --config configs/spy-sma_cross-grid.yaml` refused the second search, because both took
    the study `sma_cross-SPY`. Each set of settings now gets a study of its own, and the same
    command still resumes its own."""
    first = optimize("sma_cross", **COMMON, trials=10, seed=3, results_dir=tmp_path)
    assert re.fullmatch(r"sma_cross-SPY-[0-9a-f]{8}", first.study.study_name)
    wider = optimize("sma_cross", **{**COMMON, "params": {"fast": "2:30", "slow": "40:120"}},
                     trials=10, seed=3, results_dir=tmp_path)  # fmt: skip
    costly = optimize("sma_cross", **COMMON, commission=0.002, trials=10, seed=3,
                      results_dir=tmp_path)  # fmt: skip
    names = {first.study.study_name, wider.study.study_name, costly.study.study_name}
    assert len(names) == 3
    again = optimize("sma_cross", **COMMON, trials=20, seed=3, results_dir=tmp_path)
    assert again.study.study_name == first.study.study_name and len(again.study.trials) == 20


def test_two_objectives_give_a_pareto_front(tmp_path):
    result = optimize(
        "sma_cross", **COMMON, objectives=("sharpe", "max_drawdown"), sampler="nsga2",
        trials=60, seed=4, results_dir=tmp_path,
    )  # fmt: skip
    front = result.best_trials()
    assert front
    values = np.array([t.values for t in result.study.trials if t.state == TrialState.COMPLETE])
    for trial in front:  # nothing dominates a front member (both objectives maximised)
        better = (values >= trial.values).all(axis=1) & (values > trial.values).any(axis=1)
        assert not better.any()


def test_trials_left_running_by_a_killed_run_are_failed_and_redone(tmp_path):
    url = storage_url_of(None, tmp_path)
    optimize("sma_cross", **COMMON, trials=20, seed=6, results_dir=tmp_path)
    from ivybt.studies.study_storage import open_storage

    (name,) = optuna.get_all_study_names(open_storage(url))
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    ints = optuna.distributions.IntDistribution
    orphan = study.ask({"fast": ints(2, 60), "slow": ints(10, 200, step=5)})
    orphan_params = orphan.params
    result = optimize("sma_cross", **COMMON, trials=25, seed=6, results_dir=tmp_path)
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
                      results_dir=tmp_path)  # fmt: skip
    complete = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len(result.study.trials) == 24 and complete
    assert result.study.user_attrs["ivybt"]["sampler"]["name"] == sampler


def test_grid_sampler_and_bad_input(tmp_path):
    result = optimize(
        "sma_cross", symbol="SPY", source="sample", params={"fast": "5,10", "slow": "30,60"},
        sampler="grid", trials=4, seed=0, results_dir=tmp_path,
    )  # fmt: skip
    assert sorted(tuple(t.params.values()) for t in result.study.trials) == [
        (5, 30), (5, 60), (10, 30), (10, 60),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="nothing to search"):  # every parameter fixed
        optimize("sma_cross", symbol="SPY", source="sample", params={"fast": "5", "slow": "50"},
                 results_dir=tmp_path)  # fmt: skip
    with pytest.raises(ConfigError, match=r"unknown objective 'sharp' \(did you mean 'sharpe'"):
        optimize("sma_cross", **COMMON, objectives=("sharp",), results_dir=tmp_path)
    with pytest.raises(ConfigError, match="the same metric twice"):
        optimize("sma_cross", **COMMON, objectives=("sharpe", "sharpe"), results_dir=tmp_path)


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
    assert re.search(
        rf"study 'sma_cross-SPY-[0-9a-f]{{8}}' in journal://{tmp_path.resolve()}/optuna.journal",
        result.output,
    )
    (folder,) = [path for path in tmp_path.iterdir() if path.is_dir() and path.name[0] != "."]
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
from ivybt.runs.optimize import optimize
optuna.logging.set_verbosity(optuna.logging.WARNING)
optimize("sma_cross", symbol="SPY", source="sample", params={"fast": "2:60", "slow": "10:200:5"},
         start="2010-01-01", trials=100000, seed=8, batch_size=16, results_dir=sys.argv[1])
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
            study = optuna.load_study(study_name=the_study(storage), storage=storage)
        except (KeyError, ValueError):
            continue
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(finished) >= 100, "the study never got going"
    before = {
        t.number: (t.state, t.params)
        for t in optuna.load_study(study_name=the_study(storage), storage=storage).get_trials()
        if t.state.is_finished()
    }
    counted = len(before)
    result = optimize("sma_cross", **COMMON, trials=counted + 20, seed=8, batch_size=16,
                      results_dir=tmp_path)  # fmt: skip
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

    searched = optimize("sma_cross", **COMMON, trials=24, seed=11, results_dir=tmp_path)
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
        assert summary["study_name"] == searched.study.study_name
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


RESUMED = {"symbol": "SPY", "source": "sample", "params": SPACE, "start": "2010-01-01",
           "seed": 7, "batch_size": 8}  # fmt: skip


def _made(study: optuna.Study) -> list[tuple[object, ...]]:
    return [(t.number, t.state, t.params, t.values) for t in study.trials]


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "nsga2", "grid"])
def test_a_resumed_search_makes_the_trials_of_the_uninterrupted_one(tmp_path, sampler):
    """Point 10: a search stopped at a batch boundary (kill, Ctrl-C, or --trials reached)
    and resumed makes, trial by trial, what the uninterrupted search makes; nsga2 is cut in
    its second generation (population 50)."""
    whole = optimize(
        "sma_cross", **RESUMED, sampler=sampler, trials=80, results_dir=tmp_path / "a"
    )
    optimize("sma_cross", **RESUMED, sampler=sampler, trials=24, results_dir=tmp_path / "b")
    optimize("sma_cross", **RESUMED, sampler=sampler, trials=56, results_dir=tmp_path / "b")
    resumed = optimize("sma_cross", **RESUMED, sampler=sampler, trials=80,
                       results_dir=tmp_path / "b")  # fmt: skip
    assert _made(resumed.study) == _made(whole.study)
    recorded = resumed.study.user_attrs["ivybt"]["sampler"]
    assert "SHA-256('<seed>:<n>')" in recorded["reseed"] and recorded["batch_size"] == 8


def test_a_search_interrupted_in_a_batch_resumes_as_if_never_stopped(tmp_path, monkeypatch):
    """Ctrl-C in the middle of the fourth batch: the three stored batches are kept, the
    fourth is dropped, and the rerun makes the uninterrupted search's trials."""
    from ivybt.errors import StudyInterrupted
    from ivybt.studies import search as module

    whole = optimize("sma_cross", **RESUMED, trials=48, results_dir=tmp_path / "a")
    real, calls = module.evaluate_space, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "evaluate_space", interrupted)
    with pytest.raises(StudyInterrupted, match="after 24 of 48 trials"):
        optimize("sma_cross", **RESUMED, trials=48, results_dir=tmp_path / "b")
    monkeypatch.undo()
    resumed = optimize("sma_cross", **RESUMED, trials=48, results_dir=tmp_path / "b")
    assert _made(resumed.study) == _made(whole.study)


def test_a_space_smaller_than_trials_is_tried_once_per_combination(tmp_path):
    """Point 12: the README's 174-pair config with --trials 200 says so in one line, tries
    each pair once and stops; the best lines and metrics.json list distinct pairs."""
    import json
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "spy-sma_cross-grid.yaml"
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "optimize", "--config",
                                      str(config), "--trials", "200", "--seed", "7"])  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "only 174 admissible combinations" in warnings[0]
    assert ": 174 trials" in result.output
    best = [line.split(":", 1)[1] for line in result.output.splitlines()
            if line.startswith("  #")]  # fmt: skip
    assert best and len(best) == len(set(best))
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name[0] != "."]
    headline = json.loads((folder / "metrics.json").read_text())
    assert headline["n_trials"] == headline["n_distinct"] == 174
    params = [tuple(b["params"].values()) for b in headline["best"]]
    assert len(params) == len(set(params))
    rerun = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "optimize", "--config",
                                     str(config), "--trials", "300", "--seed", "7"])  # fmt: skip
    assert rerun.exit_code == 0 and ": 174 trials" in rerun.output  # nothing left to try


def test_a_small_space_is_searched_whole_with_the_constraint_applied(tmp_path):
    """Only admissible pairs (fast < slow) are tried, each once, in grid order: no pruned
    trials and no sampling."""
    from ivybt.errors import SmallSpaceWarning

    with pytest.warns(SmallSpaceWarning, match="only 6 admissible combinations"):
        result = optimize("sma_cross", symbol="SPY", source="sample",
                          params={"fast": "10,20,30", "slow": "20,30,40"}, trials=50,
                          batch_size=4, results_dir=tmp_path)  # fmt: skip
    assert [tuple(t.params.values()) for t in result.study.trials] == [
        (10, 20), (10, 30), (10, 40), (20, 30), (20, 40), (30, 40),
    ]  # fmt: skip


def test_best_trials_list_each_parameter_set_once(tmp_path):
    """A sampler may try a pair again, and Optuna lists every trial tied for best: the best
    trials (the CLI's lines, metrics.json) show each parameter set once."""
    result = optimize("sma_cross", **COMMON, trials=16, seed=3, results_dir=tmp_path)
    (best,) = result.best_trials()
    result.study.add_trial(optuna.trial.create_trial(
        params=best.params, distributions=best.distributions, values=best.values,
        user_attrs=best.user_attrs,
    ))  # fmt: skip
    assert len(result.study.best_trials) == 2  # Optuna's own list has the tie
    assert [t.number for t in result.best_trials()] == [best.number]
    assert result.n_distinct() == 16


def test_cli_optimize_no_evidence(tmp_path):
    """From point 24: `optimize --no-evidence` skips PBO and DSR, as grid and walkforward do."""
    import json

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
        "16",
        "--seed",
        "1",
    ]
    quiet = CliRunner().invoke(cli, [*args, "--no-evidence", "--out", str(tmp_path / "no")])
    assert quiet.exit_code == 0, quiet.output
    assert json.loads((tmp_path / "no" / "metrics.json").read_text())["overfitting"] is None
    full = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "yes")])
    assert full.exit_code == 0, full.output
    assert json.loads((tmp_path / "yes" / "metrics.json").read_text())["overfitting"]["dsr"]


def test_walkforward_search_of_a_small_space_warns_once_and_tries_it_whole(tmp_path):
    """Point 12 in `walkforward --search optuna`: one warning for the run, and each fold's
    study holds every admissible combination once (what --search grid evaluates)."""
    from ivybt.errors import SmallSpaceWarning
    from ivybt.studies.study_storage import open_storage

    with pytest.warns(SmallSpaceWarning) as caught:
        result = ivybt.walk_forward(
            "sma_cross", symbol="SPY", source="sample", start="2016-01-01",
            params={"fast": "5:20:5", "slow": "10:40:10"}, in_sample="2y", out_of_sample="1y",
            search="optuna", trials=50, seed=1, out=tmp_path / "wf", results_dir=tmp_path,
        )  # fmt: skip
    assert len([w for w in caught if w.category is SmallSpaceWarning]) == 1
    assert "only 12 admissible combinations" in str(caught[0].message)
    storage = open_storage(storage_url_of(None, tmp_path))
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        pairs = [tuple(t.params.values()) for t in trials]
        assert len(pairs) == len(set(pairs)) == 12
    assert len(result.folds) >= 2
