"""`ivybt walkforward` and `ivybt surface`: walk-forward studies and their stability surfaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ivybt.cli import Settings, command_line_of, options
from ivybt.cli.backtest import format_metric, run_config

WINDOW_OPTIONS = ("in_sample", "out_of_sample", "folds", "step", "gap", "anchored", "last_window")


@click.command("walkforward")
@options.strategy
@options.config_file
@options.symbol
@options.universe
@options.params
@options.study
@options.device
@click.option(
    "--is",
    "in_sample",
    metavar="LENGTH",
    help="In-sample length: bars (500) or a duration (2y, 6M, 90d, 12h).",
)
@click.option(
    "--oos",
    "out_of_sample",
    metavar="LENGTH",
    help="Out-of-sample length, right after the in-sample window (or its gap).",
)
@click.option(
    "--folds",
    type=click.IntRange(1),
    default=None,
    help="Instead of --oos: cut the bars after the first IS window into N OOS windows.",
)
@click.option(
    "--step",
    metavar="LENGTH",
    default=None,
    help="How far each fold moves. Default: the OOS length.",
)
@click.option(
    "--gap",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Embargo bars between each IS window and its OOS window.",
)
@click.option(
    "--anchored",
    is_flag=True,
    help="IS always starts at the first bar and grows (default: rolling).",
)
@click.option(
    "--last-window",
    type=click.Choice(["drop", "keep"]),
    default="drop",
    show_default=True,
    help="A partial last OOS window: dropped, or kept cut short.",
)
@click.option(
    "--search",
    type=click.Choice(["grid", "optuna"]),
    default="grid",
    show_default=True,
    help="Search each IS window: the whole grid, or Optuna.",
)
@click.option(
    "--trials", type=click.IntRange(1), default=None, help="Trials per fold with --search optuna."
)
@click.option("--seed", type=int, default=None, help="Sampler seed (fold k uses seed + k).")
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Study storage for --search optuna (default: the results journal file).",
)
@click.option(
    "--select",
    type=click.Choice(["best", "plateau"]),
    default="best",
    show_default=True,
    help="best: the top IS combination; plateau: the best mean "
    "over its grid neighbourhood (docs/stability.md).",
)
@options.interval
@options.start
@options.end
@options.source
@options.adjusted
@options.bars
@options.execution
@options.output
@options.cluster
@click.pass_obj
def walkforward(settings: Settings, strategy: str | None, **values: Any) -> None:
    """Walk STRATEGY forward: fit on each in-sample window, judge on the window after it.

    Every combination is evaluated on each fold's IS and OOS window (both surfaces kept);
    the IS choice (--select) is traded on OOS, and the OOS windows are stitched. The run
    folder holds folds.parquet, surface.parquet, oos_equity.parquet, metrics.json (WFE,
    stability scores), report.html and a stability-surface page. Rerun with the same --out
    to resume: finished folds are read back, not recomputed. Windows are half-open bar
    ranges [start, end).

    \b
    Examples:
      ivybt walkforward sma_cross -s SPY -p fast=5:50:5 -p slow=20:200:10 --is 3y --oos 1y
      ivybt walkforward sma_cross -s SPY -p fast=2:101 -p slow=5:204 --is 1000 --folds 10
      ivybt walkforward rsi_reversion -s SPY -p window=5:30 -p lower=15:40:5 --is 2y --oos 6M \\
          --anchored --gap 5 --select plateau
      ivybt walkforward macd_cross -s SPY -p fast=5:20 -p slow=20:60:5 --is 3y --oos 1y \\
          --search optuna --trials 200 --seed 7
    """
    from ivybt.cli.progress import ProgressBar, compile_notice, echo_notice
    from ivybt.config import build_config
    from ivybt.config_file import study_sections
    from ivybt.runs.walkforward import run_walk_forward

    sections = run_config(strategy, {**values, "train_split": None, "run_mode": "full"})
    sections["strategy"]["space"] = dict(values["params"])
    sections["strategy"]["constraints"] = tuple(values["constraints"])
    windows = {name: values[name] for name in WINDOW_OPTIONS}
    if windows["in_sample"] is None and values["config_file"] is None:
        raise click.UsageError("give the in-sample length, e.g. --is 3y (and --oos or --folds)")
    fields = (*options.GRID_STUDY_OPTIONS, "search", "trials", "seed", "storage", "select")
    study = {name: values[name] for name in fields}
    sections["study"] = {**study, "windows": windows if windows["in_sample"] else None}
    sections = options.run_sections(sections, values, aliases={"windows": "in_sample"})
    sections = study_sections(sections, "walkforward", values["config_file"])
    if sections["study"].get("windows") is None:
        sections["study"].pop("windows", None)
    config = build_config(**sections)
    options.check_run_folder(config, values, settings.results_dir)  # before the data loads
    compile_notice("walkforward", evidence=config.study is None or config.study.evidence)
    with ProgressBar("folds") as progress:
        result = run_walk_forward(
            config,
            cache_dir=settings.cache_dir,
            results_dir=settings.results_dir,
            overwrite=values["overwrite"],
            command_line=command_line_of(click.get_current_context()),
            progress=progress,
            notice=echo_notice,
            scheduler=values["scheduler"],
            cluster=values["cluster"],
            tasks=progress.tasks,
        )
    _print_summary(result)
    click.echo(f"wrote {result.folder}")


def _print_summary(result: Any) -> None:
    """The fold table (every column labelled: the objective IS and OOS, the closed trades IS
    and OOS, WFE on CAGR), the stitched OOS result next to buy-and-hold, and the scores."""
    from ivybt.studies.walkforward import WFE_MIN_IS_CAGR

    metrics = result.metrics
    names = list(result.space.names)
    objective = metrics["objective"]
    click.echo(
        f"{len(result.folds)} folds, {metrics['n_combinations']:,} combinations each; "
        f"choice by {objective} ({metrics['select']})"
    )
    columns = [f"IS {objective}", f"OOS {objective}", "IS trades", "OOS trades", "WFE (CAGR)"]
    widths = [max(len(c), 9) for c in columns]
    header = "  ".join(f"{name:>8}" for name in names)
    labels = "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    click.echo(f"  fold  {'OOS window':<23} {header}  {labels}")
    for row in result.folds.itertuples():
        params = "  ".join(f"{_param(getattr(row, f'param_{n}')):>8}" for n in names)
        span = f"{row.oos_first:%Y-%m-%d}..{row.oos_last:%Y-%m-%d}"
        cells = [
            _shown(objective, getattr(row, f"is_{objective}")),
            _shown(objective, getattr(row, f"oos_{objective}")),
            _shown("n_trades", row.is_n_trades),
            _shown("n_trades", row.oos_n_trades),
            "n/a" if row.wfe != row.wfe else f"{row.wfe:.2f}",
        ]
        shown = "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))
        click.echo(f"  {row.fold:>4}  {span:<23} {params}  {shown}")
    click.echo(
        f"  WFE (CAGR) = OOS CAGR / IS CAGR of the choice; n/a with an IS CAGR below "
        f"{WFE_MIN_IS_CAGR:.2%} a year (docs/walkforward.md)"
    )
    oos, hold = metrics["oos"] or {}, metrics["buy_and_hold"] or {}
    selection = metrics.get("universe_selection")
    every = (selection or {}).get("oos_all_symbols") or {}
    for name in ("total_return", "cagr", "sharpe", "max_drawdown"):
        click.echo(
            f"  stitched OOS {name:<13} {_shown(name, oos.get(name)):>10}   "
            f"buy-and-hold {_shown(name, hold.get(name)):>10}"
            + (f"   every symbol {_shown(name, every.get(name)):>10}" if selection else "")
        )
    click.echo(f"  stitched OOS {'n_trades':<13} {_shown('n_trades', oos.get('n_trades')):>10}")
    if selection:
        chosen = ", ".join(f"{s} {n}" for s, n in selection["times_chosen"].items())
        click.echo(f"  universe: {selection['described']} per fold, in-sample; times chosen: "
                   f"{chosen} of {metrics['n_folds']} folds")  # fmt: skip
    wfe = metrics["wfe"]
    rank = metrics["stability"]["is_oos_rank_corr"]["mean"]
    click.echo(
        f"  WFE (CAGR, stitched OOS) {'n/a' if wfe is None else f'{wfe:.2f}'}; IS->OOS rank "
        f"correlation of {objective} {'n/a' if rank != rank else f'{rank:.3f}'} "
        "(docs/stability.md)"
    )


def _param(value: float) -> str:
    return "-" if value != value else f"{value:g}"


def _shown(name: str, value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return format_metric(name, value).strip()


@click.command("surface")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--param", default=None, help="Parameter on the y axis. Default: the one with the most values."
)
@click.option("--metric", default=None, help="Metric on the z axis. Default: the objective.")
@click.option(
    "--side",
    type=click.Choice(["is", "oos"]),
    default="oos",
    show_default=True,
    help="In-sample or out-of-sample surfaces.",
)
def surface(run_dir: Path, param: str | None, metric: str | None, side: str) -> None:
    """Write the stability-surface page of a finished walk-forward run folder.

    \b
    Examples:
      ivybt surface results/walkforward-sma_cross-SPY-20261124T120000Z
      ivybt surface results/wf --param slow --metric calmar --side is
    """
    from ivybt.runs.surface import write_surface_page

    path = write_surface_page(run_dir, param=param, metric=metric, side=side)
    click.echo(f"wrote {path}")
