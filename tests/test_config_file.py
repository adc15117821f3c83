"""`--config FILE` (YAML or a run's manifest.json) for backtest, grid and optimize, and
`config=` of the Python API: typed options override the file, defaults do not."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli, options
from ivybt.config_file import load_config_file, merge_sections
from ivybt.errors import ConfigError, IgnoredSettingsWarning

GRID_YAML = """\
data:
  symbol: SPY
  source: sample
  start: 2010-01-01
strategy:
  name: sma_cross
  space:
    fast: 5:25:5
    slow: 20:80:15
execution:
  commission: 0.002
study:
  objective: sharpe
"""
REPO = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def manifest_config(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["config"]


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    return write(tmp_path / "grid.yaml", GRID_YAML)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output  # a config file is user input
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_yaml_file_runs_a_grid_and_defaults_do_not_override_it(grid_file, tmp_path):
    result = invoke("grid", "--config", str(grid_file), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "sma_cross: 23 combinations (25 before constraints) on SPY 1d" in result.output
    config = manifest_config(tmp_path / "run")
    assert config["execution"]["commission"] == 0.002  # no --commission typed: the file's
    assert config["execution"]["slippage"] == 0.0005  # neither gives it: the model's default
    assert config["strategy"]["space"] == {"fast": "5:25:5", "slow": "20:80:15"}
    assert config["data"]["start"] == "2010-01-01" and config["study"]["kind"] == "grid"
    assert len(pd.read_parquet(tmp_path / "run" / "grid.parquet")) == 23  # fast < slow


def test_typed_options_override_the_file_field_by_field(grid_file, tmp_path):
    result = invoke(
        "grid", "--config", str(grid_file), "--commission", "0.0005", "-p", "fast=10:20:5",
        "--min-trades", "3", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = manifest_config(tmp_path / "run")
    assert config["execution"]["commission"] == 0.0005
    assert config["strategy"]["space"] == {"fast": "10:20:5", "slow": "20:80:15"}
    assert config["study"]["min_trades"] == 3 and config["study"]["objective"] == "sharpe"
    assert len(pd.read_parquet(tmp_path / "run" / "grid.parquet")) == 14


def test_the_strategy_on_the_command_line_wins(grid_file, tmp_path):
    result = invoke("grid", "ema_cross", "--config", str(grid_file), "--out", str(tmp_path / "e"))
    assert result.exit_code == 0, result.output
    assert manifest_config(tmp_path / "e")["strategy"]["name"] == "ema_cross"


def test_a_manifest_reproduces_the_run(grid_file, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    assert invoke("grid", "--config", str(grid_file), "--out", str(first)).exit_code == 0
    rerun = invoke("grid", "--config", str(first / "manifest.json"), "--out", str(again))
    assert rerun.exit_code == 0, rerun.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "grid.parquet"), pd.read_parquet(again / "grid.parquet")
    )
    assert (first / "metrics.json").read_text() == (again / "metrics.json").read_text()
    one, two = manifest_config(first), manifest_config(again)
    assert one.pop("output") == {"out": str(first)} and two.pop("output") == {"out": str(again)}
    assert one == two
    # without --out, a reproduction goes to a new folder: the manifest's output is not reused
    before = (first / "manifest.json").read_text()
    fresh = invoke("--results-dir", str(tmp_path / "results"), "grid", "--config",
                   str(first / "manifest.json"))  # fmt: skip
    assert fresh.exit_code == 0, fresh.output
    assert (first / "manifest.json").read_text() == before
    (folder,) = (tmp_path / "results").iterdir()
    assert folder.name.startswith("grid-sma_cross-SPY-")


def test_backtest_reads_a_file_and_a_backtest_manifest(tmp_path):
    path = write(tmp_path / "bt.yaml", """\
