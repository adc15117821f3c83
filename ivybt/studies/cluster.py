"""Grid chunks and walk-forward folds as tasks on a Dask cluster (`--scheduler`, `--cluster`).

A task is a pure function of (configuration, bars, chunk or fold): the bars travel once per
worker (`Client.scatter(..., broadcast=True)`), each task carries its slice of the space and
returns its metrics, and the client merges the results in task order, so a table is the
same bit for bit whoever ran which task (docs/scale-out.md). Tasks write nothing, so a task
Dask reruns after a worker died (its futures are rescheduled elsewhere) gives the same
result. Ctrl-C cancels the futures, closes the client and stops a local cluster.

dask.distributed is optional (`pip install 'ivybt[cluster]'`) and imported only here, only
when a scheduler or a local cluster is asked for.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ivybt.errors import ConfigError, StudyInterrupted, is_interrupt

INSTALL_HINT = "pip install 'ivybt[cluster]'"
CONNECT_TIMEOUT_S = 10.0  # seconds to reach a scheduler before the address is refused
ASK_SCHEDULER_EVERY = 1.0  # seconds between two questions for the failed-task count
TASKS_PER_WORKER = 4  # grid tasks per worker at least, for load balance and progress
QUIET_SCHEDULER = {"dashboard_address": "127.0.0.1:0"}
"""A local scheduler's HTTP server (health, metrics) on a free port of 127.0.0.1: with no
dashboard it still takes 8787 by default, and a second cluster on the machine warns that it
is in use."""
RESCATTERS = 3  # times the bars are scattered again when every worker holding them was lost
WORKER_WAIT_S = 60.0  # seconds to wait for a worker before scattering them again
_LOCAL = re.compile(r"^local:(\d+)$")

TaskProgress = Callable[[int, int, int, int], None]
"""tasks(done, running, failed, total): the cluster's task counts after each change
(`ivybt.cli.progress.ProgressBar.tasks`); "running" are on a worker now, "failed" lost
their worker and were rerun elsewhere (a task that raises stops the run instead)."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where tasks run: an existing scheduler's address, or `local:N` worker processes."""

    scheduler: str | None = None
    cluster: str | None = None

    def __bool__(self) -> bool:
        return self.scheduler is not None or self.cluster is not None


def cluster_spec(scheduler: str | None, cluster: str | None) -> ClusterSpec | None:
    """The checked pair of `--scheduler` / `--cluster` (None: run here), ConfigError for
    both at once or a malformed value."""
    if scheduler is not None and cluster is not None:
        raise ConfigError(
            f"give --scheduler or --cluster, not both; got --scheduler {scheduler} and "
            f"--cluster {cluster}"
        )
    if cluster is not None:
        local_workers(cluster)
    if scheduler is not None and not scheduler.strip():
        raise ConfigError("--scheduler needs an address, e.g. tcp://10.0.0.5:8786")
    spec = ClusterSpec(scheduler, cluster)
    return spec if spec else None


def local_workers(cluster: str) -> int:
    """N of `local:N` (N >= 1), else ConfigError."""
    match = _LOCAL.match(cluster.strip())
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"--cluster must be local:N with N >= 1 worker processes, got {cluster!r}; "
            "e.g. --cluster local:4, or --scheduler tcp://HOST:8786 for a running cluster"
        )
    return int(match.group(1))


