"""The run folder of a search: trials.parquet, metrics.json (the best trial or the Pareto
front), manifest.json and report.html (optimization history, Pareto front, parameter
importances where computable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivybt.run_folder import open_run_folder, utc_now, write_json, write_table, write_text
from ivybt.studies.evidence import summary_rows as evidence_rows
from ivybt.studies.optimize import SearchResult


def search_headline(result: SearchResult) -> dict[str, Any]:
    """metrics.json: where the study lives, its size, and its best trial(s) with every metric."""
    study = result.study
    return {
        "strategy": result.config.strategy.name,
        "symbol": result.inputs.record["symbol"],
        "study_name": study.study_name,
        "storage": result.storage_url,
        "objectives": list(result.objectives),
        "n_trials": len(study.trials),
        "best": [
            {
                "number": trial.number,
                "params": trial.params,
                "values": trial.values,
                "metrics": {
                    k: v for k, v in trial.user_attrs.items() if not k.startswith("ivybt")
                },
            }
            for trial in result.best_trials()
        ],
        "overfitting": result.evidence(),
    }


def write_search(
    result: SearchResult,
    folder: str | Path | None = None,
    *,
    overwrite: bool = False,
    results: str | Path | None = None,
    command_line: list[str] | None = None,
) -> Path:
    """Write the search's run folder and return it."""
    import optuna.visualization as views

    from ivybt.report.html import render_html

    headline = search_headline(result)
    figures = [("Optimization history", _history(views, result))]
    if len(result.objectives) > 1:
        figures.append(("Pareto front", views.plot_pareto_front(
            result.study, target_names=list(result.objectives))))  # fmt: skip
    from ivybt.report.evidence import evidence_figures

    figures += evidence_figures(headline["overfitting"])
    summary = [
        ("Study", f"{result.study.study_name} ({result.storage_url})"),
        ("Trials", str(len(result.study.trials))),
        ("Objectives", ", ".join(result.objectives)),
        ("Best", "; ".join(str(best["params"]) for best in headline["best"][:3])),
        *evidence_rows(headline["overfitting"]),
    ]
    extra = {"study_name": result.study.study_name, "storage": result.storage_url}
    with open_run_folder(
        "optimize", result.config, data=result.inputs.record, started=utc_now(), folder=folder,
        results=results, overwrite=overwrite, command_line=command_line, extra=extra,
    ) as target:  # fmt: skip
        write_table(target / "trials.parquet", result.trials())
        write_json(target / "metrics.json", headline)
        write_text(
            target / "report.html",
            render_html(
                f"{result.config.strategy.name} search on {result.inputs.record['symbol']}",
                summary_rows=summary,
                sections=figures,
                notes=[
                    f"Open the study with `ivybt dashboard {result.storage_url}`.",
                    *(headline["overfitting"] or {}).get("readings", []),
                ],
            ),
        )
    return target


def _history(views: Any, result: SearchResult) -> Any:
    if len(result.objectives) == 1:
        return views.plot_optimization_history(result.study)
    return views.plot_optimization_history(
        result.study, target=lambda trial: trial.values[0], target_name=result.objectives[0]
    )
