"""Where Optuna studies live, and how a search keeps them whole.

The default storage is a journal file under the results folder (`storage_url_of`); sqlite and
PostgreSQL URLs work too. A search runs its batches in an in-memory copy of the study
(`working_copy`) and stores each finished batch at once (`store_finished`), so the storage
never holds a trial RUNNING because of IvyBT; `recover_interrupted` fails those that other
clients left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ivybt._paths import results_dir

INTERRUPTED = "ivybt_interrupted"
_STORED = "ivybt_stored"  # working study: how many of its trials (in number order) are stored


def storage_url_of(storage: str | None, results: str | Path | None = None) -> str:
    """A storage URL: as given, or the journal file `<results dir>/optuna.journal`."""
    if storage:
        return storage
    path = results_dir(results) / "optuna.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"journal://{path.resolve()}"


def open_storage(url: str) -> Any:
    """Journal files as `journal:///path`; anything else is an RDB URL (sqlite, postgresql)."""
    if url.startswith("journal://"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(url.removeprefix("journal://")))
    return optuna.storages.RDBStorage(url)


def recover_interrupted(study: optuna.Study) -> list[dict[str, Any]]:
    """Fail the trials a killed run left RUNNING; return their parameters, to be redone.

    IvyBT itself never leaves a trial RUNNING in the storage (see `working_copy`); this
    covers studies an earlier version or another ask/tell client left behind.
    """
    redo = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL)
        if trial.params:
            redo.append(dict(trial.params))
    return redo


def working_copy(
    study: optuna.Study, sampler: optuna.samplers.BaseSampler, directions: list[str],
    redo: list[dict[str, Any]],
) -> optuna.Study:  # fmt: skip
    """The study the sampler works on: in memory, holding every finished trial of `study`.

    Asking, setting the 15 metric attributes and telling a trial in a journal file costs 19
    fsynced appends, ~7 ms, as long as TPE's sampling and 50x the kernel
    (benchmarks/optuna_overhead.py). So batches run in memory and each finished batch is
    stored with `add_trials`, one append per trial, every attribute included. A killed or
    interrupted run loses at most the batch in hand, and no trial is ever left RUNNING in
    the storage. `redo` parameters are enqueued first. One process per study: two processes
    sharing a study would each sample without the other's trials in hand.
    """
    working = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), sampler=sampler, directions=directions
    )
    working.add_trials(
        [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    )  # fmt: skip
    working.set_user_attr(_STORED, len(working.trials))
    for params in redo:
        working.enqueue_trial(params, skip_if_exists=False)
    return working


def store_finished(working: optuna.Study, study: optuna.Study) -> None:
    """Add the trials `working` finished since the last call to `study`, in number order.

    Trials are numbered in the order they were created: the copied ones, then the enqueued
    ones, then each batch; a batch always finishes whole, so the finished trials past the
    stored count are exactly the new ones.
    """
    trials = working.get_trials(deepcopy=False)
    stored = working.user_attrs[_STORED]
    new = [t for t in trials[stored:] if t.state.is_finished()]
    study.add_trials(new)
    working.set_user_attr(_STORED, stored + len(new))


def counted(study: optuna.Study) -> int:
    """Finished trials that count towards the target (interrupted ones do not)."""
    return sum(
        1
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED)
    )
