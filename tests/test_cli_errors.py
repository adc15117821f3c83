"""What the command line says when something is wrong (issue #13 points 15, 17, 18, 22, 28).

Exit 2 for what the user typed or wrote (options, specs, names, config files, dates, windows,
folders of the wrong kind, plug-ins that cannot be imported), 1 for data and runtime errors
(bars that cannot be loaded, a strategy whose code fails while running, a full disk), each one
line naming the problem and the fix; repeated single-valued options refused; plug-ins import
from the current folder; run folders checked before any work.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner, Result

import ivybt
from ivybt.cli import IvyBTGroup, cli
from ivybt.errors import ConfigError, IgnoredSettingsWarning

ROOT = Path(__file__).resolve().parents[1]
SPY = ["-s", "SPY", "--source", "sample", "--start", "2016-01-01"]
GRID = ["grid", "sma_cross", *SPY, "-p", "fast=5:10", "-p", "slow=20,30"]
KELTNER = (
    (ROOT / "docs" / "strategies.md")
    .read_text()
    .split("Save it as `my_strategies.py`:\n\n```python\n", 1)[1]
    .split("```", 1)[0]
)  # the worked example of docs/strategies.md


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_line_error(result: Result, code: int) -> str:
    """The one `Error:` line of a failed command (warnings aside), after checking its status."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return " ".join(lines[0].split())


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A spy on the bar loader every run command goes through: what it was asked to load."""
    loaded: list[str] = []

    def spy(symbol: str, *args: object, **kwargs: object) -> None:
        loaded.append(symbol)
        raise AssertionError("data was loaded before the run folder was checked")

    monkeypatch.setattr("ivybt.engine.inputs.load_series", spy)
    return loaded


# ---- point 17: the exit status says whose fault it is ----------------------------------------


def _files(folder: Path) -> None:
    (folder / "bad.yaml").write_text("data: {symbol: SPY\nstrategy: x\n", encoding="utf-8")
    (folder / "section.yaml").write_text("dta: {symbol: SPY}\n", encoding="utf-8")
    (folder / "field.yaml").write_text(
        "data: {symbol: SPY, sorce: sample}\nstrategy: {name: sma_cross}\n", encoding="utf-8"
    )
    (folder / "a-file").write_text("not a folder\n", encoding="utf-8")


INPUT_ERRORS = [  # (arguments, a fragment of the message): all exit 2
    (["backtest", "sma_cross", *SPY, "-p", "fast=10:5"], "fast of sma_cross must be a number"),
    (["grid", "sma_cross", *SPY, "-p", "fast=10:5"], "must have start <= stop"),
    (["grid", "sma_cross", *SPY, "-p", "fast"], "expected name=value"),
    (["grid", "sma_cross", *SPY, "-p", "fast=5:10:1:2"], "must be start:stop or start:stop:step"),
    (["backtest", "sma_crss", *SPY], "unknown strategy 'sma_crss' (did you mean 'sma_cross'?)"),
    (["backtest", "sma_cross", *SPY, "-p", "fsat=5"], "unknown parameter 'fsat'"),
    ([*GRID, "--objective", "sharp"], "unknown objective 'sharp'"),
    (["optimize", "sma_cross", *SPY, "-p", "fast=5:9", "--objective", "sharp"],
     "unknown objective 'sharp'"),
    (["optimize", "sma_cross", *SPY, "-p", "fast=5:9", "--sampler", "foo"],
     "Invalid value for '--sampler'"),
    ([*GRID, "--constraint", "foo < 3"], "names 'foo', which is not a parameter of sma_cross"),
    ([*GRID, "--constraint", "fast <<"], "is not an expression"),
    (["grid", "--config", "bad.yaml"], "bad.yaml, line 2: not valid YAML"),
    (["grid", "--config", "section.yaml"], "unknown section 'dta' (did you mean 'data'?)"),
    (["backtest", "--config", "field.yaml"], "data.sorce: Extra inputs are not permitted"),
    (["grid", "--config", "missing.yaml"], "cannot read config file missing.yaml"),
    (["backtest", "sma_cross", *SPY, "--end", "2019-02-30"], "Invalid value for '--end'"),
    (["backtest", "sma_cross", *SPY, "--end", "2015-01-01"], "start must be before end"),
    (["backtest", "sma_cross", "-s", "SPY", "--source", "sample", "--start", "1500-01-01"],
     "start must lie between 1677-09-22 and 2262-04-11"),
    (["walkforward", "sma_cross", *SPY, "-p", "fast=5:9", "--is", "0", "--oos", "1y"],
     "--is must be at least 2 bars"),
    (["walkforward", "sma_cross", *SPY, "-p", "fast=5:9", "--is", "3x", "--oos", "1y"],
     "--is must be a number of bars"),
    (["walkforward", "sma_cross", *SPY, "-p", "fast=5:9", "--is", "30y", "--oos", "1y"],
     "no walk-forward fold fits"),
    (["backtest", "sma_cross", *SPY[:5], "2020-01-01", "-p", "slow=400"],
     "needs at least 401 bars"),  # the windows the user chose do not fit the range chosen
    (["montecarlo", "nothing-here"], "no run folder at nothing-here"),
    (["surface", "grid-run"], "is a 'grid' run, not a walk-forward one"),
    (["backtest", "sma_cross", *SPY, "--out", "a-file"], "Invalid value for '--out'"),
    (["backtest", "sma_cross", *SPY, "--out", "a-file/run"], "a-file is a file, not a folder"),
    (["backtest", "sma_cross", *SPY, "--out", ""], "give a folder path"),
    (["backtest", "no_such_module:Thing", *SPY], "cannot import module 'no_such_module'"),
    (["backtest", "sma_cross", *SPY, "-s", "AAPL"], "or trade them in one account"),
]  # fmt: skip
RUNTIME_ERRORS = [  # (arguments, a fragment): data and runtime errors, exit 1
    (["backtest", "sma_cross", "-s", "NOPE", "--source", "sample"], "no bundled sample for NOPE"),
    (["backtest", "sma_cross", "-s", "SPY", "--source", "cache"], "SPY 1d is not cached"),
    (["backtest", "sma_cross", *SPY[:4], "--start", "2030-01-01"], "no SPY 1d bars in"),
]  # fmt: skip


def test_every_kind_of_input_error_exits_2_and_data_errors_exit_1(tmp_path: Path) -> None:
    _files(tmp_path)
    grid_run = invoke(*GRID, "--out", "grid-run")
    assert grid_run.exit_code == 0, grid_run.output
    for args, fragment in INPUT_ERRORS:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output
    for args, fragment in RUNTIME_ERRORS:
        assert fragment in one_line_error(invoke(*args), 1), args


# ---- point 15: an option given twice ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "sma_cross", *SPY, "-s", "AAPL"],
         "--symbol is given 2 times (SPY, AAPL); give one --symbol, or trade them in one "
         "account with --symbols SPY,AAPL"),
        (["grid", "sma_cross", "--symbol=SPY", "-sAAPL", "-p", "fast=5:9"],
         "--symbol is given 2 times (SPY, AAPL); give one --symbol, or trade them in one "
         "account with --symbols SPY,AAPL"),
        (["optimize", "sma_cross", *SPY, "-p", "fast=5:9", "-s", "MSFT"],
         "or trade them in one account with --symbols SPY,MSFT"),
        (["walkforward", "sma_cross", *SPY, "-s", "IBM", "--is", "2y", "--oos", "1y"],
         "or trade them in one account"),
        (["check-lookahead", "sma_cross", *SPY, "-s", "IBM"], "or trade them in one account"),
        ([*GRID, "--interval", "1d", "-i", "1h"],
         "--interval is given 2 times (1d, 1h); give it once; only -p/--param, --constraint "
         "may repeat"),
        (["backtest", "sma_cross", *SPY, "--raw", "--adjusted"], "--adjusted/--raw is given 2 "
         "times; give it once"),
        (["--cache-dir", "a", "--cache-dir", "b", "info"], "--cache-dir is given 2 times (a, b)"),
        (["data", "show", "SPY", "-n", "1", "--rows", "2"], "--rows is given 2 times (1, 2)"),
    ],
)  # fmt: skip
def test_a_single_valued_option_given_twice_is_refused(
    args: list[str], message: str, no_data: list[str]
) -> None:
    assert message in one_line_error(invoke(*args), 2)
    assert no_data == []


def test_repeatable_options_may_repeat(tmp_path: Path) -> None:
    result = invoke(
        "-v", "-v", *GRID, "-p", "slow=20:40:10", "--constraint", "fast < 9",
        "--constraint", "slow > fast", "--out", str(tmp_path / "g"),
    )  # fmt: skip
    assert result.exit_code == 2  # -p slow twice is IvyBT's own message, not Click's last-wins
    assert "parameter 'slow' is given twice" in result.output
    result = invoke(
        "-v", "-v", *GRID, "--constraint", "fast < 9", "--constraint", "slow > fast",
        "--out", str(tmp_path / "g"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = invoke(
        "optimize", "sma_cross", *SPY, "-p", "fast=5:9", "--objective", "sharpe",
        "--objective", "calmar", "--trials", "2", "--batch-size", "2",
        "--storage", f"journal:///{tmp_path}/j.log", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert invoke("backtest", "sma_cross", *SPY, "-s", "SPY", "--help").exit_code == 0


def test_backtest_with_a_grid_file_says_what_it_ignores_and_runs(tmp_path: Path) -> None:
    (tmp_path / "grid.yaml").write_text(
        "data: {symbol: SPY, source: sample, start: 2016-01-01}\n"
        "strategy: {name: sma_cross, space: {fast: '5:25:5', slow: '20:80:15'}}\n"
        "study: {objective: calmar}\n",
        encoding="utf-8",
    )
    result = invoke("backtest", "--config", "grid.yaml", "-p", "fast=7", "--out", "b")
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert (
        "warning: config file grid.yaml describes a study; a backtest runs one parameter set, "
        "so it ignores strategy.space (fast, slow) and the study section and runs sma_cross "
        "with fast=7, slow=50 (strategy.params and -p, the rest at their defaults)"
    ) in warning
    strategy = json.loads((tmp_path / "b" / "manifest.json").read_text())["config"]["strategy"]
    assert strategy["params"] == {"fast": 7, "slow": 50} and strategy["space"] == {}
    with pytest.warns(IgnoredSettingsWarning, match="ignores strategy.space"):
        ivybt.backtest(config=tmp_path / "grid.yaml")


def test_a_study_takes_a_backtests_parameters_as_fixed_values(tmp_path: Path) -> None:
    done = invoke("backtest", "sma_cross", *SPY, "-p", "fast=20", "-p", "slow=100", "--out", "b")
    assert done.exit_code == 0, done.output
    result = invoke("grid", "--config", "b/manifest.json", "-p", "fast=5:30:5", "--out", "g")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    config = json.loads((tmp_path / "g" / "manifest.json").read_text())["config"]
    assert config["strategy"]["space"] == {"fast": "5:30:5", "slow": "100"}
    assert config["strategy"]["params"] == {}
    table = pd.read_parquet(tmp_path / "g" / "grid.parquet")
    assert set(table["param_slow"]) == {100} and len(table) == 6


# ---- point 18: plug-ins that fail, each one line with the fix ---------------------------------


def _plugin(folder: Path, name: str, code: str) -> str:
    (folder / f"{name}.py").write_text(code, encoding="utf-8")
    return name


def _variant(old: str, new: str) -> str:
    assert old in KELTNER
    return KELTNER.replace(old, new, 1)


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[str]:
    """A prefix for plug-in module names unique to this test, removed from sys.modules after."""
    prefix = f"plug_{tmp_path.name.replace('-', '_')}"
    yield prefix
    for name in [name for name in sys.modules if name.startswith(prefix)]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("from ivybt.strategies import Strategy\ndef f(:\n    pass\n",
         "{m}.py, line 2: invalid syntax; fix the syntax there"),
        ("import os\nvalue = 1\nraise RuntimeError('set MY_API_KEY first')\n",
         "{m}.py, line 3, raised RuntimeError: set MY_API_KEY first; fix the module"),
        ("import talib_is_not_installed\n",
         "{m}.py, line 1, raised ModuleNotFoundError: No module named 'talib_is_not_installed'; "
         "install 'talib_is_not_installed' or fix the import"),
        (KELTNER.split("class KeltnerBreakout")[0]
         + "class KeltnerBreakout(Strategy):\n    name = 'half'\n    params = ()\n",
         "{m}.py, line 27, raised TypeError: strategy class KeltnerBreakout must define summary, "
         "signal_kernel, indicators; see docs/strategies.md"),
        (_variant("@njit(cache=True)\n", ""),
         "raised TypeError: strategy class KeltnerBreakout: signal_kernel must be a Numba "
         "function (decorate it with @njit(cache=True)), got 'keltner_breakout_signal_nb'"),
        (_variant("    params = (\n", '    params = (\n        "window",\n'),
         "raised TypeError: strategy class KeltnerBreakout: params must be a tuple of "
         "ivybt.strategies.Param, got item 0"),
        (_variant("    @classmethod\n", ""),
         "indicators must be a @classmethod taking the parameters"),
        (_variant('name = "keltner_breakout"', "name = 'keltner breakout'"),
         "name must be an identifier such as 'my_breakout', got 'keltner breakout'"),
        (KELTNER, "module '{m}' has no 'Keltner' (did you mean 'KeltnerBreakout'?)"),
    ],
)  # fmt: skip
def test_a_plugin_that_cannot_be_imported_is_one_line_exit_2(
    tmp_path: Path, plugins: str, code: str, message: str, no_data: list[str]
) -> None:
    module = _plugin(tmp_path, f"{plugins}_m", code)
    attribute = "Keltner" if code == KELTNER else "KeltnerBreakout"
    for command in (["backtest", *SPY], ["strategies"]):
        result = invoke(command[0], f"{module}:{attribute}", *command[1:])
        line = one_line_error(result, 2)
        assert message.format(m=module) in line
        assert f"strategy '{module}:{attribute}'" in line
    assert no_data == []


def test_the_base_class_itself_is_refused() -> None:
    for args in (["strategies", "ivybt.strategies:Strategy"],
                 ["backtest", "ivybt.strategies.base:Strategy", *SPY]):  # fmt: skip
        assert "is IvyBT's base class; give your subclass of it" in one_line_error(
            invoke(*args), 2
        )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('Indicator("ema", (p["window"],)),', '"ema",',
         "strategy keltner_breakout: indicators() must return a tuple of "
         "ivybt.strategies.Indicator, one per signal-kernel slot, but returned item 1 'ema' "
         "(a str)"),
        ("        return (\n", "        return 42 or (\n",
         "indicators() must return a tuple of ivybt.strategies.Indicator, one per signal-kernel "
         "slot, but returned a int (42)"),
        ("    def indicators(cls, p):\n", "    def indicators(cls, p):\n        p['windw']\n",
         "multiplier=2.0): KeyError: 'windw'; fix {m}.KeltnerBreakout.indicators"),
        ("    side = 0\n", "    side = 0\n    if close.shape[0] > 10:\n"
         "        raise ValueError('no signal without volume')\n",
         "strategy keltner_breakout: its signal kernel keltner_breakout_signal_nb raised "
         "ValueError: no signal without volume; fix {m}.keltner_breakout_signal_nb"),
        ("    multiplier = params[1]\n", "    multiplier = params[1] / (params[0] - params[0])\n",
         "its signal kernel keltner_breakout_signal_nb raised ZeroDivisionError: division by "
         "zero"),
        ("    side = 0\n", "    side = 'flat' + 1\n",
         "its signal kernel keltner_breakout_signal_nb does not compile with Numba ({m}.py, "
         "line 12: No implementation of function"),
    ],
)  # fmt: skip
def test_a_plugin_that_fails_while_running_is_one_line_exit_1(
    tmp_path: Path, plugins: str, old: str, new: str, message: str
) -> None:
    module = _plugin(tmp_path, f"{plugins}_r", _variant(old, new))
    for args in (
        ["backtest", f"{module}:KeltnerBreakout", *SPY],
        ["grid", f"{module}:KeltnerBreakout", *SPY, "-p", "window=10:12"],
        ["check-lookahead", f"{module}:KeltnerBreakout", *SPY, "--cuts", "2"],
    ):
        assert message.format(m=module) in one_line_error(invoke(*args), 1), args
    assert not (tmp_path / "results").exists()


def test_the_current_folder_is_importable_for_the_console_script(tmp_path: Path) -> None:
    """`ivybt` (a console script, not `python -m`) finds module:Name in the current folder."""
    script = shutil.which("ivybt", path=str(Path(sys.executable).parent))
    assert script is not None
    (tmp_path / "my_strategies.py").write_text(KELTNER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": ""}
    listed = subprocess.run(
        [script, "strategies", "my_strategies:KeltnerBreakout"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("keltner_breakout: Long above the upper Keltner band")
    run = subprocess.run(
        [script, "backtest", "my_strategies:KeltnerBreakout", *SPY, "-p", "window=30",
         "--out", "run"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "metrics.json").exists()


def test_the_current_folder_does_not_stay_on_the_path(tmp_path: Path, plugins: str) -> None:
    module = _plugin(tmp_path, f"{plugins}_p", KELTNER)
    before = list(sys.path)
    result = invoke("strategies", f"{module}:KeltnerBreakout")
    assert result.exit_code == 0, result.output
    assert sys.path == before


# ---- point 18: the run folder is checked before any work; a full disk -------------------------


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into, root included (immutable), or skip where impossible."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("cannot make a read-only folder here (root without chattr)")
        yield folder
    finally:
        if made.returncode == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        folder.chmod(0o755)


RUNS = [
    ["backtest", "sma_cross", *SPY],
    GRID,
    ["optimize", "sma_cross", *SPY, "-p", "fast=5:9", "--trials", "2"],
    ["walkforward", "sma_cross", *SPY, "-p", "fast=5:10", "-p", "slow=20,30", "--is", "1y",
     "--oos", "1y"],
]  # fmt: skip


@pytest.mark.parametrize("args", RUNS, ids=lambda args: args[0])
def test_an_unwritable_out_fails_before_any_work(
    args: list[str], read_only: Path, no_data: list[str]
) -> None:
    line = one_line_error(invoke(*args, "--out", str(read_only / "run")), 2)
    assert f"cannot write the run folder {read_only / 'run'}: {read_only}, the folder it " in line
    assert "is not writable" in line and "choose another --out" in line
    assert no_data == []


@pytest.mark.parametrize("args", RUNS, ids=lambda args: args[0])
def test_an_unwritable_results_folder_fails_before_any_work(
    args: list[str], read_only: Path, no_data: list[str]
) -> None:
    line = one_line_error(invoke("--results-dir", str(read_only), *args), 2)
    assert f"cannot write the run folder {read_only}: it is not writable" in line
    assert no_data == []


@pytest.mark.parametrize("args", RUNS, ids=lambda args: args[0])
def test_an_out_under_a_file_fails_before_any_work(
    args: list[str], tmp_path: Path, no_data: list[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    line = one_line_error(invoke(*args, "--out", "notes.txt/run"), 2)
    assert "notes.txt is a file, not a folder" in line
    assert no_data == []


def test_another_configurations_folder_is_refused_before_the_grid_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke(*GRID, "--out", "g").exit_code == 0
    ran: list[int] = []
    monkeypatch.setattr("ivybt.studies.grid.space_indicators", lambda *a: ran.append(1))
    line = one_line_error(invoke(*GRID, "--min-trades", "3", "--out", "g"), 2)
    assert "g holds a run with another configuration" in line
    assert ran == []


def _full_disk(code: int) -> object:
    def write(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_one_line_exit_1_and_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _full_disk(code))
    line = one_line_error(invoke("backtest", "sma_cross", *SPY, "--out", "run"), 1)
    assert line.startswith("Error: the disk is full: no space left while writing run/")
    assert "nothing is half-written" in line and "free space" in line
    assert not [path for path in (tmp_path / "run").iterdir() if path.name.endswith(".tmp")]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed"  # and metrics.json, written before, is whole
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["strategy"] == "sma_cross"


def test_a_full_disk_outside_the_run_folder_writers_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno 28] No space left on device")  # as pyarrow reports it: no errno

    monkeypatch.setattr("ivybt.engine.inputs.load_series", full)
    line = one_line_error(invoke("backtest", "sma_cross", *SPY), 1)
    assert line.startswith("Error: the disk is full: no space left while writing a file;")


def test_a_permission_error_anywhere_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root cause of point 18's unwritable folders: a PermissionError the checks before
    the work could not foresee (a cache file, a storage's lock) is one line, exit 1."""

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/data/cache/SPY_1d.parquet")

    monkeypatch.setattr("ivybt.engine.inputs.load_series", denied)
    line = one_line_error(invoke("backtest", "sma_cross", *SPY), 1)
    assert line.startswith("Error: permission denied on /data/cache/SPY_1d.parquet: IvyBT")


