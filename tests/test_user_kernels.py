"""A plug-in's signal kernel is checked on every path that runs it (issue #13, point 4): a
target other than -1, 0, +1, a bar never written, an index out of bounds. Each stops the run
with one StrategyError line (CLI exit 1) naming the strategy, its parameters, the bar and the
value; nothing segfaults (`ivybt.engine.user_kernels`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numba import njit

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns
from ivybt.engine.user_kernels import RULE
from ivybt.errors import StrategyError
from ivybt.kernels.grid import first_invalid_target_nb
from ivybt.kernels.signals import cross_signal_nb
from ivybt.runs.lookahead import check_lookahead
from ivybt.strategies import BUILTIN, get_strategy
from ivybt.studies.grid import evaluate_returns, evaluate_space
from ivybt.studies.space import build_space

PLUGINS = """
import sys

from numba import njit

from ivybt.strategies import Indicator, Param, Strategy

helpers = sys.modules[__name__]


@njit(cache=True)
def writes_five_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    average = table[rows[1]]
    for t in range(close.shape[0]):
        out_target[t] = 5 if close[t] > average[t] else 0


@njit
def skips_warmup_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    average = table[rows[1]]
    for t in range(int(params[0]), close.shape[0]):
        out_target[t] = 1 if close[t] > average[t] else 0


@njit
def raises_once_signal_nb(table, rows, params, out_target):
    if params[0] == 7:
        raise ValueError("window 7 is not supported")
    for t in range(out_target.shape[0]):
        out_target[t] = 0


@njit
def writes_past_end_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    for t in range(close.shape[0] + int(params[0])):
        out_target[t] = 0


@njit
def write_nb(out_target, t, value):
    out_target[t] = value


@njit
def helper_past_end_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    for t in range(close.shape[0] + int(params[0])):
        write_nb(out_target, t, 0)


@njit
def module_helper_past_end_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    for t in range(close.shape[0] + int(params[0])):
        helpers.write_nb(out_target, t, 0)


class WritesFive(Strategy):
    name = "writes_five"
    summary = "Long 5x above the average: a target of 5 by mistake."
    params = (Param("window", int, 20, 5, 50, minimum=2),)
    signal_kernel = writes_five_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("price"), Indicator("sma", (p["window"],)))


class SkipsWarmup(WritesFive):
    name = "skips_warmup"
    summary = "Never writes the warm-up bars."
    signal_kernel = skips_warmup_signal_nb


class RaisesOnce(WritesFive):
    name = "raises_once"
    summary = "Raises for window 7."
    signal_kernel = raises_once_signal_nb


class WritesPastEnd(Strategy):
    name = "writes_past_end"
    summary = "Writes `overrun` elements past the end of out_target."
    params = (Param("overrun", int, 1, 0, 10, minimum=0),)
    signal_kernel = writes_past_end_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("price"),)


class HelperPastEnd(WritesPastEnd):
    name = "helper_past_end"
    signal_kernel = helper_past_end_signal_nb


class ModuleHelperPastEnd(WritesPastEnd):
    name = "module_helper_past_end"
    signal_kernel = module_helper_past_end_signal_nb
"""

SPY = ["--symbol", "SPY", "--source", "sample"]
N_SPY = 5241  # bars of the bundled SPY series
RULE_TEXT = "a signal kernel writes -1, 0 or +1 into out_target[t] for every bar t"


@pytest.fixture
def plugins(tmp_path, monkeypatch) -> str:
    (tmp_path / "bad_plugins.py").write_text(PLUGINS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_plugins", raising=False)
    return "bad_plugins"


def line_of(function: str, code: str) -> int:
    """The line of bad_plugins.py holding `code` in `function`."""
    lines = PLUGINS.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(f"def {function}("))
    return next(n for n in range(start, len(lines)) if lines[n].strip() == code) + 1


def one_line_error(result) -> str:
    """The CLI's error: exit status 1, one line (after any progress lines), no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == lines[-1:], result.output
    assert "Traceback" not in result.output
    return lines[-1]


def test_the_rule_is_the_documented_one():
    assert RULE.startswith(RULE_TEXT)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "strategies.md").read_text()
    assert RULE_TEXT in " ".join(docs.split())


# -- a target of 5 -------------------------------------------------------------------------------


