"""`ivybt.batch` and `ivybt batch FILE`: many runs from one batch file, in worker processes,
with their status recorded, resumable, and summarised.

The batch folder (`--out`, else `<results dir>/batch-<name>`; docs/batch.md)::

    batch.jsonl        one record per state change (`ivybt.runs.batch_log`)
    jobs.json          the jobs of the batch as last run: names, hashes, configurations
    jobs/<name>/       each job's run folder, as `ivybt <command> --out` writes it
    optuna.journal     the studies of the optimize jobs (and Optuna walk-forward folds)
    summary.parquet    one row per job: configuration, state, headline numbers, folder
    summary.html       the jobs in a sortable table linking each report, the best jobs, charts

How a batch runs (`run_batch`):

- The whole file is validated first (`ivybt.runs.batch_file.load_batch`): nothing runs
  when one job is wrong.
- Jobs run in joblib's loky worker processes, one job per task, `workers` at a time
  (default: half the cores, at least 1); each worker runs Numba with cores // workers
  threads (at least 1), so workers x threads stays within the cores. Workers are reused
  from job to job and give the job's memory back after each (`batch_worker.release_memory`).
- A job that raises fails alone, with its one-line error. A job that kills its worker
  process (a crash, `os._exit`, the out-of-memory killer, kill -9) breaks the pool, which
  also stops the jobs running beside it: the pool is replaced, and the jobs that were
  running are run again one at a time, so the one that dies again is the one marked failed
  (its record says the worker died, with the exit code) and the others finish.
- Resume: a rerun skips every job whose latest outcome, for the same name and hash (its
  command and resolved configuration), is finished and whose folder's manifest says so;
  a failed job runs again only with `retry_failed`. A job stopped half-way runs again in
  the same folder (a walk-forward reuses its finished folds, a search its stored trials),
  so a batch killed and rerun gives the summary of an uninterrupted one (timing aside).
- Ctrl-C: the workers are stopped, the running jobs recorded "interrupted", the summary of
  what finished is written, and `StudyInterrupted` says so (exit 130 on the command line).
- One batch process per folder at a time (a lock file, `.batch.lock`).
- On Dask (`scheduler` or `cluster`; `ivybt.studies.cluster`, docs/scale-out.md) the same
  jobs go to the cluster's workers through `Client.get_executor()`, a
  `concurrent.futures.Executor` like loky's, as many at a time as there are workers; the
  jobs write their run folders themselves, so the workers must see the batch folder (one
  machine, or a shared filesystem). A job whose worker dies is rerun by Dask elsewhere; one
  that kills workers repeatedly (`distributed.KilledWorker`) fails alone.
"""

from __future__ import annotations

import os
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ivybt import _paths
from ivybt.errors import ConfigError, StudyInterrupted
from ivybt.files import write_json, write_table, write_text
from ivybt.runs.batch_file import BatchPlan, Job, default_folder_name, load_batch
from ivybt.runs.batch_log import (
    JOBS_NAME,
    LOG_NAME,
    append_record,
    counts,
    last_outcomes,
    read_jobs,
    read_records,
    summary_frame,
)
from ivybt.runs.batch_worker import JobTask, ignore_interrupts, run_job
from ivybt.runs.folder import check_writable, read_run_manifest

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures

LOCK_NAME = ".batch.lock"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_HTML = "summary.html"
BATCH_FILES = frozenset(
    {LOG_NAME, JOBS_NAME, LOCK_NAME, SUMMARY_PARQUET, SUMMARY_HTML, "jobs", "optuna.journal"}
)
"""Names a batch folder holds (a folder with none of them and other files is refused)."""
WAIT_SECONDS = 0.5  # how often the batch's process looks up from waiting on its workers
RERUN_ALONE = (
    "a worker process died while this job ran beside others; it runs again alone, to find "
    "the job that crashed it"
)

Event = Callable[[Mapping[str, Any]], None]
"""Called with each record as it is appended to batch.jsonl (progress on the command line)."""