def numba_threads(n_workers: int, cores: int | None = None) -> int:
    """Numba threads per local worker: the cores shared out, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // n_workers)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise ConfigError(
            f"--scheduler and --cluster need dask.distributed: {INSTALL_HINT}"
        ) from err
    return distributed


@contextlib.contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Any]:
    """A `distributed.Client` on `spec`; a local cluster (127.0.0.1 only, no dashboard) is
    started here and stopped on exit, whatever happened. An unreachable scheduler is one
    ConfigError line."""
    distributed = _distributed()
    cluster = None
    try:
        if spec.cluster is not None:
            n = local_workers(spec.cluster)
            threads = str(numba_threads(n))
            env = dict.fromkeys(("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"), threads)
            cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, worker_dashboard_address=None, env=env,
                scheduler_kwargs=QUIET_SCHEDULER,
            )  # fmt: skip
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError) as err:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {spec.scheduler!r} "
                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                    "start one with `dask scheduler` (docs/scale-out.md) or check the address"
                ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def n_workers(client: Any) -> int:
    """Workers the scheduler knows now (at least 1, for planning)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_tasks(
    client: Any, function: Callable[..., Any], items: Sequence[Any], *, shared: Any,
    what: str, on_result: Callable[[int, Any], None] | None = None,
    tasks: TaskProgress | None = None, **kwargs: Any,
) -> list[Any]:  # fmt: skip
    """`[function(shared, item, **kwargs) for item in items]`, each item one Dask task, in
    the order of `items` whoever ran it; `shared` (the bars) is scattered once to every
    worker. `on_result(i, result)` runs here as each task finishes (progress, files).

    A lost worker's tasks are rerun by Dask elsewhere. When every worker holding `shared`
    was lost (one worker, or workers that joined after the scatter), Dask cancels the tasks
    that need it: the data is scattered again and the unfinished tasks resubmitted, up to
    `RESCATTERS` times. A task that raised re-raises its error here. Ctrl-C cancels every
    task and raises `StudyInterrupted` with the count of `what` done."""
    distributed = _distributed()
    if not items:
        return []
    token = uuid.uuid4().hex[:8]
    results: list[Any] = [None] * len(items)
    finished: set[int] = set()
    states = (0, 0)  # (running, failed) as the scheduler last said
    asked = -float("inf")
    futures: list[Any] = []
    data = None
    try:
        for attempt in range(RESCATTERS + 1):
            if attempt > 0:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            [data] = client.scatter([shared], broadcast=True, hash=False)  # every worker
            wanted = [i for i in range(len(items)) if i not in finished]
            futures = [
                client.submit(function, data, items[i], key=f"ivybt-{what}-{token}-{attempt}-{i}",
                              pure=False, **kwargs)
                for i in wanted
            ]  # fmt: skip
            index = dict(zip((future.key for future in futures), wanted, strict=True))
            try:
                for future in distributed.as_completed(futures, with_results=False):
                    i = index[future.key]
                    results[i] = future.result()  # a task's own exception is raised here
                    finished.add(i)
                    if on_result is not None:
                        on_result(i, results[i])
                    if tasks is not None:
                        now = time.monotonic()
                        if len(finished) == len(items) or now - asked >= ASK_SCHEDULER_EVERY:
                            states, asked = _task_states(client, token, states), now
                        running = min(states[0], _pending(futures))  # between two questions
                        tasks(len(finished), running, states[1], len(items))
                return results
            except distributed.client.FutureCancelledError:  # its data went with its workers
                if attempt == RESCATTERS:
                    raise
                client.cancel([*futures, data], force=True)
    except (KeyboardInterrupt, SystemError) as err:
        if not is_interrupt(err):
            raise
        client.cancel(futures, force=True)
        raise StudyInterrupted(
            len(finished), len(items), f"{what} tasks", "the cluster's tasks were cancelled"
        ) from err
    except BaseException:
        client.cancel(futures, force=True)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.cancel([data], force=True)
    return results


def _pending(futures: Sequence[Any]) -> int:
    return sum(1 for future in futures if future.status == "pending")


def _task_states(client: Any, token: str, seen: tuple[int, int]) -> tuple[int, int]:
    """(running, failed) tasks of this run by the scheduler's count: running is its
    "processing" state (on a worker now), failed the tasks that lost their worker and were
    rerun (`suspicious`); `seen` when the scheduler does not say."""

    def count(dask_scheduler: Any, token: str) -> tuple[int, int]:  # runs on the scheduler
        mine = [state for key, state in dask_scheduler.tasks.items() if f"-{token}-" in str(key)]
        return (sum(1 for state in mine if state.state == "processing"),
                sum(1 for state in mine if state.suspicious))  # fmt: skip

    try:
        running, failed = client.run_on_scheduler(count, token=token)
        return int(running), max(seen[1], int(failed))
    except Exception:  # progress only: a scheduler may refuse run_on_scheduler
        return seen


