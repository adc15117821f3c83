"""Exits as parameters of Optuna searches and walk-forward studies (issue #16): `-p sl=...`
searched next to the strategy's parameters, each trial and each fold's choice equal to the
backtest with those exits (0: off), the fold's chosen exits traded in the stitched OOS."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.optimize import write_search
from ivybt.strategies import BUILTIN

SAMPLE = {"symbol": "SPY", "source": "sample", "start": "2010-01-01"}
SEARCHED = {"fast": "5:20:5", "slow": "30:60:10", "sl": "0:0.1:0.02", "tp": "0,0.05,0.1"}
WF_PARAMS = {"fast": "5,10", "slow": "30,50", "sl": "0,0.03,0.06"}
WINDOWS = {"in_sample": 500, "out_of_sample": 250}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def spy():
    frame, _ = load_sample("SPY", "1d")
    return frame.iloc[-1500:]


def same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def test_a_search_over_exits_evaluates_each_trial_with_its_own_exits(tmp_path):
    result = ivybt.optimize("sma_cross", **SAMPLE, params=SEARCHED, trials=16, seed=1,
                            batch_size=8, results_dir=tmp_path)  # fmt: skip
    trials = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len({t.params["sl"] for t in trials}) > 1 and len({t.params["tp"] for t in trials}) > 1
    # Optuna's storage holds the exits under their plain names, as optuna-dashboard shows them
    distributions = trials[0].distributions
    assert isinstance(distributions["sl"], FloatDistribution)
    assert isinstance(distributions["tp"], CategoricalDistribution)
    for trial in trials[::3]:
        exits = result.exits(trial)
        assert exits == {"sl": trial.params["sl"], "tp": trial.params["tp"]}
        single = ivybt.backtest(
            "sma_cross", **SAMPLE, params={k: trial.params[k] for k in ("fast", "slow")},
            **{name: value or None for name, value in exits.items()},  # 0: off
        )  # fmt: skip
        for name in METRIC_NAMES:
            assert same(trial.user_attrs[name], single.metrics[name]), (trial.number, name)
        assert trial.value == pytest.approx(single.metrics["sharpe"], abs=1e-9)
    table = result.trials()
    assert {"param_sl", "param_tp"} <= set(table.columns)
    folder = write_search(result, tmp_path / "run")
    best = json.loads((folder / "metrics.json").read_text())["best"][0]
    assert set(best["params"]) == {"fast", "slow"} and set(best["exits"]) == {"sl", "tp"}
    first = result.best_trials()[0]
    assert best["exits"] == result.exits(first)
    assert best["metrics"]["sharpe"] == first.value
    assert json.loads((folder / "metrics.json").read_text())["overfitting"]["pbo"] is not None


def test_a_fixed_exit_among_searched_parameters_is_reported_and_traded(tmp_path):
    """`-p max_bars=20` (one value) with searched strategy parameters: every trial holds it."""
    params = {"fast": "5:20:5", "slow": "30:60:10", "max_bars": "20"}
    result = ivybt.optimize("sma_cross", **SAMPLE, params=params, trials=6, seed=2,
                            evidence=False, results_dir=tmp_path)  # fmt: skip
    trial = result.best_trials()[0]
    assert "max_bars" not in trial.params and result.exits(trial) == {"max_bars": 20}
    single = ivybt.backtest("sma_cross", **SAMPLE, params=trial.params, max_bars=20)
    assert trial.value == single.metrics["sharpe"]


def check_folds_trade_their_exits(result, spy):
    """Each fold's IS and OOS metrics, and its part of the stitched OOS equity, equal a
    backtest over the fold's window with the chosen parameters and exits."""
    columns = bar_columns(spy)
    cash = 10_000.0
    equity = result.oos_equity
    for row in result.folds.itertuples():
        params = {"fast": int(row.param_fast), "slow": int(row.param_slow)}
        execution = ExecutionConfig(sl=float(row.param_sl) or None)
        truncated = {k: v[: row.oos_end] for k, v in columns.items()}
        for side, (start, end) in (("is", (row.is_start, row.is_end)),
                                   ("oos", (row.oos_start, row.oos_end))):  # fmt: skip
            single = simulate_strategy(
                truncated, BUILTIN["sma_cross"], params, execution, window=slice(start, end),
                periods_per_year=252.0,
            )  # fmt: skip
            for name in METRIC_NAMES:
                assert same(getattr(row, f"{side}_{name}"), single.metrics[name]), (row.fold, name)
        part = equity[equity["fold"] == row.fold]["equity"].to_numpy()
        np.testing.assert_allclose(part, single.equity * (cash / 10_000.0), rtol=1e-12)
        cash = part[-1]
    record = json.loads((result.folder / "folds" / "fold-000.json").read_text())
    assert set(record["params"]) == {"fast", "slow", "sl"}
    assert record["params"]["sl"] == result.folds["param_sl"].iloc[0]
    choices = json.loads((result.folder / "metrics.json").read_text())["folds"]
    assert [c["params"]["sl"] for c in choices] == list(result.folds["param_sl"])