@dataclass
class BatchResult:
    """A batch that ran: its folder, its jobs and one summary row per job."""

    folder: Path
    plan: BatchPlan
    summary: pd.DataFrame
    ran: list[str] = field(default_factory=list)  # jobs this call ran (finished or failed)
    skipped: list[str] = field(default_factory=list)  # jobs finished (or failed) before

    @property
    def failed(self) -> list[str]:
        """The jobs whose latest outcome is a failure."""
        return self.summary.loc[self.summary["state"] == "failed", "job"].tolist()

    @property
    def finished(self) -> list[str]:
        return self.summary.loc[self.summary["state"] == "finished", "job"].tolist()

    def best(self, n: int = 10, objective: str | None = None) -> pd.DataFrame:
        """The `n` finished jobs with the highest `objective` (default: the batch's)."""
        name = objective or self.plan.objective
        done = self.summary[(self.summary["state"] == "finished") & self.summary[name].notna()]
        return done.nlargest(n, name)

    def plot(self) -> ReportFigures:
        """The figures of summary.html (the jobs by the batch's objective, return against
        drawdown), as plotly figures (`ivybt.report.batch.batch_sections`)."""
        from ivybt.report.batch import batch_sections
        from ivybt.report.figures import ReportFigures

        return ReportFigures(batch_sections(self.summary, objective=self.plan.objective))

    def __repr__(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in counts(self.summary).items())
        return (
            f"<BatchResult {self.plan.name}: {len(self.summary)} jobs ({states}); {self.folder}>"
        )