def grid_ranges(
    n_combos: int, breaks: Sequence[tuple[int, int]], n_tasks: int
) -> list[tuple[int, int]]:
    """[first, last) ranges of the grid's tasks: the grid's own chunks (whose indicator
    tables fit the memory budget, `ivybt.studies.grid.chunk_plan`; positions in its order of
    the combinations) cut evenly into about `n_tasks` pieces in all, in that order."""
    if n_combos == 0:
        return []
    size = max(1, math.ceil(n_combos / max(n_tasks, 1)))
    ranges = []
    for start, stop in breaks:
        pieces = max(1, math.ceil((stop - start) / size))
        edges = np.linspace(start, stop, pieces + 1).round().astype(np.int64)
        ranges.extend((int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a)
    return ranges


def evaluate_space_tasks(
    client: Any, columns: Mapping[str, Any], space: Any, execution: Any, *,
    periods_per_year: float, first_bar: int, memory_budget: int, reserved_bytes: int,
    signal_columns: Mapping[str, Any] | None, signal_of: Any,
    progress: Callable[[int, int], None] | None = None, tasks: TaskProgress | None = None,
) -> np.ndarray:  # fmt: skip
    """`ivybt.studies.grid.evaluate_space` with its combinations cut into Dask tasks
    (`grid_ranges`); equal bit for bit, since row j depends on combination j only."""
    from ivybt.studies.grid import chunk_breaks

    budget = memory_budget - reserved_bytes
    order, breaks = chunk_breaks(space, columns if signal_columns is None else signal_columns,
                                 len(columns["close"]), budget)  # fmt: skip
    ranges = grid_ranges(len(space), breaks, TASKS_PER_WORKER * n_workers(client))
    if order is None:  # the chunks keep enumeration order
        subsets = [space.subset(slice(a, b)) for a, b in ranges]
    else:  # chunks that tile the space: each task's combinations, then back in place
        subsets = [space.subset(order[a:b]) for a, b in ranges]
    done = 0

    def on_result(i: int, part: np.ndarray) -> None:
        nonlocal done
        done += len(part)
        if progress is not None:
            progress(done, len(space))

    try:
        parts = run_tasks(
            client, _grid_task, subsets,
            shared=(columns, signal_columns, signal_of), what="grid", on_result=on_result,
            tasks=tasks, execution=execution, periods_per_year=periods_per_year,
            first_bar=first_bar, memory_budget=budget,
        )  # fmt: skip
    except StudyInterrupted as err:  # counted in combinations, as a local grid does
        raise StudyInterrupted(
            done, len(space), "combinations", "a grid is written whole, so nothing was written"
        ) from err
    if not parts:
        from ivybt.kernels.metrics import N_METRICS

        return np.empty((0, N_METRICS), dtype=np.float64)
    merged = np.concatenate(parts, axis=0)
    if order is None:
        return merged
    out = np.empty_like(merged)
    out[order] = merged
    return out


def _grid_task(
    bars: tuple[Any, Any, Any], subset: Any, *, execution: Any, periods_per_year: float,
    first_bar: int, memory_budget: int,
) -> np.ndarray:  # fmt: skip
    """One grid task on a worker: the metrics of the combinations in `subset`."""
    from ivybt.studies.grid import evaluate_space

    columns, signal_columns, signal_of = bars
    return evaluate_space(
        columns, subset, execution, periods_per_year=periods_per_year, first_bar=first_bar,
        memory_budget=memory_budget, signal_columns=signal_columns, signal_of=signal_of,
    )  # fmt: skip