data: {symbol: SPY, source: sample, start: 2015-01-01}
strategy: {name: sma_cross, params: {fast: 10, slow: 50}}
execution: {direction: both}
""")  # fmt: skip
    result = invoke(
        "backtest", "--config", str(path), "-p", "fast=20", "--out", str(tmp_path / "a")
    )
    assert result.exit_code == 0, result.output
    config = manifest_config(tmp_path / "a")
    assert config["strategy"]["params"] == {"fast": 20, "slow": 50}
    assert config["execution"]["direction"] == "both" and config["study"] is None
    again = invoke("backtest", "--config", str(tmp_path / "a" / "manifest.json"),
                   "--out", str(tmp_path / "b"))  # fmt: skip
    assert again.exit_code == 0, again.output
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in "ab"]
    assert metrics[0] == metrics[1]
    # a grid's file works for a backtest too: the study section is left out
    grid_file = write(tmp_path / "grid.yaml", GRID_YAML)
    from_grid = invoke("backtest", "--config", str(grid_file), "--out", str(tmp_path / "c"))
    assert from_grid.exit_code == 0, from_grid.output
    assert manifest_config(tmp_path / "c")["study"] is None


def test_optimize_reads_a_file_and_typed_options_override_it(grid_file, tmp_path):
    path = write(tmp_path / "search.yaml", GRID_YAML + "  trials: 6\n  seed: 3\n  batch_size: 3\n")
    result = invoke("optimize", "--config", str(path), "--trials", "8", "--objective", "calmar",
                    "--out", str(tmp_path / "s"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "8 trials" in result.output
    study = manifest_config(tmp_path / "s")["study"]
    assert study["kind"] == "search" and study["trials"] == 8 and study["seed"] == 3
    assert study["objective"] == "calmar" and study["objectives"] == ["calmar"]
    assert manifest_config(tmp_path / "s")["execution"]["commission"] == 0.002


def test_the_api_mirrors_the_cli(grid_file, tmp_path):
    cli_run = invoke("grid", "--config", str(grid_file), "--out", str(tmp_path / "cli"))
    assert cli_run.exit_code == 0, cli_run.output
    api = ivybt.grid(config=grid_file)
    pd.testing.assert_frame_equal(api.table, pd.read_parquet(tmp_path / "cli" / "grid.parquet"))
    assert api.config.execution.commission == 0.002
    override = ivybt.grid(config=grid_file, params={"fast": "10:20:5"}, commission=0.001)
    assert dict(override.config.strategy.space) == {"fast": "10:20:5", "slow": "20:80:15"}
    assert override.config.execution.commission == 0.001  # given, even though the default
    with pytest.warns(IgnoredSettingsWarning, match=r"runs sma_cross with fast=10, slow=50"):
        single = ivybt.backtest(config=grid_file, params={"fast": 10}, out=tmp_path / "b")
    assert single.config.execution.commission == 0.002 and single.folder == tmp_path / "b"
    search = ivybt.optimize(config=grid_file, trials=4, batch_size=4, seed=1, results_dir=tmp_path)
    assert len(search.study.trials) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("datta: {symbol: SPY}\n", "unknown section 'datta' (did you mean 'data'?); sections: "),
        ("data:\n  symbol: SPY\n   source: [\n", ", line 3: not valid YAML ("),
        ("- data\n- strategy\n", "holds a list, not a mapping of sections"),
        ("", "holds an empty file, not a mapping of sections"),
        ("execution: 0.001\n", "section 'execution' must be a mapping of fields"),
        ("strategy: {name: sma_cross}\n",
         "give --symbol or data.symbol (data.symbols for a universe) in the config file"),
        ("data: {symbol: SPY}\n", "give STRATEGY or strategy.name in the config file"),
        (GRID_YAML.replace("0.002", "0.5"),
         "execution.commission: Input should be less than 0.1 (got 0.5)"),
        (GRID_YAML.replace("slow: 20", "slw: 20"),
         "unknown parameter 'slw' for sma_cross (did you mean 'slow'?)"),
    ],
)  # fmt: skip
def test_bad_files_get_one_line_and_exit_2(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    line = one_line_error(invoke("grid", "--config", str(path), "--out", str(tmp_path / "x")))
    assert message in line
    assert not (tmp_path / "x").exists()


def test_unreadable_files_and_bad_manifests(tmp_path):
    line = one_line_error(invoke("grid", "--config", str(tmp_path / "nope.yaml")))
    assert "cannot read config file" in line and "No such file or directory" in line
    broken = write(tmp_path / "manifest.json", '{"schema_version": 1,\n "config": }')
    assert ", line 2: not valid JSON (" in one_line_error(invoke("grid", "--config", str(broken)))


def test_without_config_strategy_and_symbol_stay_required():
    missing = invoke("grid", "--symbol", "SPY")
    assert missing.exit_code == 2 and "Missing argument 'STRATEGY'" in missing.output
    missing = invoke("backtest", "sma_cross", "--source", "sample")
    assert missing.exit_code == 2 and "Missing option '--symbol'" in missing.output


@pytest.mark.parametrize("command", ["backtest", "grid", "optimize"])
def test_every_field_the_cli_builds_has_an_option(tmp_path, monkeypatch, command):
    """A field whose option name were misspelled would silently never override the file."""
    asked = []
    real = options._typed

    def recording(ctx, name):
        asked.append((name, {param.name for param in ctx.command.params}))
        return real(ctx, name)

    monkeypatch.setattr(options, "_typed", recording)
    path = write(tmp_path / "bad.yaml", GRID_YAML.replace("0.002", "0.5"))
    one_line_error(invoke(command, "--config", str(path)))
    assert asked and all(name in params for name, params in asked), asked


def test_yaml_keeps_specs_and_dates_as_text(tmp_path):
    path = write(tmp_path / "run.yaml", """\
