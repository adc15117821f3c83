"""`ivybt grid`: every combination of a parameter space, in one kernel pass per chunk."""

from __future__ import annotations

from typing import Any

import click

from ivybt.cli import Settings, command_line_of, options
from ivybt.cli.backtest import format_metric, run_config

TOP_ROWS = 5
TOP_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades", "win_rate")


@click.command("grid")
@options.strategy
@options.config_file
@options.symbol
@options.universe
@options.params
@options.study
@options.interval
@options.start
@options.end
@options.source
@options.adjusted
@options.bars
@options.execution
@options.split
@options.output
@options.cluster
@options.device
@click.option(
    "--export-study",
    is_flag=True,
    help="Also write the best 1,000 combinations and an even sample of 1,000 more "
    "as an Optuna study, with the heatmap attached, for `ivybt dashboard`.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Study storage for --export-study (default: <results dir>/optuna.journal).",
)
@click.option("--study-name", default=None, help="Default: <strategy>-<symbol>-grid.")
@click.pass_obj
def grid(settings: Settings, strategy: str | None, **values: Any) -> None:
    """Evaluate every combination of STRATEGY's parameter space and write the run folder.

    Give each searched parameter as -p name=start:stop[:step] (inclusive) or a list
    name=v1,v2,...; others keep their defaults. The folder holds grid.parquet (one row per
    combination: param_* columns, then every metric), metrics.json (the best combination),
    manifest.json and report.html (heatmaps with a metric selector, top combinations).
    --config FILE reads the run from a YAML file or a run's manifest.json; options typed on
    the command line override its fields (-p per parameter).

    \b
    Examples:
      ivybt grid sma_cross --symbol SPY -p fast=2:101 -p slow=5:204
      ivybt grid rsi_reversion -s SPY -p window=5:30 -p lower=20:40:5 --objective calmar
      ivybt grid macd_cross -s SPY -p fast=5:20 -p slow=20:60:5 -p signal=5,9,12 --min-trades 10
      ivybt grid --config configs/spy-sma_cross-grid.yaml -p fast=2:50 --commission 0.002
      ivybt grid sma_cross -s SPY -p fast=2:101 -p slow=5:204 --cluster local:4
    """
    from ivybt.cli.progress import ProgressBar, compile_notice, echo_notice
    from ivybt.config import build_config
    from ivybt.config_file import study_sections
    from ivybt.runs.grid import run_grid

    sections = run_config(strategy, values)
    sections["strategy"]["space"] = dict(values["params"])
    sections["strategy"]["constraints"] = tuple(values["constraints"])
    sections["study"] = {name: values[name] for name in options.GRID_STUDY_OPTIONS}
    sections = options.run_sections(sections, values)
    sections = study_sections(sections, "grid", values["config_file"])
    config = build_config(**sections)
    options.check_run_folder(config, values, settings.results_dir)  # before the work
    if values["export_study"] and values["storage"]:
        from ivybt.studies.storage_url import check_storage_url

        check_storage_url(values["storage"])  # a bad URL fails before the grid, not after
    compile_notice("grid", evidence=config.study is None or config.study.evidence)
    with ProgressBar("combinations") as progress:
        result = run_grid(config, cache_dir=settings.cache_dir, progress=progress,
                          phase_progress=progress.phase, notice=echo_notice,
                          scheduler=values["scheduler"], cluster=values["cluster"],
                          tasks=progress.tasks)  # fmt: skip
    folder = result.write(
        values["out"],
        overwrite=values["overwrite"],
        results_dir=settings.results_dir,
        command_line=command_line_of(click.get_current_context()),
    )
    _print_top(result)
    click.echo(f"wrote {folder}")
    if values["export_study"]:
        import optuna

        from ivybt.redact import redact
        from ivybt.runs.grid_export import export_grid_study

        optuna.logging.set_verbosity(optuna.logging.WARNING)

        name, url = export_grid_study(
            result, storage=values["storage"], study_name=values["study_name"],
            results_dir=settings.results_dir,
        )  # fmt: skip
        click.echo(f"exported study {name!r} to {redact(url)} (see `ivybt dashboard`)")


def _print_top(result: Any) -> None:
    objective = result.objective
    table = result.table[result.table["valid"]].nlargest(TOP_ROWS, objective)
    names = [f"param_{name}" for name in result.param_names]
    header = "  ".join(f"{name.removeprefix('param_'):>8}" for name in names)
    click.echo(f"best {TOP_ROWS} by {objective}:")
    click.echo(f"  {header}  " + " ".join(f"{name:>12}" for name in TOP_METRICS))
    for _, row in table.iterrows():
        params = "  ".join(f"{row[name]:>8g}" for name in names)
        shown = " ".join(f"{format_metric(name, row[name]):>12}" for name in TOP_METRICS)
        click.echo(f"  {params}  {shown}")
    universe = result.universe
    if universe is not None:
        chosen = {
            name: float("nan") if v is None else v for name, v in universe["metrics"].items()
        }
        shown = " ".join(f"{format_metric(name, chosen[name]):>12}" for name in TOP_METRICS)
        click.echo(f"the best on {', '.join(universe['symbols']) or 'no symbol'} only "
                   f"({universe['described']}, in-sample):")  # fmt: skip
        click.echo(f"  {' ' * len(header)}  {shown}")
