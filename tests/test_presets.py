"""Presets (#17): what a run chose, saved, checked when loaded, and backtested again.

Every preset is saved from a run folder written on bundled data, offline, and its backtest
(`ivybt backtest --preset`, `ivybt.backtest(preset=...)`) must give the run's own numbers on
the same data: a backtest's metrics, a grid's best row, a search's best trial, a walk-forward
fold's out-of-sample metrics.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.presets import (
    PRESET_SCHEMA_VERSION,
    content_hash,
    delete_preset,
    list_presets,
    load_preset,
    preset_path,
    save_preset,
)

DATA = {"source": "sample", "start": "2012-01-01", "end": "2016-01-01"}


def _metrics(values: dict[str, float]) -> dict[str, float]:
    return {name: values[name] for name in METRIC_NAMES}


def _same(a: dict[str, float], b: dict[str, float]) -> None:
    """Metric dicts equal: bit for bit, NaN (undefined) where the other is NaN or None."""
    for name in METRIC_NAMES:
        x, y = a[name], b[name]
        if x is None or y is None or x != x or y != y:
            assert (x is None or x != x) and (y is None or y != y), name
        else:
            assert x == y, (name, x, y)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A backtest, a grid (exits varied), a search (one parameter fixed) and a walk-forward
    run on bundled SPY."""
    root = tmp_path_factory.mktemp("preset-runs")
    folders = {name: root / name for name in ("backtest", "grid", "optimize", "walkforward")}
    ivybt.backtest("sma_cross", symbol="SPY", params={"fast": 10, "slow": 40}, sl=0.05,
                   out=folders["backtest"], **DATA)  # fmt: skip
    ivybt.grid("sma_cross", symbol="SPY", params={"fast": "5:20:5", "slow": "30:60:10",
               "sl": "0,0.04"}, out=folders["grid"], **DATA)  # fmt: skip
    from ivybt.runs.optimize import write_search

    search = ivybt.optimize("sma_cross", symbol="SPY", params={"fast": "10",  # fixed
                            "slow": "30:90:5"}, trials=6, seed=3,
                            storage=f"{root}/optuna.journal", **DATA)  # fmt: skip
    write_search(search, folders["optimize"])
    ivybt.walk_forward("sma_cross", symbol="SPY", params={"fast": "5:20:5", "slow": "30:60:10"},
                       in_sample="2y", out_of_sample="6M", out=folders["walkforward"],
                       **DATA)  # fmt: skip
    return folders


