"""`ivybt optimize`: an Optuna search over a strategy's parameter space, evaluated in batches."""

from __future__ import annotations

from typing import Any

import click

from ivybt.cli import Settings, options
from ivybt.cli.backtest import format_metric, run_config


@click.command("optimize")
@options.strategy
@options.config_file
@options.symbol
@options.universe
@options.params
@click.option(
    "--constraint",
    "constraints",
    multiple=True,
    metavar="EXPR",
    help="Extra constraint, repeatable: --constraint 'fast * 2 <= slow'.",
)
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    default=("sharpe",),
    show_default=True,
    metavar="METRIC",
    help="Metric to optimise; repeat for a multi-objective study (e.g. "
    "--objective sharpe --objective max_drawdown with --sampler nsga2).",
)
@click.option(
    "--trials",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Trials the study should have; a rerun adds trials up to this number.",
)
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "cmaes", "random", "nsga2", "grid"]),
    default="tpe",
    show_default=True,
    help="Optuna sampler.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Trials asked, evaluated in one kernel call, and told per round.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Study storage: journal:///path, sqlite:///file.db or postgresql://... "
    "Default: journal file <results dir>/optuna.journal.",
)
@click.option(
    "--study-name",
    default=None,
    help="Default: <strategy>-<symbol>-<8 hex digits of the settings>, so the same command "
    "resumes its study and other settings (space, costs, data...) get their own.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Processes on the study: this one and N-1 `ivybt worker`s (docs/storage.md, "
    "'Many workers on one study'); more join from other machines with `ivybt worker`.",
)
@click.option("--seed", type=int, default=None, help="Sampler seed, for a reproducible study.")
@click.option(
    "--min-trades",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Trials with fewer closed trades are told FAIL.",
)
@click.option(
    "--evidence/--no-evidence",
    default=True,
    show_default=True,
    help="Compute PBO (CSCV) and the deflated Sharpe ratio over the trials for metrics.json "
    "and the report (re-evaluates the trials' returns).",
)
@options.interval
@options.start
@options.end
@options.source
@options.adjusted
@options.bars
@options.execution
@options.split
@options.output
@click.pass_obj
def optimize(settings: Settings, strategy: str | None, **values: Any) -> None:
    """Search STRATEGY's parameters with Optuna; trials are evaluated in batches.

    Give each searched parameter as -p name=start:stop[:step] or name=v1,v2,...; the study
    lives in --storage under --study-name, so rerunning the command resumes it (the same
    trials an uninterrupted run makes), and --trials is the size of the study, whoever runs
    it: two processes on one study share the work, and --workers N runs N on it (on
    PostgreSQL they evaluate at the same time; `ivybt worker` joins from other machines). A
    space with no more admissible combinations than --trials is evaluated once per
    combination, then the search stops. The
    folder holds trials.parquet, metrics.json (best trial, or the Pareto front), manifest.json
    and report.html. --config FILE reads the run from a YAML file or a run's manifest.json;
    options typed on the command line override its fields (-p per parameter).

    \b
    Examples:
      ivybt optimize sma_cross --symbol SPY -p fast=2:101 -p slow=5:204 --trials 300 --seed 7
      ivybt optimize bbkc_squeeze -s SPY -p bb_window=10:40 -p kc_mult=1.0:2.5:0.1 --trials 500
      ivybt optimize rsi_reversion -s SPY -p window=5:30 -p lower=15:40 --sampler nsga2 \\
          --objective sharpe --objective max_drawdown --trials 400
      ivybt optimize --config configs/spy-sma_cross-grid.yaml -p fast=2:101 --trials 200
    """
    from ivybt.cli import command_line_of
    from ivybt.cli.progress import ProgressBar, compile_notice, echo_notice
    from ivybt.config import build_config
    from ivybt.config_file import study_sections
    from ivybt.redact import redact
    from ivybt.runs.optimize import run_search, write_search
    from ivybt.studies.study_storage import quiet_optuna

    sections = run_config(strategy, values)
    sections["strategy"]["space"] = dict(values["params"])
    sections["strategy"]["constraints"] = tuple(values["constraints"])
    sections["study"] = {
        "objective": values["objectives"][0],
        "objectives": tuple(values["objectives"]), "trials": values["trials"],
        "sampler": values["sampler"], "batch_size": values["batch_size"],
        "storage": values["storage"], "study_name": values["study_name"],
        "seed": values["seed"], "min_trades": values["min_trades"],
        "evidence": values["evidence"],
    }  # fmt: skip
    sections = options.run_sections(sections, values, aliases={"objective": "objectives"})
    sections = study_sections(sections, "search", values["config_file"])
    config = build_config(**sections)
    options.check_run_folder(config, values, settings.results_dir)  # before the trials
    compile_notice("optimize", evidence=sections["study"].get("evidence") is not False)
    with quiet_optuna(), ProgressBar("trials") as progress:
        result = run_search(
            config, cache_dir=settings.cache_dir,
            results_dir=settings.results_dir, progress=progress, notice=echo_notice,
            workers=values["workers"],
        )  # fmt: skip
    study = result.study
    shown = redact(result.storage_url)  # the password never reaches the terminal
    n_trials, n_distinct = len(study.trials), result.n_distinct()
    distinct = "" if n_distinct == n_trials else f" ({n_distinct} distinct parameter sets)"
    click.echo(f"study {study.study_name!r} in {shown}: {n_trials} trials{distinct}")
    for trial in result.best_trials()[:10]:
        params = " ".join(f"{name}={value}" for name, value in trial.params.items())
        shown = " ".join(
            f"{name}={format_metric(name, trial.user_attrs[name]).strip()}"
            for name in result.objectives
        )
        click.echo(f"  #{trial.number}: {params}  {shown}")
    with quiet_optuna():
        folder = write_search(
            result, values["out"], overwrite=values["overwrite"], results_dir=settings.results_dir,
            command_line=command_line_of(click.get_current_context()),
        )  # fmt: skip
    click.echo(f"wrote {folder}")
