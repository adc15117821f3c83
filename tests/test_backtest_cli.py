"""`ivybt backtest` and `ivybt strategies`, and `ivybt.backtest`, on bundled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.data.sample import load_sample
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN

SPY_RUN = ["backtest", "sma_cross", "--symbol", "SPY", "--source", "sample"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_backtest_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    result = invoke(*SPY_RUN, "-p", "fast=10", "-p", "slow=50", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (
        "sma_cross fast=10 slow=50 on SPY 1d, 1999-11-01..2020-08-28 (5241 bars)" in result.output
    )
    assert "  sharpe " in result.output and f"wrote {out}" in result.output
    names = sorted(path.name for path in out.iterdir())
    assert names == [
        "equity.parquet", "manifest.json", "metrics.json", "report.html", "trades.csv",
        "trades.parquet",
    ]  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["metrics"]) == set(METRIC_NAMES)
    assert metrics["params"] == {"fast": 10, "slow": 50}
    assert metrics["periods_per_year"] == 252
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["execution"] == {
        "commission": 0.001, "slippage": 0.0005, "fill": "next_open", "direction": "long",
        "size": 1.0, "initial_cash": 10000.0, "periods_per_year": None, "sl": None,
        "tp": None, "trail": None, "sl_atr": None, "max_bars": None, "atr_length": 14,
    }  # fmt: skip
    assert manifest["config"]["strategy"] == {
        "name": "sma_cross", "params": {"fast": 10, "slow": 50}, "space": {}, "constraints": [],
    }  # fmt: skip
    assert manifest["config"]["study"] is None
    assert manifest["data"][0]["sha256"] and manifest["data"][0]["source"] == "sample"
    assert {"ivybt", "numba", "numpy", "pandas", "pandas-ta"} <= set(manifest["versions"])
    assert manifest["command_line"] == [
        "ivybt", *SPY_RUN, "-p", "fast=10", "-p", "slow=50", "--out", str(out)
    ]  # fmt: skip
    trades = pd.read_parquet(out / "trades.parquet")
    trades_csv = pd.read_csv(out / "trades.csv")
    assert (
        len(trades)
        == len(trades_csv)
        == metrics["metrics"]["n_trades"] + int(trades["is_open"].sum())
    )
    equity = pd.read_parquet(out / "equity.parquet")
    assert list(equity.columns) == ["equity", "returns", "drawdown", "units", "benchmark_equity"]
    html = (out / "report.html").read_text()
    assert html.count("plotly.js v") == 1 and "<script src" not in html
    assert not list(out.glob(".*tmp"))


def test_api_writes_the_same_folder(tmp_path):
    result = ivybt.backtest("sma_cross", symbol="SPY", source="sample", out=tmp_path / "api")
    assert result.folder == tmp_path / "api"
    cli_run = invoke(*SPY_RUN, "--out", str(tmp_path / "cli"))
    assert cli_run.exit_code == 0, cli_run.output
    from_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    from_api = json.loads((tmp_path / "api" / "metrics.json").read_text())
    assert from_cli == from_api
    assert isinstance(result.metrics, dict) and isinstance(result.trades, pd.DataFrame)


def test_default_run_folder_name(tmp_path):
    result = invoke("--results-dir", str(tmp_path), *SPY_RUN, "--start", "2018-01-01")
    assert result.exit_code == 0, result.output
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("backtest-sma_cross-SPY-") and folder.name.endswith("Z")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["-p", "fsat=5"],
            2,
            "Error: unknown parameter 'fsat' for sma_cross (did you mean 'fast'?)",
        ),
        (["-p", "fast=x"], 2, "Error: parameter fast of sma_cross must be a number, got 'x'"),
        (["-p", "fast=60"], 2, "Error: constraint 'fast < slow' of sma_cross does not hold"),
        (["-p", "fast"], 2, "expected name=value such as fast=10, got 'fast'"),
        (
            ["-p", "slow=400", "--start", "2020-01-01"],
            2,
            "Error: sma_cross with fast=10, slow=400 needs at least 401 bars (399 to warm up its "
            "indicators), but SPY 2020-01-02..2020-08-28 has 167; start earlier (--start) or use "
            "smaller windows",
        ),
        (["--run-mode", "test"], 2, "run_mode 'test' needs train_split (e.g. --train-split 0.7)"),
        (["--train-split", "0.7"], 2, "train_split applies to run_mode 'train' or 'test'"),
        (["--commission", "0.5"], 2, "Invalid value for '--commission'"),
        (["--fill", "open"], 2, "Invalid value for '--fill'"),
    ],
)
def test_bad_input_gets_one_line_and_no_traceback(tmp_path, args, code, message):
    result = invoke(*SPY_RUN, *args, "--out", str(tmp_path / "x"))
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_unknown_strategy_exits_2():
    result = invoke("backtest", "sma_crss", "-s", "SPY", "--source", "sample")
    assert result.exit_code == 2
    assert "unknown strategy 'sma_crss' (did you mean 'sma_cross'?)" in result.output


def test_rerun_and_refusal_of_a_used_folder(tmp_path):
    out = str(tmp_path / "run")
    assert invoke(*SPY_RUN, "--out", out).exit_code == 0
    assert invoke(*SPY_RUN, "--out", out).exit_code == 0  # same config: rerun in place
    other = invoke(*SPY_RUN, "-p", "fast=5", "--out", out)
    assert other.exit_code == 2
    assert "holds a run with another configuration; choose another --out, or pass --overwrite" in (
        " ".join(other.output.split())
    )
    assert invoke(*SPY_RUN, "-p", "fast=5", "--out", out, "--overwrite").exit_code == 0


def test_train_and_test_modes(tmp_path):
    spy, _ = load_sample("SPY", "1d")
    common = {"data": spy, "params": {"fast": 20, "slow": 100}, "direction": "both"}
    full = ivybt.backtest("sma_cross", **common, fill="close")
    test = ivybt.backtest("sma_cross", **common, fill="close", train_split=0.7, run_mode="test")
    train = ivybt.backtest("sma_cross", **common, fill="close", train_split=0.7, run_mode="train")
    split = int(len(spy) * 0.7)
    assert test.split["split_index"] == split
    assert test.split["split_time"] == spy.index[split].isoformat()
    assert test.equity.index[0] == spy.index[split] and test.equity.index[-1] == spy.index[-1]
    assert train.equity.index[-1] == spy.index[split - 1]
    # test mode warms up on the training history: the same positions as the full run from the
    # first test bar on (fill at the close, so the first bar already holds the full run's side)
    np.testing.assert_array_equal(
        np.sign(test.equity["units"].to_numpy()), np.sign(full.equity["units"].to_numpy()[split:])
    )
    # train mode never sees the test bars: identical to a run on the training bars alone
    alone = ivybt.backtest("sma_cross", **{**common, "data": spy.iloc[:split]}, fill="close")
    assert train.metrics == alone.metrics
    out = tmp_path / "test-run"
    written = invoke(*SPY_RUN, "--train-split", "0.7", "--run-mode", "test", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert "test part of a 0.7 split at 2014-06-03" in written.output
    assert json.loads((out / "metrics.json").read_text())["split"]["split_index"] == split


def test_strategies_lists_every_builtin_with_parameters():
    result = invoke("strategies")
    assert result.exit_code == 0
    for name, strategy in BUILTIN.items():
        assert f"{name}: {strategy.summary}" in result.output
        for param in strategy.params:
            assert f"  {param.name} " in result.output
    assert "constraints: fast < slow" in result.output


def test_api_rejects_bad_calls():
    with pytest.raises(ConfigError, match="give exactly one of symbol= "):
        ivybt.backtest("sma_cross")
    with pytest.raises(
        ConfigError, match=r"execution.fill: Input should be 'next_open' or 'close'"
    ):
        ivybt.backtest("sma_cross", symbol="SPY", source="sample", fill="open")


def test_every_command_has_help_with_examples():
    import click

    for name, command in cli.all_commands().items():
        paths = [[name]]
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.commands]
        for path in paths:
            result = invoke(*path, "--help")
            assert result.exit_code == 0 and "Examples:" in result.output, path


def test_readme_command_a_runs_a_walk_forward(tmp_path):
    """The ivybt part of README command (a), run as written (its --out moved to tmp_path)."""
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    args = shlex.split(first_block.split(".venv/bin/ivybt ", 1)[1])
    assert args[0] == "walkforward"
    args[args.index("--out") + 1] = str(tmp_path / "readme")
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert "stitched OOS sharpe" in result.output
    assert (tmp_path / "readme" / "report.html").exists()
    assert list((tmp_path / "readme").glob("surface-oos-*.html"))


def test_a_run_that_fails_while_writing_says_so_in_its_manifest(tmp_path, monkeypatch):
    import ivybt.report

    def broken(**_: object) -> str:
        raise RuntimeError("report failed")

    monkeypatch.setattr(ivybt.report, "backtest_report_html", broken)
    result = ivybt.backtest("sma_cross", symbol="SPY", source="sample", start="2019-01-01")
    with pytest.raises(RuntimeError, match="report failed"):
        result.write(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["finished"]
