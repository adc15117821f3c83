"""Optuna search of each walk-forward fold's in-sample window (`--search optuna`).

One study per fold, named `<run folder name>-fold-<k>` (three digits) in the run's storage
(default: the journal file `results/optuna.journal`), so every fold's search shows in
`ivybt dashboard` next to the others; each study's user attributes record the fold's
windows and the run folder. The search runs exactly as `ivybt optimize` does (batched
ask/tell, in-memory working copy, resumable by name) on the bars up to the fold's IS end,
trading only the IS window. The sampler's seed is `--seed` + the fold number (when a seed is
given), so folds do not replay one another's random draws; within a fold each batch is
seeded from it and the trials stored (`study_storage.RESEED_RULE`), so a fold interrupted and
resumed gives the trials of an uninterrupted one. Optuna's own log lines stay out of the
terminal (`study_storage.quiet_optuna`). When the admissible space is no larger than
`--trials`, one warning says so and every fold evaluates each combination once (as
`--search grid` would) instead of sampling.

The combinations the search tried are then evaluated on the OOS window too; in
surface.parquet they keep their row in the whole grid space, so surfaces line up across
folds (cells no fold's search tried stay empty).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna

from ivybt.config import RunConfig
from ivybt.engine.inputs import RunInputs
from ivybt.errors import ConfigError, SmallSpaceWarning
from ivybt.strategies import Strategy
from ivybt.studies.search import bricks_for, search_batch
from ivybt.studies.search_space import (
    make_sampler,
    param_key,
    search_space,
    small_space,
    small_space_message,
    untried_of,
)
from ivybt.studies.space import ParamSpace
from ivybt.studies.study_storage import (
    batch_seed,
    open_storage,
    quiet_optuna,
    run_batches,
    storage_url_of,
    study_lock,
)
from ivybt.studies.windows import Fold

FoldSearch = Callable[[Fold, Path], tuple[ParamSpace, np.ndarray]]


def fold_searcher(
    config: RunConfig, inputs: RunInputs, strategy: type[Strategy], space: ParamSpace,
    results_dir: str | Path | None,
) -> FoldSearch:  # fmt: skip
    """`search(fold, run_folder)` -> (the combinations tried, their rows in `space`)."""
    study = config.study
    assert study is not None
    if study.trials is None:
        raise ConfigError("--search optuna needs --trials N (trials per fold), e.g. --trials 200")
    searched, fixed = search_space(strategy, config.strategy.space)
    search_config = config.model_copy(
        update={"study": study.model_copy(update={"kind": "search", "objectives": ()})}
    )
    url = storage_url_of(study.storage, results_dir)
    rows = {tuple(param_key(v) for v in row): k for k, row in enumerate(space.combos.tolist())}
    names = space.names  # the strategy's parameters, then the exits the space varies
    combos = small_space(strategy, searched, fixed, config.strategy.constraints, study.trials)
    if combos is not None and study.sampler != "grid":
        warnings.warn(SmallSpaceWarning(small_space_message(len(combos), study.trials)),
                      stacklevel=2)  # fmt: skip
    fold_study = search_config.study
    assert fold_study is not None

    def search(fold: Fold, folder: Path) -> tuple[ParamSpace, np.ndarray]:
        with quiet_optuna():
            return _search(fold, folder)

    def _search(fold: Fold, folder: Path) -> tuple[ParamSpace, np.ndarray]:
        seed = None if study.seed is None else study.seed + fold.number
        sampler, settings = make_sampler(fold_study.model_copy(update={"seed": seed}), searched)
        name = f"{folder.name}-fold-{fold.number:03d}"
        with study_lock(url, name):
            stored = optuna.create_study(
                storage=open_storage(url), study_name=name, direction="maximize",
                sampler=sampler, load_if_exists=True,
            )  # fmt: skip
            if "ivybt" not in stored.user_attrs:
                stored.set_user_attr("ivybt", {
                    "walkforward": str(folder), "fold": fold.number,
                    "objective": study.objective, "is": [fold.is_start, fold.is_end],
                    "oos": [fold.oos_start, fold.oos_end],
                    "data_sha256": inputs.record["sha256"], "sampler": settings,
                })  # fmt: skip
        fold_inputs = dataclasses.replace(
            inputs.upto(fold.is_end), window=slice(fold.is_start, fold.is_end),
        )  # fmt: skip
        signals = bricks_for(config, fold_inputs, start=fold.is_start)
        run_batches(
            stored, url, directions=["maximize"], target=study.trials,  # type: ignore[arg-type]
            batch_size=study.batch_size,
            sampler_for=lambda n: make_sampler(
                fold_study.model_copy(update={"seed": batch_seed(seed, n)}), searched
            )[0],
            run_batch=lambda working, size, asked: search_batch(
                working, strategy, searched, fixed, fold_inputs, search_config, size, signals,
                asked,
            ),
            untried=None if combos is None else untried_of(combos),
        )  # fmt: skip
        tried = {  # matched to the space's rows at 12 digits (a sampled 0.1 x 3 is 0.3)
            tuple(param_key(float({**fixed, **t.params}[name])) for name in names)
            for t in stored.get_trials(deepcopy=False) if t.state.is_finished() and t.params
        }  # fmt: skip
        ids = np.array(sorted(rows[c] for c in tried if c in rows), dtype=np.int64)
        return space.subset(ids), ids

    return search
