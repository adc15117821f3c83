"""The report of an Optuna search: the best trial and its metrics, then Optuna's own plots
(`optuna.visualization`) in the reports' light style, the best trials, the PBO histogram.

`search_sections` draws every figure of report.html; `SearchResult.plot()` returns the same.
Each trial's metrics come from its user attributes (`ivybt.studies.search` stores every
metric there). Parameter importances use Optuna's default evaluator, PED-ANOVA (it ships with
Optuna and needs neither scikit-learn nor the network), on the trials that finished.
optuna and plotly are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ivybt.report.backtest import format_metric
from ivybt.report.evidence import evidence_figures
from ivybt.report.html import LIGHT_TEMPLATE, render_html
from ivybt.report.table import table_figure

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

TOP_N = 20  # rows of the best-trials table
MIN_TRIALS = 2  # complete trials the importance, slice and contour plots need
SUMMARY_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                   "n_trades", "win_rate", "profit_factor", "exposure")  # fmt: skip
TABLE_METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                 "calmar", "n_trades", "win_rate", "profit_factor", "exposure")  # fmt: skip
_OBJECTIVE_FILL = "#fff7d6"


def search_sections(
    study: optuna.Study,
    objectives: Sequence[str],
    *,
    evidence: Mapping[str, Any] | None = None,
) -> list[tuple[str, go.Figure]]:
    """Every (heading, figure) of the search report, in its order.

    1. Optimization history of the first objective (Optuna's plot).
    2. With several objectives: the Pareto front.
    3. With at least `MIN_TRIALS` complete trials: Optuna's parameter importances (PED-ANOVA:
       how much each parameter matters for reaching the top 10% of trials; one bar per
       objective, each in its own direction), slice plot and, with two or more searched
       parameters, the contour plot of the two most important ones (first objective; Optuna
       orders its axes by name, and the heading says which is across).
    4. The best trials: the `TOP_N` best complete trials by the first objective, or the
       Pareto front, each parameter set once, with their metrics.
    5. The PBO histogram when `evidence` has one.

    Optuna's figures keep their traces and are restyled with the reports' light template
    (`ivybt.report.html.LIGHT_TEMPLATE`) instead of plotly's grey default.
    """
    with _quiet_optuna():
        return _search_sections(study, list(objectives), evidence)


def _search_sections(
    study: optuna.Study, names: list[str], evidence: Mapping[str, Any] | None
) -> list[tuple[str, go.Figure]]:
    import optuna.visualization as views

    target, target_name = _target(study, names)
    history = views.plot_optimization_history(study, target=target, target_name=target_name)
    sections: list[tuple[str, Any]] = [(f"Optimization history ({names[0]})", history)]
    if len(names) > 1:
        sections.append(("Pareto front", views.plot_pareto_front(study, target_names=names)))
    complete = _complete(study)
    searched = _searched_params(complete)
    if len(complete) >= MIN_TRIALS and searched:
        importances, order = _importances(study, names)
        sections.append(("Parameter importances (PED-ANOVA)", importances))
        sections.append((f"Slice plot ({names[0]})", views.plot_slice(
            study, params=searched, target=target, target_name=target_name)))  # fmt: skip
        if len(searched) >= 2:
            pair = (order + [p for p in searched if p not in order])[:2]
            contour = views.plot_contour(study, params=pair, target=target,
                                         target_name=target_name)  # fmt: skip
            across, up = contour.layout.xaxis.title.text, contour.layout.yaxis.title.text
            sections.append((f"Contour plot: {across} × {up} ({names[0]})", contour))
    sections.append((_best_heading(names), _best_table(study, names)))
    for _, figure in sections:
        _restyle(figure)
    return sections + evidence_figures(evidence)


def search_summary_rows(
    study: optuna.Study, objectives: Sequence[str], *, storage_url: str, n_distinct: int | None
) -> list[tuple[str, str]]:
    """The summary table: study, trial counts, objectives, the best parameters as
    ``name=value`` and the best trial's metrics formatted as in every report (for several
    objectives, the Pareto front's size and its first trial)."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    states = {state: sum(t.state == state for t in trials) for state in optuna.trial.TrialState}
    counts = ", ".join(f"{n:,} {state.name.lower()}" for state, n in states.items() if n)
    distinct = f"; {n_distinct:,} distinct parameter sets" if n_distinct is not None else ""
    directions = [d.name.lower() for d in study.directions]
    goals = ", ".join(f"{n} ({d})" for n, d in zip(objectives, directions, strict=True))
    rows = [
        ("Study", f"{study.study_name} ({storage_url})"),
        ("Trials", f"{len(trials):,} ({counts}){distinct}" if trials else "0"),
        ("Objectives", goals),
    ]
    best = _best_trials(study, list(objectives))
    if not best:
        return [*rows, ("Best trial", "none: no trial completed")]
    if len(objectives) > 1:
        rows.append(("Pareto front", f"{len(best):,} distinct parameter sets"))
    first = best[0]
    label = "Best trial" if len(objectives) == 1 else "First Pareto trial"
    rows.append((label, f"#{first.number}: {params_text(first.params)}"))
    rows.extend(
        (name, format_metric(name, first.user_attrs[name]))
        for name in dict.fromkeys([*objectives, *SUMMARY_METRICS])
        if name in first.user_attrs
    )
    return rows