def test_a_walk_forward_chooses_exits_in_sample_and_trades_them_out_of_sample(spy, tmp_path):
    result = ivybt.walk_forward("sma_cross", data=spy, params=WF_PARAMS, **WINDOWS,
                                out=tmp_path / "wf")  # fmt: skip
    assert result.space.names == ("fast", "slow", "sl") and len(result.space) == 2 * 2 * 3
    assert (result.folds["param_sl"] > 0).any()  # a stop was chosen somewhere
    check_folds_trade_their_exits(result, spy)
    # the stitched OOS of a fold with a stop is not the same fold without it
    stopped = result.folds[result.folds["param_sl"] > 0].iloc[0]
    plain = simulate_strategy(
        {k: v[: stopped.oos_end] for k, v in bar_columns(spy).items()}, BUILTIN["sma_cross"],
        {"fast": int(stopped.param_fast), "slow": int(stopped.param_slow)}, ExecutionConfig(),
        window=slice(int(stopped.oos_start), int(stopped.oos_end)), periods_per_year=252.0,
    )  # fmt: skip
    assert plain.metrics["total_return"] != stopped["oos_total_return"]
    # the surfaces and the stability scores treat the exit like a parameter
    assert set(result.surface["param_sl"]) == {0.0, 0.03, 0.06}
    assert "sl" in result.metrics["stability"]["drift"]


def test_an_optuna_walk_forward_searches_exits_per_fold(spy, tmp_path):
    result = ivybt.walk_forward("sma_cross", data=spy, params=WF_PARAMS, **WINDOWS,
                                search="optuna", trials=8, seed=1, out=tmp_path / "opt",
                                results_dir=tmp_path / "results")  # fmt: skip
    check_folds_trade_their_exits(result, spy)
    grid = ivybt.walk_forward("sma_cross", data=spy, params=WF_PARAMS, **WINDOWS,
                              out=tmp_path / "grid", evidence=False)  # fmt: skip
    merged = result.surface.merge(grid.surface, on=["fold", "side", "combo"])
    assert len(merged) == len(result.surface)  # the exits found their rows of the whole space
    np.testing.assert_array_equal(merged["param_sl_x"], merged["param_sl_y"])
    np.testing.assert_array_equal(merged["sharpe_x"], merged["sharpe_y"])


def invoke(args):
    return CliRunner().invoke(cli, args)


def test_the_commands_take_exits_as_parameters(tmp_path):
    common = ["-s", "SPY", "--source", "sample", "--start", "2012-01-01", "-p", "fast=5,10",
              "-p", "slow=30,50", "-p", "sl=0,0.05"]  # fmt: skip
    searched = invoke(["--results-dir", str(tmp_path), "optimize", "sma_cross", *common,
                       "--trials", "4", "--out", str(tmp_path / "opt")])  # fmt: skip
    assert searched.exit_code == 0, searched.output
    assert "sl=" in searched.output and "varies exits" not in searched.output
    walked = invoke(["--results-dir", str(tmp_path), "walkforward", "sma_cross", *common,
                     "--is", "3y", "--oos", "1y", "--out", str(tmp_path / "wf")])  # fmt: skip
    assert walked.exit_code == 0, walked.output
    assert "stitched OOS sharpe" in walked.output


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_a_bad_exit_range_is_one_line(command):
    extra = ["--is", "2y", "--oos", "1y"] if command == "walkforward" else ["--trials", "4"]
    result = invoke([command, "sma_cross", "-s", "SPY", "--source", "sample", "-p",
                     "fast=5,10", "-p", "sl=2", *extra])  # fmt: skip
    assert result.exit_code == 2
    assert "parameter sl of the exits must be <= 0.99, got 2.0" in result.output
    assert "Traceback" not in result.output