def test_backtest_of_a_kernel_writing_5_fails_with_one_line(plugins):
    line = one_line_error(CliRunner().invoke(cli, ["backtest", f"{plugins}:WritesFive", *SPY]))
    assert re.fullmatch(
        r"Error: strategy writes_five with window=20: its signal kernel writes_five_signal_nb "
        r"wrote 5 into out_target\[(\d+)\] \(bar \1 of 5,241, counted from 0\); "
        + re.escape(RULE),
        line,
    ), line


def test_grid_of_a_kernel_writing_5_fails_with_one_line(plugins):
    result = CliRunner().invoke(cli, ["grid", f"{plugins}:WritesFive", *SPY, "-p", "window=5:30"])
    line = one_line_error(result)
    # the first combination in enumeration order, whichever thread met it first
    assert "strategy writes_five with window=5: its signal kernel writes_five_signal_nb " in line
    assert re.search(r"wrote 5 into out_target\[(\d+)\] \(bar \1 of 5,241", line), line
    assert "no valid combination" not in line


def test_every_study_path_checks_the_targets(plugins):
    strategy = get_strategy(f"{plugins}:WritesFive")
    data = {"symbol": "SPY", "source": "sample"}
    message = "its signal kernel writes_five_signal_nb wrote 5 into out_target["
    with pytest.raises(StrategyError, match=re.escape(message)):
        ivybt.optimize(strategy, **data, params={"window": "5:30"}, trials=4, seed=1,
                       storage="study.journal")  # fmt: skip
    with pytest.raises(StrategyError, match=re.escape(message)):
        ivybt.walk_forward(strategy, **data, params={"window": "5:30"}, in_sample="3y",
                           out_of_sample="1y", out="wf")  # fmt: skip
    with pytest.raises(StrategyError, match=re.escape(message)):
        check_lookahead(strategy, **data, cuts=3)
    columns = bar_columns(load_sample("SPY", "1d")[0])
    space = build_space(strategy, {"window": "5:30"})
    with pytest.raises(StrategyError, match=re.escape(message)):  # the evidence's returns
        evaluate_returns(columns, space, ExecutionConfig(), first_bar=100)


def test_renko_bricks_are_named_with_their_bar(plugins):
    strategy = get_strategy(f"{plugins}:WritesFive")
    with pytest.raises(StrategyError) as caught:
        ivybt.backtest(strategy, symbol="SPY", source="sample", bars="renko", renko={"box": 2.0})
    match = re.search(r"out_target\[(\d+)\] \(brick \1 of ([\d,]+), completed at bar ([\d,]+)\)",
                      str(caught.value))  # fmt: skip
    assert match, caught.value
    brick, n_bricks, bar = (int(group.replace(",", "")) for group in match.groups())
    assert brick < n_bricks < N_SPY and brick <= bar < N_SPY


# -- bars never written --------------------------------------------------------------------------


def test_bars_a_kernel_never_wrote_are_an_error(plugins):
    """Before: a backtest read them as flat, a grid as whatever the previous combination left."""
    expected = (
        "strategy skips_warmup with window={}: its signal kernel skips_warmup_signal_nb never "
        f"wrote out_target[0] (bar 0 of 5,241, counted from 0); {RULE}"
    )
    backtest = CliRunner().invoke(cli, ["backtest", f"{plugins}:SkipsWarmup", *SPY])
    assert one_line_error(backtest) == "Error: " + expected.format(20)
    grid = CliRunner().invoke(cli, ["grid", f"{plugins}:SkipsWarmup", *SPY, "-p", "window=5:9"])
    assert one_line_error(grid) == "Error: " + expected.format(5)


# -- exceptions --------------------------------------------------------------------------------


def test_a_kernel_raising_in_one_grid_combination_stops_the_grid(plugins):
    """numba 0.61 loses an exception raised on a prange worker thread (the grid finished with
    that combination's metrics unset) or turns it into a SystemError: it is caught in the
    thread, and the combination rerun alone raises it."""
    strategy = get_strategy(f"{plugins}:RaisesOnce")
    columns = bar_columns(load_sample("SPY", "1d")[0])
    for spec in ("5:12", "7", "12,11,10,9,8,7", "7,20"):  # the bad one first, last, alone...
        space = build_space(strategy, {"window": spec})
        with pytest.raises(StrategyError, match="raised ValueError: window 7 is not supported"):
            evaluate_space(columns, space, ExecutionConfig(), periods_per_year=252.0)
        with pytest.raises(StrategyError, match="raised ValueError: window 7 is not supported"):
            evaluate_returns(columns, space, ExecutionConfig(), first_bar=100)