data: {symbol: SPY, start: 2015-01-01, end: 2016-01-01 14:30}
strategy: {name: macd_cross, space: {fast: 5:25:5, slow: 30, signal: [5, 9, 12]}}
study: null
""")  # fmt: skip
    sections = load_config_file(path)
    assert sections == {
        "data": {"symbol": "SPY", "start": "2015-01-01", "end": "2016-01-01 14:30"},
        "strategy": {"name": "macd_cross",
                     "space": {"fast": "5:25:5", "slow": "30", "signal": "5,9,12"}},
    }  # fmt: skip


def test_merge_replaces_fields_and_merges_parameters():
    file = {"strategy": {"name": "a", "space": {"fast": "1:5", "slow": "9"}}, "data": {"x": 1}}
    given = {"strategy": {"space": {"fast": "2"}}, "execution": {"fill": "close"}}
    assert merge_sections(file, given) == {
        "strategy": {"name": "a", "space": {"fast": "2", "slow": "9"}},
        "data": {"x": 1},
        "execution": {"fill": "close"},
    }
    assert file["strategy"]["space"] == {"fast": "1:5", "slow": "9"}  # inputs left alone


def test_the_bundled_example_configs_are_valid(tmp_path):
    from ivybt.config import build_config

    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name.startswith("batch"):  # a batch file: a list of runs (docs/batch.md)
            from ivybt.runs.batch_file import load_batch

            assert load_batch(path).jobs, path
            continue
        sections = load_config_file(path)
        assert build_config(**sections).strategy.name, path
    readme = (REPO / "README.md").read_text()
    shown = write(tmp_path / "shown.yaml", readme.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert load_config_file(shown) == load_config_file(
        REPO / "configs" / "spy-sma_cross-grid.yaml"
    )


def test_the_api_needs_a_strategy_and_bars_without_a_file(grid_file):
    with pytest.raises(ConfigError, match="give a strategy: a built-in name"):
        ivybt.grid(symbol="SPY")
    with pytest.raises(ConfigError, match="give exactly one of symbol= "):
        ivybt.grid("sma_cross")
    with pytest.raises(ConfigError, match="give exactly one of symbol= "):
        ivybt.backtest(config=grid_file, symbol="SPY", data=pd.DataFrame())


def test_a_study_ignores_and_names_the_fields_of_another_kind(tmp_path):
    """#13 point 15's root cause, for studies: a search's manifest given to `ivybt grid` held
    trials, sampler and seed that the grid silently ignored (and copied to its manifest)."""
    searched = "  objective: sharpe\n  trials: 40\n  sampler: random\n  seed: 3\n"
    search = write(tmp_path / "search.yaml", GRID_YAML.replace("  objective: sharpe\n", searched))
    result = invoke("grid", "--config", str(search), "--out", str(tmp_path / "g"))
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, result.output
    assert (
        "sets study.trials, study.sampler, study.seed, which `ivybt grid` does not use"
        in (warned[0])
    )
    study = json.loads((tmp_path / "g" / "manifest.json").read_text())["config"]["study"]
    assert study["kind"] == "grid" and study["trials"] is None and study["seed"] is None
    with pytest.warns(IgnoredSettingsWarning, match="study.trials"):
        ivybt.grid(config=search)
    plain = invoke("grid", "--config", str(write(tmp_path / "grid.yaml", GRID_YAML)),
                   "--out", str(tmp_path / "g2"))  # fmt: skip
    assert plain.exit_code == 0 and "warning:" not in plain.output
