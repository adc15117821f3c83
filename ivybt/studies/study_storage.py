"""Where Optuna studies live, and how a search keeps them whole, resumable and shared.

The default storage is a journal file under the results folder (`storage_url_of`); sqlite and
PostgreSQL URLs work too. Journal files are opened through `ivybt.studies.journal` (torn
tails repaired, a lock that dies with its holder, one append per batch).

`run_batches` runs a search's batches in an in-memory copy of the study (`WorkingCopy`) and
stores each finished batch at once, whole, so the storage never holds a trial RUNNING
because of IvyBT; `recover_interrupted` fails those other clients left behind. Before each
batch it re-reads the stored study, so:

- **`trials` is the size of the study, whoever runs it.** The trials other processes stored
  are added to the working copy (the sampler sees them) and count towards the target. For
  file storages (journal, sqlite) "re-read, ask, evaluate, store" holds a per-study lock
  across processes (`study_lock`), so two processes on one study take turns batch by batch,
  never overshoot and never sample without each other's trials. On a server database
  (PostgreSQL) batches are not serialized: each process re-reads and caps its batch at what
  is missing, so a study ends with at most (processes - 1) x batch size extra trials, and
  concurrent batches do not see each other's pending trials (issue #18 adds workers).
- **A resumed search reproduces the uninterrupted one.** The sampler of each batch is made
  afresh, seeded from the run's seed and the number of trials the study holds when the batch
  starts (`batch_seed`). Batches are stored whole, so after a kill, a Ctrl-C (the batch in
  hand is dropped) or `trials` reached at a batch boundary, the rerun makes exactly the
  trials the uninterrupted run would have made, for every sampler (tpe, random, cmaes,
  nsga2, grid: their state is the stored trials and their attributes). The rule is recorded
  in the study's sampler settings (`RESEED_RULE`) and the run manifest. Two processes
  sharing a file-storage study make exactly the trials one process alone would.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock
import optuna
from optuna.trial import TrialState

from ivybt import _paths
from ivybt.errors import IvyBTWarning, StorageError
from ivybt.studies.journal import JournalBackend, lock_folder
from ivybt.studies.storage_url import check_storage_url, open_rdb_storage

INTERRUPTED = "ivybt_interrupted"
RUN_ATTR = "ivybt_run"  # the run (one process's search) that stored a trial
RESEED_RULE = (
    "each batch's sampler is made afresh with seed = first 4 bytes (little-endian) of "
    "SHA-256('<seed>:<n>'), n = finished trials in the study when the batch starts; "
    "batches are stored whole, so a resumed search reproduces the uninterrupted one"
)
_OPTUNA_ROOT = str(Path(optuna.__file__).resolve().parent) + os.sep
optuna_logger = logging.getLogger("ivybt.optuna")


def storage_url_of(storage: str | None, results_dir: str | Path | None = None) -> str:
    """A storage URL: as given (checked, `ivybt.studies.storage_url`), or the journal file
    `<results dir>/optuna.journal`."""
    if storage:
        return check_storage_url(storage)
    path = _paths.results_dir(results_dir) / "optuna.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"journal://{path.resolve()}"


def open_storage(url: str) -> Any:
    """Journal files as `journal:///path`; anything else is an RDB URL (sqlite, postgresql).

    A journal's torn tail (or an older version's damage) is repaired when it is opened, with
    one warning (`ivybt.studies.journal`). A new sqlite file is created under a lock, so two
    processes creating it at once do not collide ("table ... already exists").
    """
    if url.startswith("journal://"):
        return _open_journal(url.removeprefix("journal://"))
    database = storage_file(url)
    creating = (
        contextlib.nullcontext()
        if database is None
        else filelock.FileLock(str(lock_folder(database) / "storage.lock"))
    )
    with creating:
        return _open_rdb(url)


def _open_rdb(url: str) -> Any:
    return open_rdb_storage(url)  # one-line errors, the password kept there, pool closed


def _open_journal(path: str) -> Any:
    from optuna.storages import JournalStorage

    backend = JournalBackend(path)
    backend.repair_tail()
    try:
        return JournalStorage(backend)
    except ValueError as err:  # JSONDecodeError, "Invalid log format": a damaged record
        if not backend.repair():
            raise StorageError(
                f"the Optuna journal {path} cannot be read ({err}); move it aside and rerun"
            ) from err
    return JournalStorage(backend)


def storage_file(url: str) -> Path | None:
    """The file behind a journal or sqlite URL (None for server databases and memory)."""
    if url.startswith("journal://"):
        return Path(url.removeprefix("journal://"))
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # a malformed URL: RDBStorage says what is wrong with it
        return None
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri"):
        return None
    return Path(database)


def study_lock(url: str, study_name: str) -> contextlib.AbstractContextManager[object]:
    """A cross-process lock on one study of a file storage (journal or sqlite); a no-op for
    server databases, whose clients share studies without it (see the module docstring)."""
    path = storage_file(url)
    if path is None:
        return contextlib.nullcontext()
    digest = hashlib.sha256(study_name.encode()).hexdigest()[:16]
    return filelock.FileLock(str(lock_folder(path) / f"study-{digest}.lock"))


def open_study(url: str, study_name: str, **create: Any) -> optuna.Study:
    """Create or load `study_name` in `url` (`optuna.create_study(..., load_if_exists=True)`),
    under the study's lock, so processes starting together create it once."""
    with study_lock(url, study_name):
        return optuna.create_study(
            storage=open_storage(url), study_name=study_name, load_if_exists=True, **create
        )


