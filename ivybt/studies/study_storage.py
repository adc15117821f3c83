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
  never overshoot and never sample without each other's trials. On PostgreSQL (issue #18,
  `run_shared_batches`) workers evaluate their batches at the same time: "re-read, count,
  ask and reserve" holds a PostgreSQL advisory lock on the study, the asked trials are
  stored RUNNING (the reservation: other workers count them, so the study stops at
  `trials` exactly) and kept alive by Optuna's RDB heartbeat while the batch is evaluated,
  then told. A worker killed mid-batch stops beating: after the grace period the next
  worker fails its trials and Optuna's `RetryFailedTrialCallback` queues their parameters
  again (WAITING), which the next batch claims and evaluates; failed-by-heartbeat trials do
  not count towards `trials` (`is_interrupted`).
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
import threading
import time
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
from ivybt.studies.storage_url import HEARTBEAT_INTERVAL_S, check_storage_url, open_rdb_storage

INTERRUPTED = "ivybt_interrupted"
RESERVED = "ivybt_reserved"  # a trial stored RUNNING while a worker evaluates it (PostgreSQL)
REASON = "ivybt_reason"  # why IvyBT told a trial FAIL or PRUNED (ivybt.studies.search)
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


def param_key(value: Any) -> Any:
    """A parameter value as a key that equal values share (numbers rounded to 12 digits)."""
    return round(float(value), 12) if isinstance(value, int | float) else value


def is_interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial whose evaluation never finished: failed by `recover_interrupted`, or by the
    heartbeat check after its worker died (FAIL, reserved, never told by IvyBT)."""
    attrs = trial.user_attrs
    return bool(attrs.get(INTERRUPTED)) or (
        trial.state == TrialState.FAIL and bool(attrs.get(RESERVED)) and REASON not in attrs
    )


def counted(study: optuna.Study) -> int:
    """Finished trials that count towards the target (interrupted ones do not)."""
    return sum(
        1
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and not is_interrupted(trial)
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


Asked = Callable[[list[optuna.Trial]], None]


def run_batches(
    study: optuna.Study,
    url: str,
    *,
    directions: list[str],
    target: int,
    batch_size: int,
    sampler_for: Callable[[int], optuna.samplers.BaseSampler],
    run_batch: Callable[[optuna.Study, int, Asked | None], None],
    untried: Callable[[optuna.Study], list[dict[str, Any]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run batches until `study` holds `target` counted trials (see the module docstring).

    `sampler_for(n)` makes the sampler of a batch that starts with n finished trials;
    `run_batch(working study, size, asked)` asks, evaluates and tells `size` trials,
    calling `asked(trials)` (when not None) once they are asked and before evaluating them.
    With `untried(working study)` (a small finite space), each batch evaluates the next
    untried combinations instead of sampling, and the search also stops when none is left.
    On a storage with heartbeats (PostgreSQL) the batches of several workers run at once
    (`run_shared_batches`).
    """
    copy_ = WorkingCopy(study, directions)
    if shared_storage(study):
        run_shared_batches(
            study, copy_, target=target, batch_size=batch_size, sampler_for=sampler_for,
            run_batch=run_batch, untried=untried, progress=progress,
        )  # fmt: skip
        return
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
            run_batch(copy_.study, size, None)
            copy_.store()
            done = counted(study)
        if progress is not None:
            progress(min(done, goal), goal)


# --- many workers on one study (PostgreSQL, issue #18) ---------------------------------------

POLL_S = 0.5  # how often a worker waiting for the others' last trials looks again


