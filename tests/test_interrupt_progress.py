"""Long work shows progress and stops cleanly on Ctrl-C, saying what was finished."""

from __future__ import annotations

import io

import optuna
import pytest
from click.testing import CliRunner
from rich.console import Console

from ivybt.cli import INTERRUPTED_EXIT, cli
from ivybt.cli.progress import ProgressBar
from ivybt.errors import StudyInterrupted
from ivybt.studies import grid as grid_module
from ivybt.studies import optimize as optimize_module
from ivybt.studies.optimize import optimize
from ivybt.studies.study_storage import INTERRUPTED, open_storage, storage_url_of

COMMON = {"symbol": "SPY", "source": "sample", "start": "2010-01-01"}
SPACE = {"fast": "2:60", "slow": "10:200:5"}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def interrupt_on_call(n: int):
    """A progress callback that presses Ctrl-C on its n-th call."""
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == n:
            raise KeyboardInterrupt

    return progress


def test_ctrl_c_stops_a_grid_and_the_cli_says_what_was_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(grid_module, "_CALL_BAR_COMBOS", 154 * 5241)  # 154 a call on SPY
    monkeypatch.setattr(grid_module, "_MIN_CALL_COMBOS", 1)
    monkeypatch.setattr(ProgressBar, "__call__", lambda self, done, total: interrupt_on_call(
        1)(done, total))  # fmt: skip
    out = tmp_path / "grid"
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "grid", "sma_cross",
                                      "--symbol", "SPY", "--source", "sample", "-p", "fast=2:40",
                                      "-p", "slow=5:60", "--out", str(out)])  # fmt: skip
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == ("stopped by Ctrl-C after 154 of 1,518 combinations; a grid is written "
                         "whole, so nothing was written")  # fmt: skip
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_grid_reports_progress_call_by_call_and_interrupts_as_keyboard_interrupt(monkeypatch):
    from ivybt.config import ExecutionConfig
    from ivybt.data.sample import load_sample
    from ivybt.strategies import BUILTIN
    from ivybt.studies.space import build_space
    from ivybt.tables import bar_columns

    columns = bar_columns(load_sample("SPY", "1d")[0].iloc[-1000:])
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:30", "slow": "5:80"})
    monkeypatch.setattr(grid_module, "_CALL_BAR_COMBOS", 500 * 1000)
    calls = []
    grid_module.evaluate_space(
        columns, space, ExecutionConfig(), periods_per_year=252.0,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(min(k, len(space)), len(space)) for k in range(500, len(space) + 500, 500)]
    with pytest.raises(KeyboardInterrupt) as caught:  # a notebook sees a KeyboardInterrupt
        grid_module.evaluate_space(columns, space, ExecutionConfig(), periods_per_year=252.0,
                                   progress=interrupt_on_call(2))  # fmt: skip
    assert isinstance(caught.value, StudyInterrupted)
    assert (caught.value.done, caught.value.total) == (1000, len(space))


def test_ctrl_c_in_a_batch_stores_only_whole_batches_and_the_study_resumes(tmp_path, monkeypatch):
    real = optimize_module.evaluate_space
    calls = []

    def evaluate_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C while the third batch is evaluated
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(optimize_module, "evaluate_space", evaluate_then_interrupt)
    with pytest.raises(StudyInterrupted) as caught:
        optimize("sma_cross", **COMMON, params=SPACE, trials=64, batch_size=8, seed=3,
                 results=tmp_path)  # fmt: skip
    assert caught.value.done == 16
    assert "rerun the same command to resume" in caught.value.message
    monkeypatch.setattr(optimize_module, "evaluate_space", real)
    storage = open_storage(storage_url_of(None, tmp_path))
    study = optuna.load_study(study_name="sma_cross-SPY", storage=storage)
    assert len(study.trials) == 16  # the interrupted batch was never stored
    assert all(t.state.is_finished() for t in study.trials)
    before = [(t.number, t.params, t.values) for t in study.trials]
    resumed = optimize("sma_cross", **COMMON, params=SPACE, trials=64, batch_size=8, seed=3,
                       results=tmp_path)  # fmt: skip
    trials = resumed.study.trials
    assert len(trials) == 64 and all(t.state.is_finished() for t in trials)
    assert [(t.number, t.params, t.values) for t in trials[:16]] == before
    assert not [t for t in trials if t.user_attrs.get(INTERRUPTED)]


def test_cli_optimize_ctrl_c_says_the_trials_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(ProgressBar, "__call__", lambda self, done, total: interrupt_on_call(
        1)(done, total))  # fmt: skip
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "optimize", "sma_cross",
                                      "--symbol", "SPY", "--source", "sample", "-p", "fast=2:60",
                                      "-p", "slow=10:200:5", "--trials", "64",
                                      "--batch-size", "16"])  # fmt: skip
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "stopped by Ctrl-C after 16 of 64 trials; they are kept in study 'sma_cross-SPY'; "
        "rerun the same command to resume"
    )


def test_plain_progress_lines_are_throttled_and_end_with_the_total():
    buffer = io.StringIO()
    clock = iter([0.0, 0.0, 0.1, 0.2, 0.5, 1.5, 1.6, 2.0])
    console = Console(file=buffer, width=200)
    with ProgressBar("combinations", console=console, clock=lambda: next(clock)) as progress:
        for done in (100, 200, 300, 400, 500, 600):
            progress(done, 600)
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "  100/600 combinations, 1,000/s, 0.1 s, ETA 0.5 s",
        "  400/600 combinations, 267/s, 1.5 s, ETA 0.8 s",
        "  600/600 combinations, 300/s, 2.0 s, ETA 0.0 s",
    ]


def test_a_terminal_gets_a_live_bar_with_rate_and_eta():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with ProgressBar("combinations", console=console) as progress:
        progress(5_000, 10_000)
        progress(10_000, 10_000)
    shown = buffer.getvalue()
    assert "combinations" in shown and "10000/10000" in shown and "ETA" in shown
