"""Progress of long work on stderr: a live rich bar on a terminal, plain lines in a log.

Both show what the issue asks of long work: units done of the total, the rate, the time
spent and the ETA. The rate reads "1,234/s", or "2.5 s/fold" when a unit takes longer than
a second (a rate of "0/s" says nothing). Plain lines (when stderr is not a terminal: CI
logs, pipes, Click's test runner) come at most once per `PLAIN_EVERY` seconds per phase,
plus the last one, so a log stays short. Later phases of the same command (the overfitting
statistics after a grid: "PBO returns", "PBO splits") report through `ProgressBar.phase`,
each with its own label.

Before work whose Numba kernels are not in the cache yet (a first run, a new Numba or
IvyBT version, another CPU), `compile_notice` prints "compiling kernels (first run only,
~N s)" once, so the wait is not mistaken for a hang.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY = 1.0  # seconds between two plain progress lines of one phase

CORE_KERNELS = ("ivybt.kernels.grid:grid_builtin_nb", "ivybt.kernels.indicators:sma_table_nb")
"""Kernels every study compiles (`module:name`): the grid kernel and one indicator table."""
EVIDENCE_KERNELS: dict[str, tuple[str, ...]] = {
    "grid": (
        "ivybt.kernels.grid_blocks:grid_block_stats_builtin_nb",
        "ivybt.kernels.grid_returns:grid_returns_builtin_nb",
        "ivybt.kernels.cscv:cscv_splits_nb",
    ),
    "optimize": (
        "ivybt.kernels.grid_returns:grid_returns_builtin_nb",
        "ivybt.kernels.cscv:cscv_splits_nb",
    ),
}
"""The kernels of each study's PBO and DSR (walkforward: the grid's)."""
EVIDENCE_KERNELS["walkforward"] = EVIDENCE_KERNELS["grid"]

COMPILE_SECONDS = {
    "ivybt.kernels.grid:grid_builtin_nb": 13.0,
    "ivybt.kernels.indicators:sma_table_nb": 1.0,
    "ivybt.kernels.grid_blocks:grid_block_stats_builtin_nb": 6.0,
    "ivybt.kernels.grid_returns:grid_returns_builtin_nb": 5.0,
    "ivybt.kernels.cscv:cscv_splits_nb": 5.0,
}
"""Cold-cache compile time each kernel stands for, with the kernels it calls, on the 2-core
machine of benchmarks/README.md: `ivybt grid` compiled for 14 s without the statistics and
27 s with them (cold run minus warm run), `ivybt optimize` for 21 s."""


def rate_text(done: int, elapsed: float, unit: str) -> str:
    """ "1,234/s", or "2.5 s/fold" below one unit a second (`unit` plural, e.g. "folds")."""
    if done <= 0 or elapsed <= 0:
        return "-/s"
    rate = done / elapsed
    if rate >= 1.0:
        return f"{rate:,.0f}/s"
    return f"{elapsed / done:,.1f} s/{_singular(unit)}"


def _singular(unit: str) -> str:
    word = unit.split()[-1] if unit.strip() else "unit"
    return word[:-1] if word.endswith("s") and len(word) > 1 else word


@dataclass
class _Meter:
    """One phase's clock and display state."""

    label: str
    started: float
    last_line: float = -float("inf")
    task: TaskID | None = None


class ProgressBar:
    """`progress(done, total)` callback for the studies, as a context manager.

    >>> with ProgressBar("combinations") as progress:
    ...     run_grid(config, progress=progress, phase_progress=progress.phase)
    """

    def __init__(
        self, unit: str, *, console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:  # fmt: skip
        self.unit = unit
        self.console = console or Console(file=sys.stderr)
        self._clock = clock
        self._main = _Meter(unit, clock())
        self._bar: Progress | None = None
        self._tasks: _Meter | None = None

    def __enter__(self) -> ProgressBar:
        self._main.started = self._clock()
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        self._update(self._main, done, total)

    def phase(self, label: str) -> Callable[[int, int], None]:
        """The `progress(done, total)` callback of a later phase named `label` (its unit,
        e.g. "PBO splits"), shown on its own line with its own clock from now on."""
        meter = _Meter(label, self._clock())
        return lambda done, total: self._update(meter, done, total)

    def tasks(self, done: int, running: int, failed: int, total: int) -> None:
        """The cluster's tasks (`ivybt.studies.cluster.TaskProgress`): done of total on a
        "cluster tasks" line, with how many are running and how many failed (lost with a
        worker and rerun elsewhere)."""
        if self._tasks is None:
            self._tasks = _Meter("cluster tasks", self._clock())
        note = f"{running:,} running, {failed:,} failed"
        self._update(self._tasks, done, total, note)

    def _update(self, meter: _Meter, done: int, total: int, note: str = "") -> None:
        now = self._clock()
        elapsed = now - meter.started
        rate = rate_text(done, elapsed, meter.label) + (f", {note}" if note else "")
        if self._bar is not None:
            if meter.task is None:
                meter.task = self._bar.add_task(meter.label, total=total, rate="")
            self._bar.update(meter.task, completed=done, total=total, rate=rate)
            return
        if done < total and now - meter.last_line < PLAIN_EVERY:
            return
        meter.last_line = now
        eta = (total - done) * elapsed / done if done > 0 else 0.0
        self.console.print(
            f"  {done:,}/{total:,} {meter.label}, {rate}, {elapsed:.1f} s, ETA {eta:.1f} s",
            highlight=False,
            soft_wrap=True,
        )


def echo_notice(line: str) -> None:
    """A study's one-line notices (the size of its space) on stderr, with the progress."""
    click.echo(line, err=True)


def cold_kernels(kernels: Sequence[Any]) -> list[str]:
    """The names of `kernels` (Numba dispatchers with cache=True) that would compile on their
    next call: none compiled in this process and no entry for this CPU in the cache index of
    their source (`NUMBA_CACHE_DIR` or `__pycache__`), or an index made for an older source
    or another Numba. A kernel whose cache cannot be read is left out (no notice rather than
    a wrong one)."""
    cold = []
    for kernel in kernels:
        try:
            if kernel.overloads:
                continue
            index = kernel._cache._cache_file._load_index()
            magic = kernel.targetctx.codegen().magic_tuple()
            if not any(key[1] == magic for key in index):
                cold.append(kernel.py_func.__name__)
        except Exception:  # Numba internals moved: say nothing
            continue
    return cold


def compile_notice(command: str, *, evidence: bool = True) -> None:
    """Print "compiling kernels (first run only, ~N s)" once when kernels `command` is about
    to run (`CORE_KERNELS`, and `EVIDENCE_KERNELS` with the overfitting statistics) are not
    in the Numba cache; N adds their `COMPILE_SECONDS`."""
    paths = [*CORE_KERNELS, *(EVIDENCE_KERNELS.get(command, ()) if evidence else ())]
    kernels = {path: _resolve(path) for path in paths}
    cold = set(cold_kernels(list(kernels.values())))
    if not cold:
        return
    seconds = sum(COMPILE_SECONDS.get(path, 2.0) for path, kernel in kernels.items()
                  if kernel.py_func.__name__ in cold)  # fmt: skip
    click.echo(f"compiling kernels (first run only, ~{max(seconds, 1.0):.0f} s)", err=True)


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