def shared_storage(study: optuna.Study) -> bool:
    """Whether `study`'s storage records heartbeats (IvyBT's PostgreSQL storages do), so
    several workers can evaluate batches at once (`run_shared_batches`)."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage
    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)


def _engine(study: optuna.Study) -> Any:
    return getattr(study._storage, "_backend", study._storage).engine


class _AdvisoryLock:
    """A PostgreSQL session advisory lock on one study, on a connection of its own: the
    server drops it with the connection when its worker dies."""

    def __init__(self, study: optuna.Study) -> None:
        digest = hashlib.sha256(f"ivybt-study:{study.study_name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "little", signed=True)
        self.engine = _engine(study)
        self.connection: Any = None

    def acquire(self) -> None:
        from sqlalchemy import text

        self.connection = self.engine.connect()
        self.connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})

    def release(self) -> None:
        from sqlalchemy import text

        if self.connection is None:
            return
        connection, self.connection = self.connection, None
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            connection.close()


def _set_user_attrs(storage: Any, trial_id: int, attrs: dict[str, Any]) -> None:
    """Every user attribute of a RUNNING trial in one transaction (a trial's 15 metrics and
    IvyBT's attributes: one round trip instead of 17), through `RDBStorage`'s own statement;
    one `set_trial_user_attr` each where that private helper is missing."""
    backend = getattr(storage, "_backend", storage)
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        write = backend._set_trial_attr_without_commit
    except (ImportError, AttributeError):
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return
    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in attrs.items():
            write(session, models.TrialUserAttributeModel, trial_id, key, value)


def _stale_callback(storage: Any) -> Any:
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None)  # Optuna >= 4.9
    return getter() if getter is not None else storage.get_failed_trial_callback()


class _Reservation:
    """The trials of one batch, stored RUNNING and kept alive by a heartbeat thread while
    the working copy evaluates them, then told (`finish`) or given back (`abandon`)."""

    def __init__(self, study: optuna.Study, run: str, claimed: list[Any]) -> None:
        self.study = study
        self.storage = study._storage
        self.run = run
        self.claimed = claimed  # WAITING retries claimed (now RUNNING), asked first, in order
        self.ids: dict[int, int] = {}  # working trial number -> stored trial id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reserve(self, asked: list[optuna.Trial]) -> None:
        study_id = self.study._study_id
        for k, trial in enumerate(asked):
            if k < len(self.claimed):
                trial_id = self.claimed[k]._trial_id
                self.storage.set_trial_user_attr(trial_id, RUN_ATTR, self.run)
            else:
                template = optuna.trial.create_trial(
                    state=TrialState.RUNNING, params=trial.params,
                    distributions=trial.distributions,
                    user_attrs={RESERVED: True, RUN_ATTR: self.run},
                )  # fmt: skip
                trial_id = self.storage.create_new_trial(study_id, template_trial=template)
            self.storage.record_heartbeat(trial_id)
            self.ids[trial.number] = trial_id
        self._thread = threading.Thread(target=self._beat, name="ivybt-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval() or HEARTBEAT_INTERVAL_S
        while not self._stop.wait(interval):
            for trial_id in list(self.ids.values()):
                with contextlib.suppress(Exception):  # a lost beat: the grace period covers it
                    self.storage.record_heartbeat(trial_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def finish(self, working: optuna.Study) -> list[int]:
        """Tell the stored trials what the working copy found; the working numbers told."""
        self.stop()
        done = []
        for trial in working.get_trials(deepcopy=False):
            trial_id = self.ids.get(trial.number)
            if trial_id is None or not trial.state.is_finished():
                continue
            try:
                _set_user_attrs(self.storage, trial_id, trial.user_attrs)
                self.storage.set_trial_state_values(trial_id, trial.state, trial.values)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # failed as stale meanwhile (a pause past the grace period): redone
            done.append(trial.number)
        return done

    def abandon(self) -> None:
        """Fail the stored trials not told (Ctrl-C, an error) and queue them again."""
        self.stop()
        callback = _stale_callback(self.storage)
        for trial_id in self.ids.values():
            with contextlib.suppress(Exception):
                if self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    if callback is not None:
                        callback(self.study, copy.deepcopy(self.storage.get_trial(trial_id)))


def run_shared_batches(
    study: optuna.Study,
    copy_: WorkingCopy,
    *,
    target: int,
    batch_size: int,
    sampler_for: Callable[[int], optuna.samplers.BaseSampler],
    run_batch: Callable[[optuna.Study, int, Asked | None], None],
    untried: Callable[[optuna.Study], list[dict[str, Any]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """`run_batches` on a storage with heartbeats: workers evaluate at the same time.

    Under the study's advisory lock: fail the stale trials (their parameters come back
    WAITING), re-read the study, count the finished trials and those in flight, claim the
    WAITING ones, ask the rest of the batch from a sampler seeded from the number of trials
    stored (so concurrent batches draw differently), and store the batch RUNNING. Then,
    unlocked, evaluate it with heartbeats and tell it. A worker stops when the study holds
    `target` counted trials; while others' trials are in flight and none is left to ask, it
    waits for them (one may die, and its trials come back).
    """
    lock = _AdvisoryLock(study)
    storage = study._storage
    flying_states = (TrialState.RUNNING, TrialState.WAITING)
    while True:
        lock.acquire()
        reservation: _Reservation | None = None
        try:
            optuna.storages.fail_stale_trials(study)
            copy_.sync()
            trials = study.get_trials(deepcopy=False)
            done = sum(1 for t in trials if t.state.is_finished() and not is_interrupted(t))
            if done >= target:
                return
            flying = [t for t in trials if t.state in flying_states]
            waiting = [t for t in flying if t.state == TrialState.WAITING]
            room = target - done - (len(flying) - len(waiting))
            size = min(batch_size, room)
            todo: list[dict[str, Any]] = []
            if untried is not None and size > 0:

                def key(params: dict[str, Any]) -> tuple[Any, ...]:
                    return tuple(sorted((n, param_key(v)) for n, v in params.items()))

                busy = {key(t.params) for t in flying}  # others' trials in flight
                todo = [c for c in untried(copy_.study) if key(c) not in busy]
                size = min(size, len(waiting) + len(todo))
            if size <= 0:
                if not flying:
                    return  # a small space with nothing left to try
                lock.release()
                time.sleep(POLL_S)
                continue
            claim = TrialState.RUNNING  # False when another worker claimed it first
            claimed = [
                t for t in waiting[:size] if storage.set_trial_state_values(t._trial_id, claim)
            ]
            copy_.study.sampler = sampler_for(len(trials))
            for trial in claimed:
                copy_.study.enqueue_trial(dict(trial.params), skip_if_exists=False)
            for params in todo[: size - len(claimed)]:
                copy_.study.enqueue_trial(params, skip_if_exists=False)
            reservation = _Reservation(study, copy_.run, claimed)
            held = reservation

            def asked(trials: list[optuna.Trial], held: _Reservation = held) -> None:
                held.reserve(trials)
                lock.release()

            run_batch(copy_.study, size, asked)
            told = reservation.finish(copy_.study)
            copy_._settled.update(told)
            reservation = None
        finally:
            if reservation is not None:
                reservation.abandon()
            lock.release()
        if progress is not None:
            progress(min(counted(study), target), target)
