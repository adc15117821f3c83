"""Renko bricks in every command: honest fills on the real bars, box size in the grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.bars.timeline import signal_bars
from ivybt.cli import cli
from ivybt.config import ExecutionConfig, build_config
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN

COMMON = {"symbol": "SPY", "source": "sample", "start": "2012-01-01", "bars": "renko"}


def same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def test_grid_over_box_and_strategy_params_equals_single_backtests(tmp_path):
    params = {"box": "2:6:2", "fast": "3,5,8", "slow": "10,20"}
    result = ivybt.grid("sma_cross", **COMMON, params=params, out=tmp_path / "g")
    table = result.table
    assert list(table.columns[:3]) == ["param_box", "param_fast", "param_slow"]
    assert len(table) == 3 * 6 and sorted(table["param_box"].unique()) == [2.0, 4.0, 6.0]
    rng = np.random.default_rng(7)
    for row in table.iloc[rng.choice(len(table), size=6, replace=False)].itertuples():
        given = {"fast": row.param_fast, "slow": row.param_slow}
        single = ivybt.backtest("sma_cross", **COMMON, renko={"box": row.param_box}, params=given)
        for name in METRIC_NAMES:
            assert same(getattr(row, name), single.metrics[name]), (row, name)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["config"]["data"]["bars"] == "renko"
    assert manifest["config"]["strategy"]["space"]["box"] == "2:6:2"
    assert "Signals on Renko bricks" in (tmp_path / "g" / "report.html").read_text()
    assert set(result.best_params()) == {"box", "fast", "slow"}


def test_bricks_decide_and_real_bars_fill():
    """Each decision comes from the bricks completed by the close of bar t and fills at bar
    t+1's open: a Renko run trades only on real bars, after the brick's bar."""
    frame, _ = load_sample("SPY", "1d")
    frame = frame.iloc[-1500:]
    config = build_config(data={"symbol": "SPY", "bars": "renko", "renko": {"box": 3.0}},
                          strategy={"name": "sma_cross"})  # fmt: skip
    columns = bar_columns(frame)
    signals = signal_bars(config, frame, columns)
    run = simulate_strategy(
        columns, BUILTIN["sma_cross"], {"fast": 5, "slow": 20}, ExecutionConfig(),
        periods_per_year=252.0, signal_columns=signals.columns, signal_of=signals.signal_of,
    )  # fmt: skip
    assert len(run.trades) > 3
    opens = columns["open"]
    for trade in run.trades:
        entry = int(trade["entry_bar"])
        assert trade["entry_price"] == pytest.approx(opens[entry] * 1.0005)  # next open + slip
        brick = signals.signal_of[entry - 1]
        assert brick >= 0 and run.target[entry - 1] != 0  # decided at the bar before


def test_no_look_ahead_with_renko_bricks():
    """Bars after t change no brick completed by t, so no target and no fill up to t."""
    frame, _ = load_sample("SPY", "1d")
    frame = frame.iloc[-1200:]
    for renko in ({"box": 2.5}, {"atr": 14, "atr_dynamic": True}, {"box": 2.0, "source": "hl"}):
        config = build_config(data={"symbol": "SPY", "bars": "renko", "renko": renko},
                              strategy={"name": "sma_cross"})  # fmt: skip
        runs = []
        for factor in (1.0, 1.3):
            changed = frame.copy()
            for column in ("open", "high", "low", "close"):
                changed.iloc[800:, changed.columns.get_loc(column)] *= factor
            columns = bar_columns(changed)
            signals = signal_bars(config, changed, columns)
            runs.append(simulate_strategy(
                columns, BUILTIN["ema_cross"], {"fast": 5, "slow": 12}, ExecutionConfig(),
                periods_per_year=252.0, signal_columns=signals.columns,
                signal_of=signals.signal_of,
            ))  # fmt: skip
        np.testing.assert_array_equal(runs[0].target[:800], runs[1].target[:800])
        np.testing.assert_array_equal(runs[0].equity[:800], runs[1].equity[:800])
        assert not np.array_equal(runs[0].equity, runs[1].equity)  # the change does matter


def test_cli_renko_in_backtest_grid_optimize_and_walkforward(tmp_path):
    runner = CliRunner()
    base = ["-s", "SPY", "--source", "sample", "--start", "2014-01-01", "--bars", "renko"]
    out = tmp_path / "bt"
    result = runner.invoke(cli, ["backtest", "sma_cross", *base, "--renko-box", "4",
                                 "-p", "fast=5", "-p", "slow=20", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    renko = json.loads((out / "manifest.json").read_text())["config"]["data"]["renko"]
    assert renko["box"] == 4.0 and renko["reversal"] == 2 and renko["anchor"] == "floor"
    grid = runner.invoke(cli, ["grid", "sma_cross", *base, "-p", "box=2:4:1", "-p", "fast=5,8",
                               "--out", str(tmp_path / "g")])  # fmt: skip
    assert grid.exit_code == 0, grid.output
    assert "6 combinations" in grid.stderr or "combinations" in grid.stderr
    search = runner.invoke(cli, ["--results-dir", str(tmp_path), "optimize", "sma_cross", *base,
                                 "--renko-atr", "10", "-p", "fast=3:20", "-p", "slow=20:60",
                                 "--trials", "16", "--out", str(tmp_path / "o")])  # fmt: skip
    assert search.exit_code == 0, search.output
    walk = runner.invoke(cli, ["walkforward", "sma_cross", *base, "--renko-atr", "14",
                               "-p", "fast=5,8", "-p", "slow=20,30", "--is", "2y", "--oos", "1y",
                               "--out", str(tmp_path / "w")])  # fmt: skip
    assert walk.exit_code == 0, walk.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--renko-box", "2"], "apply to --bars renko; add --bars renko"),
        (["--bars", "renko"], "--bars renko needs exactly one box"),
        (["--bars", "renko", "--renko-box", "2", "--renko-atr", "14"], "exactly one box"),
        (["--bars", "renko", "--renko-box", "0"], "--renko-box"),
        (["--bars", "renko", "--renko-box", "500"], "makes no brick"),
    ],
)
def test_bad_renko_settings_get_one_line(args, message):
    result = CliRunner().invoke(cli, ["backtest", "sma_cross", "-s", "SPY", "--source",
                                      "sample", *args])  # fmt: skip
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert "Traceback" not in result.output


def test_box_as_an_optuna_parameter(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = ivybt.optimize("sma_cross", **COMMON, params={"box": "2:6:1", "fast": "3:10",
                                                           "slow": "10:30"},
                            trials=24, seed=2, results_dir=tmp_path)  # fmt: skip
    done = [t for t in result.study.trials if t.state.name == "COMPLETE"]
    assert len({t.params["box"] for t in done}) > 1
    for trial in done[:4]:  # each equals the single backtest with its box
        params = {"fast": trial.params["fast"], "slow": trial.params["slow"]}
        single = ivybt.backtest("sma_cross", **COMMON, renko={"box": trial.params["box"]},
                                params=params)  # fmt: skip
        assert trial.user_attrs["sharpe"] == single.metrics["sharpe"]


def test_walk_forward_over_box_sizes_equals_single_backtests(tmp_path):
    params = {"box": "2,4", "fast": "3,5", "slow": "10,20"}
    result = ivybt.walk_forward("sma_cross", **COMMON, params=params, in_sample="2y",
                                out_of_sample="1y", out=tmp_path / "w")  # fmt: skip
    surface = result.surface
    assert list(surface.columns[3:6]) == ["param_box", "param_fast", "param_slow"]
    assert len(surface) == len(result.folds) * 2 * 8
    frame = load_sample("SPY", "1d")[0]
    frame = frame.loc[frame.index >= "2012-01-01"]
    columns = bar_columns(frame)
    config = build_config(data={"symbol": "SPY", "bars": "renko"}, strategy={"name": "x"})
    for row in result.folds.itertuples():
        cut = {k: v[: row.oos_end] for k, v in columns.items()}
        signals = signal_bars(config, frame.iloc[: row.oos_end], cut,
                              override={"box": row.param_box})  # fmt: skip
        single = simulate_strategy(
            cut, BUILTIN["sma_cross"], {"fast": int(row.param_fast), "slow": int(row.param_slow)},
            ExecutionConfig(), window=slice(row.oos_start, row.oos_end), periods_per_year=252.0,
            signal_columns=signals.columns, signal_of=signals.signal_of,
        )  # fmt: skip
        assert same(row.oos_sharpe, single.metrics["sharpe"]), row.fold


def test_box_as_a_parameter_needs_renko_bars():
    with pytest.raises(ConfigError, match="add --bars renko"):
        ivybt.grid("sma_cross", symbol="SPY", source="sample", params={"box": "1,2"})
    with pytest.raises(ConfigError, match="with --search optuna: give fixed Renko settings"):
        ivybt.walk_forward(
            "sma_cross", **COMMON, params={"box": "1,2", "fast": "5,8"}, in_sample="2y",
            out_of_sample="1y", search="optuna", trials=5,
        )  # fmt: skip
