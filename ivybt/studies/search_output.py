"""The run folder of a search: trials.parquet, metrics.json (the best trial or the Pareto
front, each parameter set once), manifest.json (with the sampler's settings and its
resume rule) and report.html (`ivybt.report.search`: the best trial's metrics, Optuna's
history, Pareto front, importance, slice and contour plots, the best trials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivybt.run_folder import open_run_folder, utc_now, write_json, write_table, write_text
from ivybt.studies.evidence import summary_rows as evidence_rows
from ivybt.studies.optimize import SearchResult


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
