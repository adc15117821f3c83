"""A grid as an Optuna study, so optuna-dashboard shows it next to searches.

Optuna storages slow down with many trials (adding 15,247 trials took about 146 s into
sqlite and 8 s into a journal file here), so the study gets the best `best_k` valid
combinations by the objective plus `sample` combinations spread evenly over the rest; the
full grid stays in grid.parquet. The grid's heatmap is attached with optuna-dashboard's
`save_plotly_graph_object`, and the objective is named with `set_metric_names`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.redact import redact
from ivybt.runs.grid import GridResult
from ivybt.studies.search import MINIMIZED
from ivybt.studies.study_storage import (
    open_storage,
    quiet_optuna,
    storage_url_of,
    stored_together,
)

BEST_K = 1000
EVEN_SAMPLE = 1000


def export_grid_study(
    result: GridResult,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    best_k: int = BEST_K,
    sample: int = EVEN_SAMPLE,
    results_dir: str | Path | None = None,
) -> tuple[str, str]:
    """Write `result` into a new Optuna study; return (study name, storage URL)."""
    objective = result.objective
    url = storage_url_of(storage, results_dir)
    name = study_name or f"{result.config.strategy.name}-{result.data['symbol']}-grid"
    loaded = open_storage(url)
    if name in [summary.study_name for summary in optuna.get_all_study_summaries(loaded)]:
        raise ConfigError(
            f"study {name!r} already exists in {redact(url)}; give another --study-name or "
            "delete it"
        )
    table = result.table
    rows = _chosen_rows(table, objective, best_k, sample)
    distributions = _distributions(result)
    study = optuna.create_study(
        storage=loaded, study_name=name,
        direction="minimize" if objective in MINIMIZED else "maximize",
    )  # fmt: skip
    trials = []
    for index in rows:
        row = table.iloc[index]
        params = {
            param.name: param.kind(row[f"param_{param.name}"])
            for param in result.strategy.params
            if param.name in distributions
        }
        value = float(row[objective])
        ok = bool(row["valid"]) and np.isfinite(value)
        trials.append(
            create_trial(
                params=params, distributions=distributions,
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
                value=value if ok else None,
                user_attrs={metric: float(row[metric]) for metric in METRIC_NAMES},
            )
        )  # fmt: skip
    with quiet_optuna(), stored_together(study):  # one journal append for every trial
        study.add_trials(trials)
    study.set_user_attr("ivybt", {"grid": True, "n_combinations": len(table),
                                  "strategy": result.config.strategy.name,
                                  "data_sha256": result.data["sha256"]})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective])
    _attach_heatmap(study, result)
    return name, url


def _chosen_rows(table: object, objective: str, best_k: int, sample: int) -> list[int]:
    """The best `best_k` valid rows, then `sample` of the others spread evenly."""
    values = table[objective].where(table["valid"])  # type: ignore[index]
    order = np.argsort(-values.fillna(-np.inf).to_numpy(), kind="stable")
    best = order[:best_k]
    rest = np.sort(order[best_k:])
    if len(rest) > sample:
        rest = rest[np.linspace(0, len(rest) - 1, sample).round().astype(int)]
    return sorted(int(i) for i in np.concatenate([best, rest]))


def _distributions(result: GridResult) -> dict[str, BaseDistribution]:
    space = result.space
    out: dict[str, BaseDistribution] = {}
    for k, param in enumerate(result.strategy.params):
        low, high = space.combos[:, k].min(), space.combos[:, k].max()
        if low == high:
            continue
        out[param.name] = (
            IntDistribution(int(low), int(high))
            if param.kind is int
            else FloatDistribution(float(low), float(high))
        )
    return out


def _attach_heatmap(study: optuna.Study, result: GridResult) -> None:
    from optuna_dashboard import save_plotly_graph_object

    from ivybt.report.grid import grid_figures

    figures = grid_figures(
        result.table, param_names=result.param_names, metrics=list(METRIC_NAMES),
        objective=result.objective,
    )  # fmt: skip
    save_plotly_graph_object(study, figures[0][1], graph_object_id="ivybt-grid-heatmap")