def _metrics_file(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_backtest_preset_reruns_the_run(runs: dict[str, Path]) -> None:
    saved = save_preset(runs["backtest"], "bt")
    assert saved.params == {"fast": 10, "slow": 40}
    assert saved.config.execution.sl == 0.05 and saved.config.data.start == "2012-01-01"
    again = ivybt.backtest(preset="bt")
    _same(_metrics(again.metrics), _metrics_file(runs["backtest"])["metrics"])
    record = saved.document["fitted"]["data"][0]
    assert record["symbol"] == "SPY" and record["sha256"] == again.data["sha256"]


def test_grid_preset_is_the_best_row_exits_included(runs: dict[str, Path]) -> None:
    best = _metrics_file(runs["grid"])["best"]
    saved = save_preset(runs["grid"], "grid")
    assert saved.params == best["params"]
    sl = best["exits"]["sl"]
    assert saved.config.execution.sl == (None if sl == 0 else sl)
    _same(_metrics(ivybt.backtest(preset="grid").metrics), best["metrics"])
    assert set(saved.document["metrics"]) == {"best", "evidence"}


def test_search_preset_is_the_best_trial(runs: dict[str, Path]) -> None:
    best = _metrics_file(runs["optimize"])["best"][0]
    assert "fast" not in best["params"]  # a fixed parameter is not searched
    saved = save_preset(runs["optimize"], "search")
    assert saved.params == {"fast": 10, **best["params"]}
    assert saved.document["run"]["choice"].startswith(f"trial {best['number']}")
    _same(_metrics(ivybt.backtest(preset="search").metrics), best["metrics"])
    with pytest.raises(ConfigError, match="is not among the best trials"):
        save_preset(runs["optimize"], "other", trial=10_000)
    with pytest.raises(ConfigError, match="--trial picks a trial of a search"):
        save_preset(runs["grid"], "other", trial=1)


def test_walkforward_preset_is_the_last_folds_choice_and_replays_its_oos(
    runs: dict[str, Path],
) -> None:
    import pandas as pd

    folds = pd.read_parquet(runs["walkforward"] / "folds.parquet")
    last = folds.iloc[-1]
    saved = save_preset(runs["walkforward"], "wf")
    assert saved.params == {"fast": int(last["param_fast"]), "slow": int(last["param_slow"])}
    fold = saved.document["fitted"]["fold"]
    assert fold["fold"] == int(last["fold"])
    assert fold["oos_first"] == f"{last['oos_first']:%Y-%m-%d}"
    assert fold["is_last"] == f"{last['is_last']:%Y-%m-%d}"
    replay = ivybt.backtest(preset="wf", **fold["replay"])
    assert replay.equity.index[0] == last["oos_first"]
    assert replay.equity.index[-1] == last["oos_last"]
    _same(_metrics(replay.metrics), {m: last[f"oos_{m}"] for m in METRIC_NAMES})
    assert saved.document["metrics"]["fold_oos"]["sharpe"] == pytest.approx(last["oos_sharpe"])


def test_cli_backtest_preset_equals_the_run_and_options_override(runs: dict[str, Path]) -> None:
    save_preset(runs["grid"], "grid")
    result = CliRunner().invoke(cli, ["backtest", "--preset", "grid", "--out", "results/again"])
    assert result.exit_code == 0, result.output
    again = json.loads(Path("results/again/metrics.json").read_text())
    _same(again["metrics"], _metrics_file(runs["grid"])["best"]["metrics"])
    manifest = json.loads(Path("results/again/manifest.json").read_text())
    assert manifest["command_line"][:3] == ["ivybt", "backtest", "--preset"]
    later = CliRunner().invoke(cli, ["backtest", "--preset", "grid", "--start", "2014-01-01",
                                     "--commission", "0", "--out", "results/later"])  # fmt: skip
    assert later.exit_code == 0, later.output
    config = json.loads(Path("results/later/manifest.json").read_text())["config"]
    assert config["data"]["start"] == "2014-01-01" and config["execution"]["commission"] == 0
    assert config["strategy"]["params"] == load_preset("grid").params
    both = CliRunner().invoke(cli, ["backtest", "sma_cross", "--preset", "grid"])
    assert both.exit_code == 2 and "names its strategy" in both.output
    assert len(both.output.strip().splitlines()) == 1


def test_preset_file_holds_a_schema_version_and_content_hash(runs: dict[str, Path]) -> None:
    saved = save_preset(runs["backtest"], "bt")
    document = json.loads(saved.path.read_text())
    assert document["schema_version"] == PRESET_SCHEMA_VERSION
    assert document["content_sha256"] == content_hash(document)
    assert document["strategy"] == {
        "name": "sma_cross",
        "params": [{"name": "fast", "kind": "int"}, {"name": "slow", "kind": "int"}],
    }
    assert set(document["config"]) == {"data", "strategy", "execution", "portfolio", "split"}
    assert document["run"]["folder"] == str(runs["backtest"].resolve())
    assert not list(saved.path.parent.glob(".*.tmp"))  # written atomically


def _rewrite(path: Path, change: object) -> None:
    document = json.loads(path.read_text())
    change(document)  # type: ignore[operator]
    path.write_text(json.dumps(document, indent=2))


def test_a_newer_schema_is_refused_in_one_line(runs: dict[str, Path]) -> None:
    saved = save_preset(runs["backtest"], "bt")
    _rewrite(saved.path, lambda d: d.update(schema_version=PRESET_SCHEMA_VERSION + 1))
    with pytest.raises(ConfigError, match="saved by a newer IvyBT"):
        load_preset("bt")
    result = CliRunner().invoke(cli, ["signals", "bt", "--source", "sample"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "newer IvyBT (preset schema 2" in result.output


def test_an_edited_preset_fails_its_content_check(runs: dict[str, Path]) -> None:
    saved = save_preset(runs["backtest"], "bt")
    _rewrite(saved.path, lambda d: d["config"]["strategy"]["params"].update(fast=12))
    with pytest.raises(ConfigError, match="fails its content check"):
        load_preset("bt")
    result = CliRunner().invoke(cli, ["backtest", "--preset", "bt"])
    assert result.exit_code == 2 and "edited or damaged" in result.output
    _rewrite(saved.path, lambda d: None)  # still edited: the hash is of the content
    saved.path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read as JSON"):
        load_preset("bt")


PLUGIN = """
from ivybt.kernels.signals import cross_signal_nb
from ivybt.strategies import Indicator, Param, Strategy


class Cross(Strategy):
    name = "plugin_cross"
    summary = "Two moving averages crossing."
    params = (Param("fast", int, 5, 2, 50, minimum=1), {slow})
    constraints = ()
    signal_kernel = cross_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("sma", (p["fast"],)), Indicator("sma", (int(p["{slow_name}"]),)))
"""


def _plugin(folder: Path, slow: str, slow_name: str = "slow") -> None:
    text = PLUGIN.replace("{slow}", slow).replace("{slow_name}", slow_name)
    (folder / "preset_plugin.py").write_text(textwrap.dedent(text))
    sys.modules.pop("preset_plugin", None)  # import the file as it is now


def test_a_changed_plugin_strategy_is_refused_in_one_line(tmp_path: Path) -> None:
    _plugin(tmp_path, 'Param("slow", int, 30, 5, 200, minimum=2)')
    try:
        ivybt.backtest("preset_plugin:Cross", symbol="SPY", params={"fast": 5, "slow": 30},
                       out=tmp_path / "plugin-run", **DATA)  # fmt: skip
        save_preset(tmp_path / "plugin-run", "plug")
        assert load_preset("plug").params == {"fast": 5, "slow": 30}
        _plugin(tmp_path, 'Param("slow", float, 30.0, 5.0, 200.0, minimum=2.0)')
        changed = (
            r"slow \(int\), but preset_plugin:Cross now declares fast \(int\), slow \(float\)"
        )
        with pytest.raises(ConfigError, match=changed):
            load_preset("plug")
        _plugin(tmp_path, 'Param("long", int, 30, 5, 200, minimum=2)', slow_name="long")
        result = CliRunner().invoke(cli, ["signals", "plug", "--source", "sample"])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "the strategy changed" in result.output
        listed = list_presets()
        assert listed.set_index("name").loc["plug", "status"] == "strategy changed"
    finally:
        sys.modules.pop("preset_plugin", None)


def test_save_refusals(runs: dict[str, Path], tmp_path: Path) -> None:
    save_preset(runs["backtest"], "bt")
    with pytest.raises(ConfigError, match="already exists"):
        save_preset(runs["backtest"], "bt")
    save_preset(runs["grid"], "bt", overwrite=True)
    assert load_preset("bt").document["run"]["command"] == "grid"
    with pytest.raises(ConfigError, match="a preset name is"):
        save_preset(runs["backtest"], "../escape")
    with pytest.raises(ConfigError, match="holds no IvyBT run"):
        save_preset(tmp_path, "nothing")
    with pytest.raises(ConfigError, match=r"no preset named 'bt-' .*did you mean 'bt'"):
        load_preset("bt-")


def test_preset_list_show_delete_cli(runs: dict[str, Path]) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["preset", "list"])
    assert empty.exit_code == 0 and "no presets in presets" in empty.output
    saved = runner.invoke(cli, ["preset", "save", str(runs["walkforward"]), "--name", "wf"])
    assert saved.exit_code == 0, saved.output
    assert "the last fold's choice" in saved.output and "wrote presets/wf.json" in saved.output
    runner.invoke(cli, ["preset", "save", str(runs["grid"]), "--name", "grid"])
    listed = runner.invoke(cli, ["preset", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split()[:3] == ["name", "strategy", "params"]
    assert any(line.split()[0] == "grid" and line.split()[-1] == "ok" for line in lines[1:3])
    assert "2 preset(s) in presets" in listed.output
    shown = runner.invoke(cli, ["preset", "show", "wf"])
    assert shown.exit_code == 0
    assert "fold" in shown.output and "its OOS again: ivybt backtest --preset wf" in shown.output
    raw = runner.invoke(cli, ["preset", "show", "wf", "--json"])
    assert json.loads(raw.output)["name"] == "wf"
    deleted = runner.invoke(cli, ["preset", "delete", "wf"])
    assert deleted.exit_code == 0 and not preset_path("wf").exists()
    missing = runner.invoke(cli, ["preset", "delete", "wf"])
    assert missing.exit_code == 2 and "no preset named 'wf'" in missing.output
    assert delete_preset("grid") == preset_path("grid")


def test_presets_dir_option_and_environment(runs: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    result = CliRunner().invoke(cli, ["preset", "save", str(runs["backtest"]), "--name", "bt",
                                      "--presets-dir", "elsewhere"])  # fmt: skip
    assert result.exit_code == 0 and (tmp_path / "elsewhere" / "bt.json").exists()
    assert load_preset("bt", presets_dir="elsewhere").params == {"fast": 10, "slow": 40}
    monkeypatch.setenv("IVYBT_PRESETS_DIR", str(tmp_path / "elsewhere"))
    assert list(list_presets()["name"]) == ["bt"]
    monkeypatch.delenv("IVYBT_PRESETS_DIR")
    from ivybt import _paths

    assert _paths.presets_dir().parts[-2:] == ("ivybt", "presets")  # the per-user default


def test_a_chosen_universe_is_kept_as_its_symbols(tmp_path: Path) -> None:
    with pytest.warns(ivybt.errors.InSampleWarning):
        ivybt.backtest("sma_cross", symbols="SPY,MSFT,AAPL", params={"fast": 10, "slow": 40},
                       portfolio={"select_universe": "top:2"}, out=tmp_path / "chosen",
                       **DATA)  # fmt: skip
    chosen = _metrics_file(tmp_path / "chosen")["universe_selection"]["symbols"]
    saved = save_preset(tmp_path / "chosen", "chosen")
    assert list(saved.symbols) == [s for s in ("SPY", "MSFT", "AAPL") if s in chosen]
    assert saved.config.portfolio.select_universe is None
