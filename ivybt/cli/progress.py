"""Progress of long work on stderr: a live rich bar on a terminal, plain lines in a log.

Both show what the issue asks of long work: units done of the total, the rate, the time
spent and the ETA. Plain lines (when stderr is not a terminal: CI logs, pipes, Click's test
runner) come at most once per `PLAIN_EVERY` seconds, plus the last one, so a log stays short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType

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

PLAIN_EVERY = 1.0  # seconds between two plain progress lines


class ProgressBar:
    """`progress(done, total)` callback for the studies, as a context manager.

    >>> with ProgressBar("combinations") as progress:
    ...     run_grid(config, progress=progress)
    """

    def __init__(
        self, unit: str, *, console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:  # fmt: skip
        self.unit = unit
        self.console = console or Console(file=sys.stderr)
        self._clock = clock
        self._started = clock()
        self._last_line = -float("inf")
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        self._started = self._clock()
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn(f"[bold]{self.unit}"),
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
        now = self._clock()
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(self.unit, total=total, rate="")
            self._bar.update(self._task, completed=done, total=total, rate=f"{rate:,.0f}/s")
            return
        if done < total and now - self._last_line < PLAIN_EVERY:
            return
        self._last_line = now
        eta = (total - done) / rate if rate > 0 else 0.0
        self.console.print(
            f"  {done:,}/{total:,} {self.unit}, {rate:,.0f}/s, {elapsed:.1f} s, ETA {eta:.1f} s",
            highlight=False,
            soft_wrap=True,
        )