@contextlib.contextmanager
def stored_together(study: optuna.Study) -> Iterator[None]:
    """Everything written to `study` in the block goes to a journal file in one append: a
    batch of trials is stored whole or not at all (other storages: one write each)."""
    backend = getattr(study._storage, "_backend", None)
    with backend.together() if isinstance(backend, JournalBackend) else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """IvyBT prints its own lines only: Optuna's log records and the warnings raised in its
    code go to the `ivybt.optuna` logger at debug level (`ivybt -vv` shows them)."""
    root = logging.getLogger("optuna")
    saved = root.handlers[:], root.propagate
    root.handlers = [_ToDebug()]
    root.propagate = False
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if _raised_by_optuna() and not issubclass(category, IvyBTWarning):
            optuna_logger.debug("%s: %s", category.__name__, message)
        else:
            previous(message, category, *args, **kw)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
        root.handlers, root.propagate = saved


def _raised_by_optuna() -> bool:
    """Whether the warning being shown was raised in Optuna's code: the first frame below
    `warnings` (and this module's `show`) is Optuna's."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename == warnings.__file__:
            continue
        return frame.filename.startswith(_OPTUNA_ROOT)
    return False


class _ToDebug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        optuna_logger.debug("%s", record.getMessage())


def recover_interrupted(study: optuna.Study) -> list[dict[str, Any]]:
    """Fail the trials a killed run left RUNNING; return their parameters, to be redone.

    IvyBT itself never leaves a trial RUNNING in the storage (see `WorkingCopy`); this
    covers studies an earlier version or another ask/tell client left behind.
    """
    redo = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL)
        if trial.params:
            redo.append(dict(trial.params))
    return redo


def counted(study: optuna.Study) -> int:
    """Finished trials that count towards the target (interrupted ones do not)."""
    return sum(
        1
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED)
    )


def batch_seed(seed: int | None, n_trials: int) -> int | None:
    """The seed of the sampler of a batch that starts with `n_trials` finished trials."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{n_trials}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class WorkingCopy:
    """The study the sampler works on: in memory, holding every finished trial of `stored`.

    Asking, setting the 15 metric attributes and telling a trial in a journal file costs 19
    fsynced appends, ~7 ms, as long as TPE's sampling and 50x the kernel
    (benchmarks/optuna_overhead.py). So batches run in memory and each finished batch is
    stored in one append (`stored_together`), every attribute included. A killed or
    interrupted run loses at most the batch in hand, and no trial is ever left RUNNING in the
    storage. `sync` adds the trials other processes stored; each trial IvyBT stores carries
    the run that made it (`RUN_ATTR`).
    """

    def __init__(self, stored: optuna.Study, directions: list[str]) -> None:
        self.stored = stored
        self.study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            sampler=optuna.samplers.RandomSampler(seed=0),  # replaced before each batch
            directions=directions,
        )
        self.run = uuid.uuid4().hex[:12]
        self._seen: set[int] = set()  # stored trial numbers already handled
        self._settled: set[int] = set()  # working trial numbers stored or copied from storage

    def sync(self) -> None:
        """Copy in the stored finished trials the working copy lacks (other processes')."""
        new = []
        for trial in self.stored.get_trials(deepcopy=False):
            if trial.number in self._seen or not trial.state.is_finished():
                continue
            self._seen.add(trial.number)
            if trial.user_attrs.get(RUN_ATTR) != self.run:
                new.append(trial)
        first = len(self.study.get_trials(deepcopy=False))
        self.study.add_trials(new)
        self._settled.update(range(first, first + len(new)))

    def n_finished(self) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.state.is_finished())

    def store(self) -> None:
        """Store the trials finished since the last call, in number order, in one append."""
        new = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.state.is_finished() and t.number not in self._settled
        ]
        marked = []
        for trial in new:
            mine = copy.deepcopy(trial)
            mine.set_user_attr(RUN_ATTR, self.run)
            marked.append(mine)
        with stored_together(self.stored):
            self.stored.add_trials(marked)
        self._settled.update(t.number for t in new)


def run_batches(
    study: optuna.Study,
    url: str,
    *,
    directions: list[str],
    target: int,
    batch_size: int,
    sampler_for: Callable[[int], optuna.samplers.BaseSampler],
    run_batch: Callable[[optuna.Study, int], None],
    untried: Callable[[optuna.Study], list[dict[str, Any]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run batches until `study` holds `target` counted trials (see the module docstring).

    `sampler_for(n)` makes the sampler of a batch that starts with n finished trials;
    `run_batch(working study, size)` asks, evaluates and tells `size` trials. With
    `untried(working study)` (a small finite space), each batch evaluates the next untried
    combinations instead of sampling, and the search also stops when none is left.
    """
    copy_ = WorkingCopy(study, directions)
    redo: list[dict[str, Any]] | None = None
    lock = study_lock(url, study.study_name)
    while True:
        with lock:
            if redo is None:
                redo = recover_interrupted(study)
                if untried is not None:
                    redo = []  # the untried combinations include the interrupted ones
            copy_.sync()
            done = counted(study)
            if done >= target:
                return
            goal = target
            size = min(batch_size, target - done)
            copy_.study.sampler = sampler_for(copy_.n_finished())
            for params in redo:
                copy_.study.enqueue_trial(params, skip_if_exists=False)
            redo = []
            if untried is not None:
                todo = untried(copy_.study)
                if not todo:
                    return
                goal = min(target, done + len(todo))
                size = min(size, len(todo))
                for params in todo[:size]:
                    copy_.study.enqueue_trial(params, skip_if_exists=False)
            run_batch(copy_.study, size)
            copy_.store()
            done = counted(study)
        if progress is not None:
            progress(min(done, goal), goal)