def search_report_html(
    study: optuna.Study,
    objectives: Sequence[str],
    *,
    title: str,
    storage_url: str,
    n_distinct: int | None = None,
    evidence: Mapping[str, Any] | None = None,
    summary: Iterable[tuple[str, str]] = (),
    notes: Iterable[str] = (),
) -> str:
    """report.html of a search as one offline page; nothing is written. `summary` rows (the
    evidence's) follow `search_summary_rows`."""
    rows = search_summary_rows(study, objectives, storage_url=storage_url, n_distinct=n_distinct)
    notes = list(notes)
    if len(_complete(study)) < MIN_TRIALS:
        notes.append(
            f"Parameter importances, slice and contour plots need {MIN_TRIALS} or more "
            "complete trials; this study has fewer."
        )
    return render_html(
        title,
        summary_rows=[*rows, *summary],
        sections=search_sections(study, objectives, evidence=evidence),
        notes=[
            f"Open the study with `ivybt dashboard {storage_url}`.",
            "Parameter importances: Optuna's PED-ANOVA evaluator, how much each parameter "
            "decides whether a trial reaches the top 10% of the completed trials (in each "
            "objective's direction); importances sum to 1 per objective.",
            *notes,
        ],
    )


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's own log lines ("There are no complete trials.") stay out of the terminal
    while its figures are drawn; IvyBT says what it left out in the page's notes."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def params_text(params: Mapping[str, Any]) -> str:
    """ "fast=5, slow=189": parameters as typed on the command line (not a Python dict)."""
    return ", ".join(f"{name}={_value(value)}" for name, value in params.items())


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value)}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _target(study: optuna.Study, names: list[str]) -> tuple[Any, str]:
    """Optuna's `target` and `target_name` for plots of the first objective."""
    if len(study.directions) == 1:
        return None, names[0]
    return (lambda trial: trial.values[0]), names[0]


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return list(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _searched_params(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """Parameters that take two or more values among `trials`, in first-seen order."""
    values: dict[str, set[Any]] = {}
    for trial in trials:
        for name, value in trial.params.items():
            values.setdefault(name, set()).add(value)
    return [name for name, seen in values.items() if len(seen) > 1]


def _importances(study: optuna.Study, names: list[str]) -> tuple[Any, list[str]]:
    """Optuna's importance plot, one trace per objective, and the parameters in order of
    importance for the first objective.

    PED-ANOVA ranks trials by `target` assuming lower is better (it warns so when a target
    is given); each objective's target is negated when it is maximised, so "top 10%" means
    best in that objective's direction.
    """
    import optuna.visualization as views
    from optuna.study import StudyDirection

    figure = None
    order: list[str] = []
    for k, (name, direction) in enumerate(zip(names, study.directions, strict=True)):
        sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
            warnings.filterwarnings("ignore", message="Target and region quantiles")
            one = views.plot_param_importances(
                study, target=lambda t, k=k, sign=sign: sign * t.values[k], target_name=name
            )
        if k == 0:
            figure = one
            trace = one.data[0] if one.data else None
            if trace is not None:  # bars run from the least to the most important
                order = [str(p) for p in reversed(list(trace.y))]
        else:
            for trace in one.data:
                figure.add_trace(trace)  # type: ignore[union-attr]
    if len(names) > 1 and figure is not None:
        figure.update_layout(barmode="group", showlegend=True)
        for trace, name in zip(figure.data, names, strict=False):
            trace.name = name
    return figure, order


def _best_trials(study: optuna.Study, names: list[str]) -> list[optuna.trial.FrozenTrial]:
    """The best complete trials, each parameter set once (its first trial): the `TOP_N`
    best by the first objective, or the Pareto front (by trial number)."""
    if len(names) > 1:
        trials = sorted(study.best_trials, key=lambda t: t.number)
    else:
        sign = 1.0 if study.direction.name == "MAXIMIZE" else -1.0
        complete = [t for t in _complete(study) if t.value is not None and math.isfinite(t.value)]
        trials = sorted(complete, key=lambda t: (-sign * t.value, t.number))  # type: ignore[operator]
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for trial in trials:
        key = tuple(sorted((name, repr(value)) for name, value in trial.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(trial)
    return out if len(names) > 1 else out[:TOP_N]


def _best_heading(names: list[str]) -> str:
    if len(names) > 1:
        return f"Pareto front trials ({', '.join(names)}), each parameter set once"
    return f"Best {TOP_N} trials by {names[0]}, each parameter set once"


def _best_table(study: optuna.Study, names: list[str]) -> Any:
    trials = _best_trials(study, names)
    params = list(dict.fromkeys(p for t in trials for p in t.params))
    metrics = list(dict.fromkeys([*names, *TABLE_METRICS]))
    header = ["rank", "trial", *params, *metrics]
    columns: list[list[str]] = [
        [str(k + 1) for k in range(len(trials))],
        [f"#{t.number}" for t in trials],
    ]
    columns += [[_value(t.params[p]) if p in t.params else "" for t in trials] for p in params]
    columns += [[format_metric(m, t.user_attrs.get(m)) for t in trials] for m in metrics]
    fills = [_OBJECTIVE_FILL if h in names else "white" for h in header]
    return table_figure(header, columns, fills=fills)


def _restyle(figure: Any) -> None:
    """The reports' light look instead of plotly's grey default template."""
    figure.layout.template = LIGHT_TEMPLATE
