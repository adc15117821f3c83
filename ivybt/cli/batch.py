"""`ivybt batch FILE` and `ivybt batch status DIR`: many runs from one batch file."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from ivybt.cli import Settings, command_line_of, options

if TYPE_CHECKING:
    from rich.console import Console

STATUS_WIDTHS = {
    "state": 11,
    "seconds": 8,
    "sharpe": 7,
    "total_return": 12,
    "max_drawdown": 12,
    "pbo": 5,
    "dsr": 5,
}


class BatchGroup(click.Group):
    """`ivybt batch FILE ...` runs the batch (the `run` subcommand); `ivybt batch status
    DIR` shows one. Anything but a subcommand's name first is taken as `run`'s FILE."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """`run` for a FILE (so `ivybt batch FILE --jobs 2 --jobs 3` is refused as
        `ivybt batch run FILE ...` is: `ivybt.cli.options.refuse_repeated_options`)."""
        found = super().get_command(ctx, name)
        if found is None and not name.startswith("-"):
            return super().get_command(ctx, "run")
        return found


@click.group("batch", cls=BatchGroup, invoke_without_command=False, no_args_is_help=True)
def batch() -> None:
    """Run many backtests, grids, searches and walk-forward studies from one YAML file.

    `ivybt batch FILE` runs the batch file's jobs in worker processes (`ivybt batch run
    FILE`, the same); `ivybt batch status DIR` shows where a batch stands. The batch folder
    holds batch.jsonl (every job's states), jobs/<name>/ (each job's run folder),
    summary.parquet and summary.html; docs/batch.md describes the file.

    \b
    Examples:
      ivybt batch configs/batch-demo.yaml --jobs 2
      ivybt batch configs/batch-demo.yaml --dry-run
      ivybt batch status results/batch-demo
    """


@batch.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1),
    default=None,
    help="Worker processes, one job each at a time. Default: half the cores, at least 1; "
    "each worker runs Numba with cores // jobs threads.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Batch folder. Default: <results dir>/batch-<name> (the file's name:, else its "
    "stem); rerun on it to resume.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run the jobs that failed before again (finished jobs are always skipped).",
)
@click.option(
    "-n",
    "--dry-run",
    is_flag=True,
    help="Validate the file and list its jobs (and which would run) without running any.",
)
@options.cluster
@click.pass_obj
def run(
    settings: Settings,
    file: str,
    jobs: int | None,
    out: str | None,
    retry_failed: bool,
    dry_run: bool,
    scheduler: str | None,
    cluster: str | None,
) -> None:
    """Run the jobs of the batch file FILE in worker processes and summarise them.

    Every job is validated before any runs. Each job writes the run folder its command
    would (jobs/<name>/ in the batch folder); batch.jsonl records each state change, and
    summary.parquet and summary.html compare the jobs. Rerunning the command skips the
    finished jobs (same name and configuration), and the failed ones unless --retry-failed.
    A job that crashes its worker process fails alone. Exit status 1 when a job failed.

    \b
    Examples:
      ivybt batch configs/batch-demo.yaml --jobs 2
      ivybt batch configs/batch-demo.yaml --jobs 2 --retry-failed
      ivybt batch run configs/batch-demo.yaml --out results/demo --dry-run
      ivybt batch configs/batch-demo.yaml --cluster local:2
    """
    from ivybt.runs.batch import batch_folder, run_batch
    from ivybt.runs.batch_file import load_batch

    plan = load_batch(file)
    folder = batch_folder(plan, out, settings.results_dir)
    if dry_run:
        _print_plan(plan, folder, retry_failed)
        return
    with BatchProgress(len(plan.jobs)) as progress:
        result = run_batch(
            plan,
            folder,
            workers=jobs,
            retry_failed=retry_failed,
            cache_dir=settings.cache_dir,
            on_event=progress,
            command_line=command_line_of(click.get_current_context()),
            scheduler=scheduler,
            cluster=cluster,
        )
    _print_status(result.summary)
    click.echo(f"wrote {folder / 'summary.html'}")
    failed = result.failed
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(result.summary)} jobs failed ({', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}): see `ivybt batch status {folder}`; fix "
            "them and rerun, or rerun with --retry-failed"
        )


@batch.command("status")
@click.argument("folder", type=click.Path(file_okay=False))
def status(folder: str) -> None:
    """Show the state of every job of the batch in FOLDER: time, headline numbers, folder.

    Read from the batch folder's jobs.json and batch.jsonl, also while the batch runs. A
    job left running by a batch process that is gone shows "interrupted".

    \b
    Examples:
      ivybt batch status results/batch-demo
    """
    from ivybt.runs.batch import batch_status

    _print_status(batch_status(Path(folder)))


def _print_plan(plan: Any, folder: Path, retry_failed: bool) -> None:
    from ivybt.runs.batch import jobs_to_run

    _, skipped = jobs_to_run(plan, folder, retry_failed=retry_failed)
    why = {job.name: previous for job, previous in skipped}
    click.echo(f"{plan.source}: {len(plan.jobs)} jobs, all valid; batch folder {folder}")
    width = max(len(job.name) for job in plan.jobs)
    actions = {"finished": "skip (finished)", "failed": "skip (failed; --retry-failed reruns it)"}
    for job in plan.jobs:
        action = actions.get(why.get(job.name, ""), "run")
        click.echo(f"  {job.name:<{width}}  {job.command:<11} {action}")


def _print_status(summary: Any) -> None:
    """The status table: job, state, time, headline numbers, folder; then failed jobs'
    errors."""
    from ivybt.report.backtest import format_metric
    from ivybt.runs.batch_log import STATUS_COLUMNS, counts

    if summary.empty:
        click.echo("no jobs")
        return
    width = max(len("job"), *(len(str(name)) for name in summary["job"]))
    header = (
        [f"{'job':<{width}}"]
        + [f"{name:>{STATUS_WIDTHS[name]}}" for name in STATUS_COLUMNS[1:-1]]
        + ["folder"]
    )
    click.echo("  ".join(header))
    for row in summary.to_dict("records"):
        cells = [f"{row['job']:<{width}}", f"{row['state']:>{STATUS_WIDTHS['state']}}"]
        seconds = row.get("seconds")
        cells.append(f"{'' if _missing(seconds) else f'{seconds:.1f} s':>8}")
        for name in STATUS_COLUMNS[3:-1]:
            value = row.get(name)
            shown = (
                ""
                if _missing(value)
                else (f"{value:.2f}" if name in ("pbo", "dsr") else format_metric(name, value))
            )
            cells.append(f"{shown:>{STATUS_WIDTHS[name]}}")
        cells.append(str(row.get("folder") or ""))
        click.echo("  ".join(cells))
    states = ", ".join(f"{n} {state}" for state, n in counts(summary).items())
    click.echo(f"{len(summary)} jobs: {states}")
    for row in summary[summary["state"] == "failed"].to_dict("records"):
        click.echo(f"failed {row['job']}: {row['error']}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class BatchProgress:
    """The batch's progress on stderr, from its records (`on_event`): a line per job that
    finishes or fails, with jobs done of those to run, running, failed, the rate and the
    ETA; on a terminal also a live bar."""

    def __init__(
        self,
        total: int,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        from rich.console import Console

        self.console = console or Console(file=sys.stderr)
        self._clock = clock
        self.total = total
        self.to_run = total
        self.done = self.failed = self.running = 0
        self.started = clock()
        self._bar: Any = None
        self._task: Any = None
        self._last_line = -math.inf

    def __enter__(self) -> BatchProgress:
        self.started = self._clock()
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]jobs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task("jobs", total=self.to_run, detail="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record.get("batch") == "started":
            self.to_run = int(record.get("to_run", self.total))
            skipped = int(record.get("jobs", self.total)) - self.to_run
            self._say(
                f"{record.get('jobs')} jobs: {self.to_run} to run, {skipped} done before; "
                f"{record.get('workers')} workers x {record.get('threads')} Numba threads"
            )
            if self._bar is not None:
                self._bar.update(self._task, total=self.to_run)
            return
        state = record.get("state")
        if state == "running":
            self.running += 1
        elif state in ("finished", "failed"):
            self.running = max(0, self.running - 1)
            self.done += 1
            self.failed += state == "failed"
            self._say(self._job_line(record))
        elif state == "interrupted" or (state == "pending" and record.get("reason")):
            self.running = max(0, self.running - 1)  # stopped, or to run again alone
        else:
            return
        self._show()

    def _job_line(self, record: Mapping[str, Any]) -> str:
        name, seconds = record.get("job"), record.get("seconds")
        took = "" if seconds is None else f" in {seconds:.1f} s"
        if record.get("state") == "failed":
            return f"failed {name}{took}: {record.get('error')}"
        from ivybt.report.backtest import format_metric

        headline = record.get("headline") or {}
        shown = ", ".join(
            f"{key} {format_metric(key, headline.get(key))}"
            for key in ("sharpe", "total_return", "max_drawdown")
        )
        warned = "".join(f"\nwarning: {name}: {line}" for line in record.get("warnings") or [])
        return f"finished {name}{took}: {shown} ({headline.get('basis')}){warned}"

    def _show(self) -> None:
        from ivybt.cli.progress import PLAIN_EVERY, rate_text

        elapsed = self._clock() - self.started
        rate = rate_text(self.done, elapsed, "jobs")
        left = self.to_run - self.done
        eta = left * elapsed / self.done if self.done else math.nan
        detail = f"running {self.running}, failed {self.failed}, {rate}"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, detail=detail)
            return
        now = self._clock()
        if self.done < self.to_run and now - self._last_line < PLAIN_EVERY:
            return
        self._last_line = now
        shown_eta = "-" if math.isnan(eta) else f"{eta:.0f} s"
        self._say(
            f"  {self.done}/{self.to_run} jobs done, {detail}, {elapsed:.1f} s, ETA {shown_eta}"
        )

    def _say(self, line: str) -> None:
        self.console.print(line, highlight=False, soft_wrap=True, markup=False)