# -- out of bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["backtest", "grid"])
def test_a_kernel_writing_past_the_end_fails_instead_of_crashing(plugins, command, tmp_path):
    """In a subprocess: before, the write went over the heap and the process died of SIGSEGV
    (exit status 139, no message)."""
    args = ["-p", "overrun=50000000"] if command == "backtest" else ["-p", "overrun=0,50000000"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the plug-in, wherever it runs
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ivybt")), command, f"{plugins}:WritesPastEnd",
         *SPY, *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Error: ")] == lines[-1:], run.stderr
    line = line_of("writes_past_end_signal_nb", "out_target[t] = 0")
    assert lines[-1] == (
        "Error: strategy writes_past_end with overrun=50000000: its signal kernel "
        "writes_past_end_signal_nb indexed outside an array: index 5241 is out of bounds for "
        f"axis 0 with size 5241, at bad_plugins.py line {line}; {RULE}"
    )


def test_helpers_are_checked_too(plugins):
    """A helper named as a global is cloned with bounds checks; one reached as a module
    attribute is not, and its write past the end lands in the guard."""
    helper = get_strategy(f"{plugins}:HelperPastEnd")
    line = line_of("write_nb", "out_target[t] = value")  # the helper's line
    where = f"index 5241 is out of bounds for axis 0 with size 5241, at bad_plugins.py line {line}"
    with pytest.raises(StrategyError, match=re.escape(f"{where}; ")):
        ivybt.backtest(helper, symbol="SPY", source="sample")
    module_helper = get_strategy(f"{plugins}:ModuleHelperPastEnd")
    past_end = (
        "strategy module_helper_past_end with overrun=1: its signal kernel "
        "module_helper_past_end_signal_nb wrote 0 past the end of out_target, at index 5,241 "
        f"(out_target has 5,241 elements); {RULE}"
    )
    with pytest.raises(StrategyError) as caught:
        ivybt.backtest(module_helper, symbol="SPY", source="sample")
    assert str(caught.value) == past_end
    with pytest.raises(StrategyError) as caught:
        ivybt.grid(module_helper, symbol="SPY", source="sample", params={"overrun": "1:3"},
                   evidence=False)  # fmt: skip
    assert str(caught.value) == past_end


# -- what the checks cost nothing in -------------------------------------------------------------


def test_a_checked_user_kernel_gives_the_builtin_numbers_bit_for_bit():
    """A user copy of sma_cross's kernel (run bounds-checked, its targets checked) makes the
    grid, the returns and the backtest of the built-in, which runs unchecked."""
    builtin = BUILTIN["sma_cross"]
    kernel = njit(cross_signal_nb.py_func)  # the same code, not a built-in kernel
    copy = type("UserCross", (builtin,), {"name": "user_cross", "signal_kernel": kernel})
    columns = bar_columns(load_sample("SPY", "1d")[0])
    execution = ExecutionConfig(direction="both")
    spec = {"fast": "5:25:5", "slow": "20:60:10"}
    theirs, ours = build_space(builtin, spec), build_space(copy, spec)
    np.testing.assert_array_equal(
        evaluate_space(columns, ours, execution, periods_per_year=252.0),
        evaluate_space(columns, theirs, execution, periods_per_year=252.0),
    )
    np.testing.assert_array_equal(
        evaluate_returns(columns, ours, execution, first_bar=300),
        evaluate_returns(columns, theirs, execution, first_bar=300),
    )
    params = {"fast": 5, "slow": 30}
    ours_run = simulate_strategy(columns, copy, params, execution, periods_per_year=252.0)
    theirs_run = simulate_strategy(columns, builtin, params, execution, periods_per_year=252.0)
    assert ours_run.metrics == theirs_run.metrics


def test_first_invalid_target_finds_values_unwritten_bars_and_the_guard():
    buffer = np.full(8, -128, dtype=np.int8)
    buffer[:5] = [0, 1, -1, 0, 1]
    assert first_invalid_target_nb(buffer, 5, -128) == -1
    buffer[3] = 2
    assert first_invalid_target_nb(buffer, 5, -128) == 3
    buffer[3] = -2
    assert first_invalid_target_nb(buffer, 5, -128) == 3
    buffer[3] = 0
    buffer[6] = 0  # the guard
    assert first_invalid_target_nb(buffer, 5, -128) == 6
    buffer[1] = -128  # never written, found before the guard
    assert first_invalid_target_nb(buffer, 5, -128) == 1
