"""Long work shows progress and stops cleanly on Ctrl-C, saying what was finished."""

from __future__ import annotations

import io
import json
import re

import optuna
import pytest
from click.testing import CliRunner
from rich.console import Console

from ivybt.cli import INTERRUPTED_EXIT, cli
from ivybt.cli.progress import ProgressBar
from ivybt.errors import StudyInterrupted
from ivybt.runs.optimize import optimize
from ivybt.studies import grid as grid_module
from ivybt.studies import search as search_module
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
    from ivybt.engine.tables import bar_columns
    from ivybt.strategies import BUILTIN
    from ivybt.studies.space import build_space

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
    real = search_module.evaluate_space
    calls = []

    def evaluate_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C while the third batch is evaluated
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(search_module, "evaluate_space", evaluate_then_interrupt)
    with pytest.raises(StudyInterrupted) as caught:
        optimize("sma_cross", **COMMON, params=SPACE, trials=64, batch_size=8, seed=3,
                 results_dir=tmp_path)  # fmt: skip
    assert caught.value.done == 16
    assert "rerun the same command to resume" in caught.value.message
    monkeypatch.setattr(search_module, "evaluate_space", real)
    storage = open_storage(storage_url_of(None, tmp_path))
    (name,) = optuna.get_all_study_names(storage)  # sma_cross-SPY-<hash of the settings>
    study = optuna.load_study(study_name=name, storage=storage)
    assert len(study.trials) == 16  # the interrupted batch was never stored
    assert all(t.state.is_finished() for t in study.trials)
    before = [(t.number, t.params, t.values) for t in study.trials]
    resumed = optimize("sma_cross", **COMMON, params=SPACE, trials=64, batch_size=8, seed=3,
                       results_dir=tmp_path)  # fmt: skip
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
    assert re.fullmatch(
        r"stopped by Ctrl-C after 16 of 64 trials; they are kept in study "
        r"'sma_cross-SPY(-[0-9a-f]{8})?'; rerun the same command to resume",
        result.stderr.strip().splitlines()[-1],
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


# ---- issue #13 point 20: every phase stops with exit 130 and says what was kept ----

GRID = ["grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=5:30:5",
        "-p", "slow=40:120:20"]  # fmt: skip


def numba_interrupt(*args, **kwargs):
    """What a Numba kernel raises when Ctrl-C arrives while it runs (seen with
    cscv_splits_nb): a SystemError whose cause is the KeyboardInterrupt."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as err:
        raise SystemError(
            "CPUDispatcher(<function cscv_splits_nb at 0x7f>) returned a result with an "
            "exception set"
        ) from err


def press_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("target", "raiser", "line"),
    [
        ("ivybt.runs.grid.prepare_inputs", press_ctrl_c,
         "stopped by Ctrl-C while loading the bars; a grid is written whole, so nothing was "
         "written"),
        ("ivybt.runs.grid.overfitting_evidence", numba_interrupt,
         "stopped by Ctrl-C while computing PBO and DSR (--no-evidence skips them); a grid is "
         "written whole, so nothing was written"),
    ],
    ids=["data", "evidence"],
)  # fmt: skip
def test_ctrl_c_in_each_phase_of_a_grid_says_what_was_kept(tmp_path, monkeypatch, target,
                                                           raiser, line):  # fmt: skip
    monkeypatch.setattr(target, raiser)
    out = tmp_path / "g"
    result = CliRunner().invoke(cli, [*GRID, "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert last_line(result) == line
    assert "Aborted!" not in result.output and "internal error" not in result.output
    assert not out.exists()


def test_ctrl_c_while_writing_keeps_whole_files_and_a_failed_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr("ivybt.runs.grid.write_text", press_ctrl_c)  # report.html
    out = tmp_path / "g"
    result = CliRunner().invoke(cli, [*GRID, "--no-evidence", "--out", str(out)])
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert last_line(result) == (
        f"stopped by Ctrl-C while writing the run folder; {out} holds only whole files (each "
        'is renamed into place when complete) and its manifest.json says "failed"; rerun '
        f"the same command with --out {out} to write it again"
    )
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
    assert sorted(p.name for p in out.iterdir()) == ["grid.parquet", "manifest.json",
                                                      "metrics.json"]  # fmt: skip


def test_ctrl_c_inside_a_fold_kernel_keeps_the_finished_folds(tmp_path, monkeypatch):
    from ivybt.studies import walkforward as walkforward_module

    real = walkforward_module.evaluate_windows
    calls = []

    def second_fold_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            numba_interrupt()
        return real(*args, **kwargs)

    monkeypatch.setattr(walkforward_module, "evaluate_windows", second_fold_interrupted)
    out = tmp_path / "w"
    result = CliRunner().invoke(cli, ["walkforward", "sma_cross", "-s", "SPY", "--source",
                                      "sample", "-p", "fast=5:20:5", "-p", "slow=30:60:10",
                                      "--is", "3y", "--oos", "1y", "--start", "2012-01-01",
                                      "--no-evidence", "--out", str(out)])  # fmt: skip
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert last_line(result).startswith("stopped by Ctrl-C after 1 of ")
    assert last_line(result).endswith(
        f"folds; they are kept in {out}; rerun the same command with --out {out} to resume"
    )
    assert (out / "folds" / "fold-000.json").exists()


def test_ctrl_c_in_a_search_s_statistics_says_the_trials_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr("ivybt.studies.evidence.overfitting_evidence", numba_interrupt)
    result = CliRunner().invoke(cli, ["--results-dir", str(tmp_path), "optimize", "sma_cross",
                                      "-s", "SPY", "--source", "sample", "-p", "fast=2:60",
                                      "-p", "slow=10:200:5", "--trials", "16",
                                      "--batch-size", "16"])  # fmt: skip
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert re.fullmatch(
        r"stopped by Ctrl-C while computing PBO and DSR; the 16 trials are kept in study "
        r"'sma_cross-SPY(-[0-9a-f]{8})?'; rerun the same command to write the results "
        r"\(finished trials are not run again\)",
        last_line(result),
    )


def test_ctrl_c_anywhere_else_exits_130_without_aborted(monkeypatch):
    from ivybt.cli import INTERRUPTED_LINE

    for raiser in (press_ctrl_c, numba_interrupt):
        monkeypatch.setattr("ivybt.runs.backtest.prepare_inputs", raiser)
        result = CliRunner().invoke(cli, ["backtest", "sma_cross", "-s", "SPY", "--source",
                                          "sample"])  # fmt: skip
        assert result.exit_code == INTERRUPTED_EXIT, result.output
        assert result.stderr.strip() == INTERRUPTED_LINE
        assert "Aborted!" not in result.output


@pytest.mark.slow
def test_a_real_sigint_during_pbo_exits_130_and_writes_nothing(tmp_path):
    """SIGINT sent to the process while the overfitting statistics run on EURUSD 1h (the
    interrupt may land inside a Numba kernel: issue #13 saw SystemError and 'Aborted!')."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "g"
    command = [str(Path(sys.executable).parent / "ivybt"), "grid", "sma_cross", "-s", "EURUSD",
               "-i", "1h", "--source", "sample", "-p", "fast=2:101", "-p", "slow=5:204",
               "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=os.environ.copy(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not inherited SIG_IGN
    )  # fmt: skip
    seen = []
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line)
        if "PBO returns" in line:  # the statistics have started: press Ctrl-C
            process.send_signal(signal.SIGINT)
            break
    rest = process.stderr.read()
    process.wait(timeout=300)
    lines = ("".join(seen) + rest).strip().splitlines()
    assert any("PBO returns" in line for line in seen), lines
    assert process.returncode == INTERRUPTED_EXIT, lines
    assert lines[-1] == (
        "stopped by Ctrl-C while computing PBO and DSR (--no-evidence skips them); a grid is "
        "written whole, so nothing was written"
    )
    assert not out.exists()


# ---- points 24 and 25: the statistics' progress, s/unit, the compile notice ----


def test_the_overfitting_statistics_report_progress_like_the_grid(tmp_path):
    result = CliRunner().invoke(cli, [*GRID, "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith("  30/30 combinations, ") for line in lines)
    assert any(line.startswith("  30/30 PBO returns, ") for line in lines)
    assert any(line.startswith("  12,870/12,870 PBO splits, ") for line in lines)


def test_slow_units_show_seconds_per_unit_and_phases_keep_their_own_clock():
    buffer = io.StringIO()
    clock = iter([0.0, 0.0, 5.0, 12.5, 13.0, 13.5])
    console = Console(file=buffer, width=200)
    with ProgressBar("folds", console=console, clock=lambda: next(clock)) as progress:
        progress(2, 3)  # t = 5.0: 2.5 s a fold
        progress(3, 3)  # t = 12.5
        splits = progress.phase("PBO splits")  # its clock starts at 13.0
        splits(12_870, 12_870)  # t = 13.5
    assert buffer.getvalue().splitlines() == [
        "  2/3 folds, 2.5 s/fold, 5.0 s, ETA 2.5 s",
        "  3/3 folds, 4.2 s/fold, 12.5 s, ETA 0.0 s",
        "  12,870/12,870 PBO splits, 25,740/s, 0.5 s, ETA 0.0 s",
    ]


def test_a_cold_numba_cache_is_detected_per_kernel(tmp_path, monkeypatch):
    import importlib.util

    import numba

    from ivybt.cli.progress import cold_kernels

    source = tmp_path / "cold_probe.py"
    source.write_text("from numba import njit\n\n\n@njit(cache=True)\n"
                      "def probe_nb(x):\n    return x + 1\n")  # fmt: skip
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))

    def load(name):
        spec = importlib.util.spec_from_file_location(name, source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.probe_nb

    first = load("cold_probe_a")
    assert cold_kernels([first]) == ["probe_nb"]  # nothing cached: it would compile
    assert first(1) == 2  # compiles and writes the cache
    assert cold_kernels([first]) == []
    assert cold_kernels([load("cold_probe_b")]) == []  # a new process would load it


def test_the_compile_notice_is_printed_once_when_kernels_are_cold(tmp_path, monkeypatch):
    from ivybt.cli import progress as progress_module

    monkeypatch.setattr(progress_module, "cold_kernels", lambda kernels: ["grid_builtin_nb"])
    cold = CliRunner().invoke(cli, [*GRID, "--no-evidence", "--out", str(tmp_path / "a")])
    assert cold.exit_code == 0, cold.output
    notices = [line for line in cold.stderr.splitlines() if line.startswith("compiling")]
    assert notices == ["compiling kernels (first run only, ~13 s)"]
    monkeypatch.setattr(progress_module, "cold_kernels", lambda kernels: [])
    warm = CliRunner().invoke(cli, [*GRID, "--no-evidence", "--out", str(tmp_path / "b")])
    assert warm.exit_code == 0 and "compiling" not in warm.stderr