def batch(
    source: str | Path | Mapping[str, Any],
    *,
    jobs: int | None = None,
    out: str | Path | None = None,
    retry_failed: bool = False,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    on_event: Event | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> BatchResult:
    """Run the batch file `source` (a path, or the same content as a mapping); mirrors
    `ivybt batch FILE`.

    `jobs` worker processes (default: half the cores, at least 1) run one job each at a
    time; the batch folder is `out`, else `<results dir>/batch-<name>` (the file's `name:`,
    else its stem). Rerunning on the same folder skips the finished jobs (and the failed
    ones unless `retry_failed`). Returns a `BatchResult` whose `summary` is
    summary.parquet's table. `scheduler` ("tcp://HOST:8786") or `cluster` ("local:N") run
    the jobs on Dask instead of `jobs` local processes (docs/scale-out.md). See
    `ivybt.runs.batch` and docs/batch.md.

    Examples
    --------
    >>> import ivybt
    >>> result = ivybt.batch("configs/batch-demo.yaml", jobs=2)  # doctest: +SKIP
    >>> result.summary[["job", "state", "sharpe"]]  # doctest: +SKIP
    """
    plan = load_batch(source, default_name=None if out is None else Path(out).name)
    folder = batch_folder(plan, out, results_dir)
    return run_batch(
        plan,
        folder,
        workers=jobs,
        retry_failed=retry_failed,
        cache_dir=cache_dir,
        on_event=on_event,
        command_line=["python", "ivybt.batch(...)"],
        scheduler=scheduler,
        cluster=cluster,
    )


def batch_status(folder: str | Path) -> pd.DataFrame:
    """The summary table of the batch in `folder` as it stands (`ivybt batch status DIR`):
    one row per job, its state (pending, running, finished, failed, interrupted), time,
    headline numbers and folder. A job left "running" by a batch process that is gone reads
    "interrupted"."""
    folder = Path(folder)
    content = read_jobs(folder)
    if content is None:
        raise ConfigError(
            f"{folder} holds no IvyBT batch (no {JOBS_NAME}); give the folder `ivybt batch` "
            "wrote (its --out, or results/batch-<name>)"
        )
    return summary_frame(content["jobs"], read_records(folder / LOG_NAME), live=is_running(folder))


def batch_folder(
    plan: BatchPlan, out: str | Path | None, results_dir: str | Path | None = None
) -> Path:
    """`out`, else `<results dir>/batch-<name>`; refused (`ConfigError`) when it is a file,
    cannot be written, or is a non-empty folder that holds no batch."""
    folder = (
        Path(out)
        if out is not None
        else _paths.results_dir(results_dir) / (default_folder_name(plan.name))
    )
    for above in (folder, *folder.parents):
        if above.exists() or above.is_symlink():
            if not above.is_dir():
                raise ConfigError(f"{above} is a file, not a folder; give --out a folder path")
            break
    check_writable(folder)
    if folder.is_dir() and read_jobs(folder) is None:
        others = [p.name for p in folder.iterdir() if p.name not in BATCH_FILES]
        if others:
            raise ConfigError(
                f"{folder} is not empty and holds no IvyBT batch (no {JOBS_NAME}); IvyBT writes "
                "a batch into a new or empty folder or a batch folder of its own: choose "
                "another --out"
            )
    return folder


def resolve_workers(jobs: int | None, n_jobs: int) -> tuple[int, int]:
    """(worker processes, Numba threads per worker): `jobs` (default: half the cores, at
    least 1), never more than the jobs to run; threads = cores // workers, at least 1."""
    cores = available_cores()
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}; e.g. --jobs 2")
    workers = jobs if jobs is not None else max(1, cores // 2)
    workers = max(1, min(workers, max(n_jobs, 1)))
    return workers, max(1, cores // workers)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_running(folder: Path) -> bool:
    """Whether a batch process holds `folder` now (its lock file is locked)."""
    from filelock import FileLock, Timeout

    path = folder / LOCK_NAME
    if not path.exists():
        return False
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def run_batch(
    plan: BatchPlan,
    folder: Path,
    *,
    workers: int | None = None,
    retry_failed: bool = False,
    cache_dir: str | Path | None = None,
    on_event: Event | None = None,
    command_line: Sequence[str] | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> BatchResult:
    """Run `plan`'s jobs into `folder` (the module docstring); returns the result with the
    summary, also written as summary.parquet and summary.html."""
    from filelock import FileLock, Timeout

    from ivybt.studies.cluster import cluster_spec

    spec = cluster_spec(scheduler, cluster)
    if spec is not None and workers is not None:
        raise ConfigError(
            f"--jobs sets local worker processes, but the jobs run on Dask "
            f"({spec.scheduler or spec.cluster}); drop --jobs (each Dask worker runs one job "
            "at a time)"
        )

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(
            f"another `ivybt batch` is running on {folder} (it holds {LOCK_NAME}); wait for it "
            "to finish, or give this batch another --out"
        ) from None
    try:
        return _run_locked(
            plan,
            folder,
            workers,
            retry_failed,
            cache_dir,
            on_event,
            list(command_line or ["ivybt", "batch", plan.source]),
            spec,
        )
    finally:
        lock.release()


def _run_locked(
    plan: BatchPlan,
    folder: Path,
    workers: int | None,
    retry_failed: bool,
    cache_dir: str | Path | None,
    on_event: Event | None,
    command_line: list[str],
    spec: Any = None,
) -> BatchResult:
    import contextlib

    from ivybt.studies.cluster import dask_client, local_workers, n_workers, numba_threads

    with contextlib.ExitStack() as stack:
        client = None if spec is None else stack.enter_context(dask_client(spec))
        if client is not None:  # the cluster's workers; a remote one's threads are its own
            local = spec.cluster is not None
            workers = n_workers(client)
            threads = numba_threads(local_workers(spec.cluster)) if local else DASK_THREADS
        return _run_jobs(plan, folder, workers, retry_failed, cache_dir, on_event,
                         command_line, client, None if client is None else threads)  # fmt: skip


DASK_THREADS = 1 << 10
"""Numba threads a job asks of a remote Dask worker: `run_job` caps them at the worker's
NUMBA_NUM_THREADS, so the worker's own setting rules (docs/scale-out.md)."""


def _run_jobs(
    plan: BatchPlan,
    folder: Path,
    workers: int | None,
    retry_failed: bool,
    cache_dir: str | Path | None,
    on_event: Event | None,
    command_line: list[str],
    client: Any,
    dask_threads: int | None,
) -> BatchResult:
    log = folder / LOG_NAME
    write_json(folder / JOBS_NAME, _jobs_document(plan))

    def emit(fields: Mapping[str, Any]) -> None:
        line = append_record(log, fields)
        if on_event is not None:
            on_event(line)

    def record(job: Job, state: str, **fields: Any) -> None:
        emit({"job": job.name, "hash": job.hash, "command": job.command, "state": state,
              **fields})  # fmt: skip

    to_run, skipped = jobs_to_run(plan, folder, retry_failed=retry_failed)
    n_workers, threads = resolve_workers(workers, len(to_run))
    if dask_threads is not None:
        threads = dask_threads
    emit({"batch": "started", "name": plan.name, "source": plan.source,
          "jobs": len(plan.jobs), "to_run": len(to_run), "workers": n_workers,
          "threads": threads, "command_line": command_line})  # fmt: skip
    for job, previous in skipped:
        record(job, "skipped", previous=previous)
    for job in to_run:
        record(job, "pending")
    tasks = [_task(job, folder, cache_dir, threads, command_line) for job in to_run]
    ran: list[str] = []
    try:
        if client is None:
            _execute(tasks, {job.name: job for job in to_run}, n_workers, threads, record, ran)
        else:
            _execute_dask(client, tasks, {job.name: job for job in to_run}, n_workers, record,
                          ran)  # fmt: skip
    except BaseException as err:
        interrupted = isinstance(err, KeyboardInterrupt)
        emit({"batch": "interrupted" if interrupted else "failed", "ran": len(ran)})
        summary = write_summary(folder, plan)
        if not interrupted:
            raise
        raise StudyInterrupted(
            len(ran), len(to_run), "jobs to run",
            f"the jobs finished are recorded in {log} and shown in {folder / SUMMARY_HTML} "
            f"({counts(summary).get('finished', 0)} of {len(plan.jobs)} finished); rerun the "
            "same command to run the rest",
        ) from err  # fmt: skip
    emit({"batch": "done", "ran": len(ran)})
    summary = write_summary(folder, plan)
    return BatchResult(folder=folder, plan=plan, summary=summary, ran=ran,
                       skipped=[job.name for job, _ in skipped])  # fmt: skip


def jobs_to_run(
    plan: BatchPlan, folder: Path, *, retry_failed: bool = False
) -> tuple[list[Job], list[tuple[Job, str]]]:
    """The jobs a run of `plan` in `folder` runs, and those it skips with their earlier
    outcome: "finished" (the latest outcome of the same name and hash, its run folder's
    manifest finished too), or "failed" unless `retry_failed`."""
    outcomes = last_outcomes(read_records(folder / LOG_NAME))
    to_run, skipped = [], []
    for job in plan.jobs:
        state = (outcomes.get((job.name, job.hash)) or {}).get("state")
        if state == "finished" and _finished_folder(folder / "jobs" / job.name):
            skipped.append((job, "finished"))
        elif state == "failed" and not retry_failed:
            skipped.append((job, "failed"))
        else:
            to_run.append(job)
    return to_run, skipped


def _finished_folder(folder: Path) -> bool:
    manifest = read_run_manifest(folder)
    return manifest is not None and manifest.get("status") == "finished"


def _jobs_document(plan: BatchPlan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "source": plan.source,
        "objective": plan.objective,
        "jobs": [
            {
                "name": job.name,
                "command": job.command,
                "hash": job.hash,
                "entry": job.entry,
                "matrix": job.matrix,
                "columns": job.columns(),
                "config": job.config.model_dump(mode="json"),
            }
            for job in plan.jobs
        ],
    }


def _task(
    job: Job, folder: Path, cache_dir: str | Path | None, threads: int, command_line: list[str]
) -> JobTask:
    from ivybt.config import OutputConfig

    target = (folder / "jobs" / job.name).resolve()
    config = job.config.model_copy(update={"output": OutputConfig(out=str(target))})
    return JobTask(
        name=job.name,
        command=job.command,
        config=config.model_dump(mode="json"),
        folder=str(target),
        results_dir=str(folder.resolve()),
        cache_dir=None if cache_dir is None else str(Path(cache_dir).resolve()),
        threads=threads,
        cwd=os.getcwd(),
        sys_path=tuple(sys.path),
        command_line=tuple(command_line),
    )


def _worker_env(threads: int) -> dict[str, str]:
    """The workers' environment: Numba's (and BLAS/OpenMP's) thread count, set before any
    of them is imported in the worker."""
    names = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return dict.fromkeys(names, str(threads))


def _execute(
    tasks: list[JobTask],
    jobs: Mapping[str, Job],
    workers: int,
    threads: int,
    record: Callable[..., None],
    ran: list[str],
) -> None:
    """Run `tasks` on a loky pool of `workers` processes, recording each state change;
    the jobs that were running when a worker died run again one at a time (the module
    docstring). Stops the workers on any exception (Ctrl-C) and records the running jobs
    "interrupted"."""
    from joblib.externals.loky import ProcessPoolExecutor
    from joblib.externals.loky.process_executor import BrokenProcessPool

    queue = deque(tasks)
    alone: deque[JobTask] = deque()  # suspects of a worker's death, run one at a time
    running: dict[Future[dict[str, Any]], tuple[JobTask, bool]] = {}
    executor: Any = None
    try:
        while queue or alone or running:
            if executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=workers, env=_worker_env(threads), initializer=ignore_interrupts
                )
            if alone:
                if not running:
                    task = alone.popleft()
                    running[executor.submit(run_job, task)] = (task, True)
                    record(jobs[task.name], "running", alone=True)
            else:
                while queue and len(running) < workers:
                    task = queue.popleft()
                    running[executor.submit(run_job, task)] = (task, False)
                    record(jobs[task.name], "running")
            done, _ = wait(list(running), timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
            crashed: list[tuple[JobTask, BaseException]] = []
            for future in done:
                task, _ = running.pop(future)
                _settle(future, task, jobs, record, ran, crashed, BrokenProcessPool)
            if not crashed:
                continue
            # a worker died and the pool is broken: the jobs still running in it fail too
            for future, (task, _) in list(running.items()):
                wait([future])
                running.pop(future)
                _settle(future, task, jobs, record, ran, crashed, BrokenProcessPool)
            executor.shutdown(wait=True, kill_workers=True)
            executor = None  # a new pool for what is left
            if len(crashed) == 1:  # it ran alone, or the others finished: its own crash
                task, error = crashed[0]
                _fail_dead(jobs[task.name], error, record, ran)
                continue
            for task, _ in crashed:
                record(jobs[task.name], "pending", reason=RERUN_ALONE)
                alone.append(task)
    except BaseException:
        if executor is not None:
            executor.shutdown(wait=False, kill_workers=True)
            executor = None
        for task, _ in running.values():
            record(jobs[task.name], "interrupted")
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True)


def _execute_dask(
    client: Any,
    tasks: list[JobTask],
    jobs: Mapping[str, Job],
    workers: int,
    record: Callable[..., None],
    ran: list[str],
) -> None:
    """`_execute` on a Dask client's executor: `workers` jobs at a time, each recorded as
    it changes state; Dask reruns a job whose worker died, and a job that killed workers
    too often (`KilledWorker`) fails alone. Any exception (Ctrl-C) cancels the jobs still
    queued or running and records the running ones "interrupted"."""
    from distributed import KilledWorker

    executor = client.get_executor(pure=False)
    queue = deque(tasks)
    running: dict[Future[dict[str, Any]], JobTask] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                task = queue.popleft()
                running[executor.submit(run_job, task)] = task
                record(jobs[task.name], "running")
            done, _ = wait(list(running), timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
            crashed: list[tuple[JobTask, BaseException]] = []
            for future in done:
                _settle(future, running.pop(future), jobs, record, ran, crashed, KilledWorker)
            for task, error in crashed:
                _fail_dead(jobs[task.name], error, record, ran)
    except BaseException:
        for future in running:
            future.cancel()
        for task in running.values():
            record(jobs[task.name], "interrupted")
        raise
    finally:
        executor.shutdown(wait=False)


def _settle(
    future: Future[dict[str, Any]],
    task: JobTask,
    jobs: Mapping[str, Job],
    record: Callable[..., None],
    ran: list[str],
    crashed: list[tuple[JobTask, BaseException]],
    broken: type[BaseException],
) -> None:
    """Record a future's outcome, or add its task to `crashed` when its worker died (the
    pool raised `broken`)."""
    job = jobs[task.name]
    try:
        payload = future.result()
    except broken as err:
        crashed.append((task, err))
        return
    except Exception as err:  # the task or its result could not cross the process boundary
        payload = {"ok": False, "error": f"{type(err).__name__}: {err}", "seconds": None}
    ran.append(job.name)
    folder = f"jobs/{job.name}"
    if payload.get("ok"):
        record(
            job,
            "finished",
            seconds=payload.get("seconds"),
            folder=folder,
            headline=payload.get("headline"),
            warnings=payload.get("warnings") or [],
            data_sha256=payload.get("data_sha256") or [],
        )
    else:
        record(
            job,
            "failed",
            seconds=payload.get("seconds"),
            folder=folder,
            error=payload.get("error"),
            input_error=bool(payload.get("input_error")),
        )


def _fail_dead(
    job: Job, error: BaseException, record: Callable[..., None], ran: list[str]
) -> None:
    codes = re.search(r"exit codes? of the workers? (?:are|is) (\{[^}]*\})", str(error))
    how = f" (exit code {codes.group(1).strip('{}')})" if codes else ""
    ran.append(job.name)
    record(
        job,
        "failed",
        folder=f"jobs/{job.name}",
        worker_died=True,
        error=f"its worker process died{how} while running it: a crash, os._exit, the "
        "out-of-memory killer or kill -9 ended the process; the other jobs were not "
        "affected; rerun it with --retry-failed",
    )


def write_summary(folder: Path, plan: BatchPlan) -> pd.DataFrame:
    """Write summary.parquet and summary.html from jobs.json and batch.jsonl; return the
    table."""
    from ivybt.report.batch import batch_report_html

    content = read_jobs(folder) or _jobs_document(plan)
    summary = summary_frame(content["jobs"], read_records(folder / LOG_NAME), live=True)
    write_table(folder / SUMMARY_PARQUET, summary)
    write_text(
        folder / SUMMARY_HTML,
        batch_report_html(
            summary, title=f"Batch {plan.name}", objective=plan.objective, source=plan.source
        ),
    )
    return summary
