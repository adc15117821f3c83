"""`ivybt.optimize` and `ivybt optimize`: an Optuna search whose trials run in batches.

Each round asks the sampler for a batch of trials, evaluates the whole batch in one call of
the grid kernel, and tells the results back: Optuna only samples, IvyBT only evaluates
(`ivybt.studies.search.search_batch`).

- Exits given by -p (`-p sl=0:0.1:0.01`, docs/stops.md) are searched next to the strategy's
  parameters under their plain names; each trial is evaluated with its own exits, and
  metrics.json lists them apart (`best[].exits`, `SearchResult.exits`).
- Every metric goes into each trial's user attributes; the study's user attributes record the
  strategy, space, data hash, execution settings and the sampler's full settings (Optuna 5
  changed TPE's defaults, so nothing is left to library defaults).
- A study resumes by name: `trials` is the number of trials the study should hold, whoever
  runs them. Batches run in an in-memory copy of the study and are stored whole when
  finished (`study_storage.run_batches`), so a killed run never leaves a trial RUNNING;
  trials another client left RUNNING on a file storage are failed, marked
  `ivybt_interrupted`, and redone. Two processes on one study (a journal or sqlite file)
  take turns batch by batch and stop at `trials` together. On PostgreSQL, workers
  (`workers=N`, `ivybt worker`: `join_study`) evaluate batches at the same time, each batch
  reserved RUNNING under Optuna's heartbeat (docs/storage.md, "Many workers on one study").
- Inadmissible combinations (a constraint fails) are told PRUNED; combinations with fewer than
  `min_trades` trades or an undefined objective are told FAIL. Both count towards `trials`.
- Reproducibility: the same seed, sampler, batch size and data give the same trials, and a
  search stopped (kill, Ctrl-C) and resumed gives the trials of the uninterrupted one: each
  batch's sampler is seeded from the seed and the number of trials stored
  (`study_storage.RESEED_RULE`, recorded with the sampler settings). Within a batch the
  sampler sees no results (TPE's constant liar covers the pending ones), so a different
  batch size gives a different, equally valid, sequence.
- A small space: when the admissible combinations (constraints applied) are no more than
  `trials`, a `SmallSpaceWarning` says so and each untried combination is evaluated once, in
  grid order, instead of sampling; the search stops when every one was tried. The best trials
  (and metrics.json) list each parameter set once.

The run folder of a search (`write_search`): trials.parquet, metrics.json (the best trial or
the Pareto front, each parameter set once), manifest.json (with the sampler's settings and
its resume rule) and report.html (`ivybt.report.search`: the best trial's metrics, Optuna's
history, Pareto front, importance, slice and contour plots, the best trials).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import pandas as pd

from ivybt.bars.timeline import split_specs
from ivybt.config import RunConfig
from ivybt.config_file import study_sections
from ivybt.engine.inputs import RunInputs, prepare_inputs
from ivybt.errors import ConfigError, SmallSpaceWarning, StudyInterrupted, is_interrupt
from ivybt.files import write_json, write_table, write_text
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.redact import redact
from ivybt.runs.folder import open_run_folder, utc_now
from ivybt.runs.grid import check_objective
from ivybt.runs.workers import start_workers
from ivybt.strategies import Strategy, get_strategy
from ivybt.studies.evidence import summary_rows as evidence_rows
from ivybt.studies.grid import Progress
from ivybt.studies.search import (
    MINIMIZED,
    bricks_for,
    objectives_of,
    search_batch,
    search_config,
)
from ivybt.studies.search_space import (
    FINISHED,
    default_ranges_of,
    grid_values,
    make_sampler,
    param_key,
    search_space,
    small_space,
    small_space_message,
    untried_of,
)
from ivybt.studies.space import describe_defaults, exit_names_of
from ivybt.studies.study_identity import (
    check_same_study,
    default_study_name,
    record_study,
    record_worker_config,
    study_identity,
)
from ivybt.studies.study_storage import (
    batch_seed,
    counted,
    open_storage,
    quiet_optuna,
    run_batches,
    storage_url_of,
    study_lock,
)

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures


@dataclass
class SearchResult:
    """A finished search: the study and one row per trial of this study."""

    config: RunConfig
    study: optuna.Study
    storage_url: str
    inputs: RunInputs
    sampler: dict[str, Any] = field(default_factory=dict)  # settings, seed, resume rule

    @property
    def objectives(self) -> tuple[str, ...]:
        return objectives_of(search_config(self.config))

    def trials(self) -> pd.DataFrame:
        """number, state, param_* columns, every metric (NaN where not evaluated)."""
        rows = []
        for trial in self.study.get_trials(deepcopy=False):
            row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
            row.update({f"param_{name}": value for name, value in trial.params.items()})
            row.update({name: trial.user_attrs.get(name, np.nan) for name in METRIC_NAMES})
            rows.append(row)
        return pd.DataFrame(rows)

    def exits(self, trial: optuna.trial.FrozenTrial) -> dict[str, float | int]:
        """The exits `trial` was evaluated with when the search varies them (`-p sl=...`,
        searched or fixed; 0: off), else {}: pass them to `ivybt.backtest` as keywords."""
        strategy = get_strategy(self.config.strategy.name)
        searched, fixed = search_space(strategy, self.config.strategy.space)
        given = {**fixed, **trial.params}
        return {name: given[name] for name in exit_names_of(strategy, [*fixed, *searched])}

    def best_trials(self) -> list[optuna.trial.FrozenTrial]:
        """The best trial (one objective) or the Pareto front (several), each parameter set
        once (its first trial): a sampler may try a combination again, and Optuna lists
        every trial tied for best."""
        return distinct(self.study.best_trials)

    def n_distinct(self) -> int:
        """Distinct parameter sets among the finished trials."""
        return len(distinct(self.study.get_trials(deepcopy=False, states=FINISHED)))

    def evidence(self) -> dict[str, Any] | None:
        """PBO and DSR over the trials evaluated (`ivybt.studies.evidence.search_evidence`)."""
        from ivybt.studies.evidence import search_evidence

        return search_evidence(self)

    def __repr__(self) -> str:
        from ivybt.report.backtest import metrics_text
        from ivybt.report.search import params_text

        head = (
            f"<SearchResult {self.config.strategy.name} on {self.inputs.record['symbol']}: "
            f"study {self.study.study_name!r} ({self.storage_url}), "
            f"{len(self.study.get_trials(deepcopy=False)):,} trials"
        )
        best = self.best_trials()
        if not best:
            return head + ", none complete>"
        if len(self.objectives) > 1:
            return f"{head}; Pareto front of {len(best)} ({', '.join(self.objectives)})>"
        trial = best[0]
        shown = dict.fromkeys((self.objectives[0], "total_return", "max_drawdown", "n_trades"))
        return (
            f"{head}; best #{trial.number}: {params_text(trial.params)}, "
            f"{metrics_text(trial.user_attrs, shown)}>"
        )

    def plot(self) -> ReportFigures:
        """The figures of report.html, as plotly figures: Optuna's optimization history,
        Pareto front, parameter importances, slice and contour plots, the best trials and the
        PBO histogram (`ivybt.report.search.search_sections`; index by position or heading).
        The PBO is recomputed (`evidence()`), as for the report."""
        from ivybt.report.figures import ReportFigures
        from ivybt.report.search import search_sections

        evidence = self.evidence()
        return ReportFigures(search_sections(self.study, self.objectives, evidence=evidence))


def distinct(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The first trial (lowest number) of each parameter set, in number order."""
    seen: set[tuple[tuple[str, Any], ...]] = set()
    out = []
    for trial in sorted(trials, key=lambda t: t.number):
        key = tuple(sorted((name, param_key(value)) for name, value in trial.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(trial)
    return out


def run_search(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
    workers: int = 1,
) -> SearchResult:
    """Run (or resume) the search `config` describes (see the module docstring). With no -p
    range, the declared default ranges are searched (`ivybt.studies.space`): `notice(line)`
    says so before any work (default: logged at INFO). `workers` > 1 runs `workers - 1`
    `ivybt worker` processes on the study next to this one (`ivybt.runs.workers`)."""
    if workers > 1 and data is not None:
        raise ConfigError(
            "--workers needs data the workers can load themselves (a --source); bars passed "
            "in memory stay in this process: run with workers=1"
        )
    with quiet_optuna():
        return _run_search(config, data, cache_dir, results_dir, progress, notice, workers=workers)


def join_study(
    storage: str,
    study_name: str,
    *,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Join the search of `study_name` in `storage` as one more worker (`ivybt worker`): the
    run configuration recorded by `ivybt optimize` (`study_identity.WORKER_ATTR`) is rebuilt,
    the data loaded here from the same source and checked against the recorded SHA-256
    (`ConfigError` when it differs), and batches run until the study holds its trials."""
    from ivybt.studies.storage_url import check_storage_url
    from ivybt.studies.study_identity import worker_config

    url = check_storage_url(storage)
    with quiet_optuna():
        try:
            study = optuna.load_study(study_name=study_name, storage=open_storage(url))
        except KeyError:
            raise ConfigError(
                f"no study {study_name!r} in {redact(url)}; start it with `ivybt optimize ... "
                f"--storage URL --study-name {study_name}`, or list the studies with "
                "`ivybt dashboard URL`"
            ) from None
        config, sha256 = worker_config(study, url)
        inputs = prepare_inputs(config, cache_dir=cache_dir)
        if inputs.record["sha256"] != sha256:
            raise ConfigError(
                f"the bars here differ from those of study {study_name!r}: SHA-256 "
                f"{inputs.record['sha256'][:12]} here, {sha256[:12]} there "
                f"({inputs.record['symbol']}, source {config.data.source}); give this machine "
                "the same bars (the same cache or source and range) and rerun"
            )
        return _run_search(config, None, cache_dir, results_dir, progress, inputs=inputs)


def check_search(
    config: RunConfig,
) -> tuple[type[Strategy], tuple[str, ...], dict[str, Any], dict[str, float | int]]:
    """The checks of a search that need no bars (a one-line `ConfigError` each): the
    objectives, the space (unknown parameters, exits, Renko bar parameters) and the universe
    rule; returns the strategy, the objectives and the searched and fixed parameters.
    `ivybt.runs.batch_file` runs it on every job of a batch before any job starts."""
    study_config = search_config(config)
    if config.portfolio.select_universe is not None:
        raise ConfigError(
            "--select-universe works with backtest, grid and walkforward, not a search (its "
            "trials are not one best combination); run `ivybt walkforward --search optuna "
            "--select-universe ...` to choose symbols per fold"
        )
    strategy = get_strategy(config.strategy.name)
    objectives = objectives_of(study_config)
    for name in objectives:
        check_objective(name)  # a one-line error, with a suggestion
    if len(set(objectives)) < len(objectives):
        raise ConfigError(
            f"--objective is given the same metric twice ({', '.join(objectives)}); give each "
            "objective once"
        )
    split_specs(config, config.strategy.space)  # -p box=... needs --bars renko
    searched, fixed = search_space(strategy, config.strategy.space)
    return strategy, objectives, searched, fixed


def _run_search(
    config: RunConfig,
    data: pd.DataFrame | None,
    cache_dir: str | Path | None,
    results_dir: str | Path | None,
    progress: Progress | None,
    notice: Callable[[str], None] | None = None,
    *,
    workers: int = 1,
    inputs: RunInputs | None = None,
) -> SearchResult:
    study_config = search_config(config)
    strategy, objectives, searched, fixed = check_search(config)
    defaulted = default_ranges_of(strategy, config.strategy.space)
    if defaulted:
        size = math.prod(len(grid_values(dist)) for dist in searched.values())
        (notice or logging.getLogger(__name__).info)(
            f"{describe_defaults(strategy, defaulted)}; {size:,} combinations before constraints"
        )
    if inputs is None:
        inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    signals = bricks_for(config, inputs, start=inputs.window.start or 0)
    storage_url = storage_url_of(study_config.storage, results_dir)
    sampler, sampler_settings = make_sampler(study_config, searched)
    directions = ["minimize" if name in MINIMIZED else "maximize" for name in objectives]
    identity = study_identity(config, inputs, objectives)
    name = study_config.study_name or default_study_name(config, inputs, identity)
    with study_lock(storage_url, name):  # processes starting together create it once
        study = optuna.create_study(
            storage=open_storage(storage_url), study_name=name, directions=directions,
            sampler=sampler, load_if_exists=True,
        )  # fmt: skip
        check_same_study(study, identity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))
        record_study(study, config, inputs, sampler_settings, identity)
    target = study_config.trials or 100
    if study_config.sampler == "grid":  # the grid sampler stops the study when exhausted
        target = min(target, math.prod(len(v) for v in sampler_settings["search_space"].values()))
    record_worker_config(study, config, inputs, target)
    combos = small_space(strategy, searched, fixed, config.strategy.constraints, target)
    if combos is not None and study_config.sampler != "grid":  # the grid sampler: as asked
        warnings.warn(SmallSpaceWarning(small_space_message(len(combos), target)), stacklevel=3)
    helpers = (
        start_workers(storage_url, name, workers - 1, cache_dir=cache_dir, results_dir=results_dir)
        if workers > 1
        else None
    )
    try:
        run_batches(
            study, storage_url, directions=directions, target=target,
            batch_size=study_config.batch_size,
            sampler_for=lambda n: make_sampler(
                study_config.model_copy(update={"seed": batch_seed(study_config.seed, n)}),
                searched,
            )[0],
            run_batch=lambda working, size, asked: search_batch(
                working, strategy, searched, fixed, inputs, config, size, signals, asked
            ),
            untried=None if combos is None else untried_of(combos),
            progress=progress,
        )  # fmt: skip
        if helpers is not None:
            helpers.wait()
    except (KeyboardInterrupt, SystemError) as err:  # SystemError: Ctrl-C inside a kernel
        if not is_interrupt(err):
            raise
        raise StudyInterrupted(
            counted(study), target, "trials",
            f"they are kept in study {study.study_name!r}; rerun the same command to resume",
        ) from err  # fmt: skip
    finally:
        if helpers is not None:
            helpers.stop()
    return SearchResult(config, study, storage_url, inputs, sampler_settings)


def optimize(
    strategy: str | type[Strategy] | None = None,
    *,
    symbol: str | None = None,
    symbols: str | Sequence[str] | None = None,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    params: Mapping[str, object] | None = None,
    constraints: tuple[str, ...] | None = None,
    objectives: tuple[str, ...] | None = None,
    trials: int | None = None,
    sampler: str | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    min_trades: int | None = None,
    evidence: bool | None = None,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    portfolio: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    **run_options: Any,
) -> SearchResult:
    """Search `params` specs of `strategy` with Optuna; mirrors `ivybt optimize`.

    `run_options` are those of `ivybt.backtest` (interval, start, end, source, costs, ...);
    `symbols` and `portfolio` search a universe traded in one account, as for
    `ivybt.backtest` (docs/portfolio.md). A
    keyword left at None takes the file's value, else the model's default (objectives
    ("sharpe",), trials 100, sampler "tpe", batch_size 32, min_trades 1, evidence True: PBO
    and DSR, like `--evidence/--no-evidence`). `config` names a YAML file or a run's
    manifest.json; keywords given override its fields.
    """
    from ivybt.config import build_config
    from ivybt.runs.backtest import api_sections, config_sections

    space = None if params is None else {name: str(spec) for name, spec in params.items()}
    study = {
        "objective": objectives[0] if objectives else None, "objectives": objectives,
        "trials": trials, "sampler": sampler, "seed": seed, "batch_size": batch_size,
        "storage": storage, "study_name": study_name, "min_trades": min_trades,
        "evidence": evidence,
    }  # fmt: skip
    sections = config_sections(
        strategy, symbol=symbol, symbols=symbols, data=data, **run_options,
        extra={"strategy": {"space": space, "constraints": constraints}, "study": study,
               "portfolio": dict(portfolio or {})},
    )  # fmt: skip
    sections = api_sections(sections, config)
    sections = study_sections(sections, "search", config)
    return run_search(
        build_config(**sections), data=data, cache_dir=cache_dir, results_dir=results_dir
    )


def search_headline(result: SearchResult) -> dict[str, Any]:
    """metrics.json: where the study lives, its size (trials, distinct parameter sets), and
    its best trial(s) with every metric, each parameter set once."""
    study = result.study
    return {
        "strategy": result.config.strategy.name,
        "symbol": result.inputs.record["symbol"],
        "study_name": study.study_name,
        "storage": result.storage_url,
        "objectives": list(result.objectives),
        "n_trials": len(study.trials),
        "n_distinct": result.n_distinct(),
        "best": [_best_entry(result, trial) for trial in result.best_trials()],
        "overfitting": result.evidence(),
    }


def _best_entry(result: SearchResult, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One best trial in metrics.json: its parameters, its exits when the search varies them
    (as a grid's `best.exits`), its objective values and every metric."""
    exits = result.exits(trial)
    return {
        "number": trial.number,
        "params": {k: v for k, v in trial.params.items() if k not in exits},
        **({"exits": exits} if exits else {}),
        "values": trial.values,
        "metrics": {k: v for k, v in trial.user_attrs.items() if not k.startswith("ivybt")},
    }


def write_search(
    result: SearchResult,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    results_dir: str | Path | None = None,
    command_line: list[str] | None = None,
) -> Path:
    """Write the search's run folder and return it."""
    from ivybt.report.html import bars_label
    from ivybt.report.search import search_report_html

    headline = search_headline(result)
    html = search_report_html(
        result.study, result.objectives,
        title=f"{result.config.strategy.name} search on {result.inputs.record['symbol']}"
        f"{bars_label(result.config.data)}",
        storage_url=result.storage_url, n_distinct=headline.get("n_distinct"),
        evidence=headline["overfitting"], summary=evidence_rows(headline["overfitting"]),
        notes=(headline["overfitting"] or {}).get("readings", []),
    )  # fmt: skip
    extra = {"study_name": result.study.study_name, "storage": result.storage_url,
             "sampler": result.sampler}  # fmt: skip
    with open_run_folder(
        "optimize", result.config, data=result.inputs.record, started=utc_now(), folder=out,
        results_dir=results_dir, overwrite=overwrite, command_line=command_line, extra=extra,
    ) as target:  # fmt: skip
        write_table(target / "trials.parquet", result.trials())
        write_json(target / "metrics.json", headline)
        write_text(target / "report.html", html)
    return target