# ---- point 28 ---------------------------------------------------------------------------------


def test_the_manifest_records_the_seed(tmp_path: Path) -> None:
    result = invoke(
        "optimize", "sma_cross", *SPY, "-p", "fast=5:9", "--trials", "2", "--batch-size", "2",
        "--seed", "7", "--storage", f"journal:///{tmp_path}/j.log", "--out", "o",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["seed"] == 7 == manifest["config"]["study"]["seed"]
    assert invoke(*GRID, "--out", "g").exit_code == 0
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["seed"] is None


def test_the_memory_budget_error_suggests_a_budget_that_works() -> None:
    from ivybt.studies.grid import _rows_budget

    with pytest.raises(ConfigError, match=r"give --memory-budget 16 or more$"):
        _rows_budget(2**20, 5_000)  # 1 MB: the least that works is the option's minimum
    n_bars = 3_000_000
    with pytest.raises(ConfigError, match=r"give --memory-budget (\d+) or more") as caught:
        _rows_budget(16 * 2**20, n_bars)
    need = int(str(caught.value).rsplit("--memory-budget ", 1)[1].split()[0])
    assert need > 16 and _rows_budget(need * 2**20, n_bars) >= 8


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    commands = group.all_commands() if isinstance(group, IvyBTGroup) else group.commands
    for name, command in commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=" ".join)
def test_help_names_only_options_the_command_has(path: tuple[str, ...]) -> None:
    command: click.Command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)  # type: ignore[attr-defined]
    has = {opt for param in command.params for opt in getattr(param, "opts", [])}
    shown = " ".join(invoke(*path, "--help").output.split())
    for option in ("--config", "--out", "--seed", "--overwrite", "--storage"):
        if option in shown:
            assert option in has, f"`ivybt {' '.join(path)} --help` mentions {option}"
