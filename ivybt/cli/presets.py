"""`ivybt preset save|list|show|delete`: what a run chose, kept under a name (docs/presets.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ivybt import _paths

F = TypeVar("F", bound=Callable[..., Any])


def presets_dir_option[F: Callable[..., Any]](func: F) -> F:
    """--presets-dir, shared by `ivybt preset`, `ivybt signals` and `ivybt backtest`."""
    return click.option(
        "--presets-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Folder of saved presets. Default: ${_paths.PRESETS_DIR_ENV}, else a per-user "
        "folder (`ivybt info` shows it).",
    )(func)


@click.group("preset")
def preset() -> None:
    """Save what a run chose under a name, to backtest again or act on (`ivybt signals`).

    \b
    Examples:
      ivybt preset save results/spy-grid --name spy-sma
      ivybt preset list
      ivybt preset show spy-sma
      ivybt preset delete spy-sma
    """


@preset.command("save")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="The preset's name: letters, digits, '.', '_', '-'.")
@click.option(
    "--trial",
    type=click.IntRange(0),
    default=None,
    help="A search's trial among its best (needed when a multi-objective search has several).",
)
@click.option("--overwrite", is_flag=True, help="Replace a preset of the same name.")
@presets_dir_option
def save(
    run_dir: Path, name: str, trial: int | None, overwrite: bool, presets_dir: Path | None
) -> None:
    """Save what the run in RUN_DIR chose as preset NAME.

    A backtest's parameters, a grid's best combination, a search's best trial, or a
    walk-forward study's last fold's choice (with the fold's dates), with the run's universe,
    portfolio, costs, fills, stops, bars and data window, the data hashes it was fitted on
    and its headline metrics.

    \b
    Examples:
      ivybt preset save results/spy-grid --name spy-sma
      ivybt preset save results/spy-search --name spy-pareto --trial 17
      ivybt preset save results/universe-wf --name universe --overwrite
    """
    from ivybt.runs.presets import save_preset

    saved = save_preset(run_dir, name, presets_dir=presets_dir, overwrite=overwrite, trial=trial)
    click.echo(f"{_summary(saved)}; {saved.document['run']['choice']} of {run_dir}")
    click.echo(f"wrote {saved.path}")


@preset.command("list")
@presets_dir_option
def list_presets(presets_dir: Path | None) -> None:
    """List the saved presets, and whether each can still be used.

    \b
    Examples:
      ivybt preset list
      ivybt preset list --presets-dir ~/trading/presets
    """
    from ivybt.runs.presets import list_presets as listed

    table = listed(presets_dir)
    folder = _paths.presets_dir(presets_dir)
    if table.empty:
        click.echo(f"no presets in {folder}; save one with `ivybt preset save RUN_DIR --name N`")
        return
    shown = table.drop(columns="problem").fillna("")
    shown["saved_at"] = shown["saved_at"].map(lambda text: str(text)[:16].replace("T", " "))
    click.echo(shown.to_string(index=False))
    for row in table[table["status"] != "ok"].itertuples(index=False):
        click.echo(f"  {row.name}: {row.problem}")
    click.echo(f"\n{len(table)} preset(s) in {folder}")


@preset.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the preset file's JSON.")
@presets_dir_option
def show(name: str, as_json: bool, presets_dir: Path | None) -> None:
    """Show preset NAME: its choice, universe, execution, fitted data and metrics.

    \b
    Examples:
      ivybt preset show spy-sma
      ivybt preset show spy-sma --json
    """
    from ivybt.runs.presets import load_preset

    loaded = load_preset(name, presets_dir=presets_dir)
    if as_json:
        click.echo(json.dumps(loaded.document, indent=2))
        return
    for line in describe(loaded):
        click.echo(line)


@preset.command("delete")
@click.argument("name")
@presets_dir_option
def delete(name: str, presets_dir: Path | None) -> None:
    """Delete preset NAME (also one that can no longer be loaded).

    \b
    Examples:
      ivybt preset delete spy-sma
    """
    from ivybt.runs.presets import delete_preset

    path = delete_preset(name, presets_dir=presets_dir)
    click.echo(f"deleted preset {name} ({path})")


def _summary(loaded: Any) -> str:
    config = loaded.config
    params = " ".join(f"{k}={v}" for k, v in loaded.params.items())
    return (
        f"preset {loaded.name}: {config.strategy.name} {params} on {', '.join(loaded.symbols)} "
        f"{config.data.interval}"
    )


def describe(loaded: Any) -> list[str]:
    """The lines of `ivybt preset show`."""
    from ivybt.report import format_metric
    from ivybt.runs.portfolio import stops_text

    document, config = loaded.document, loaded.config
    run, fitted = document["run"], document["fitted"]
    data, execution, portfolio = config.data, config.execution, config.portfolio
    params = " ".join(f"{k}={v}" for k, v in loaded.params.items())
    window = f"{data.start or 'first bar'}..{data.end or 'last bar'}"
    bars = data.bars if data.renko is None else (
        f"renko {data.renko.model_dump(exclude_defaults=True) or 'defaults'}")  # fmt: skip
    lines = [
        f"preset {loaded.name} ({loaded.path}), saved {document['saved_at'][:19]} by IvyBT "
        f"{document['ivybt']}",
        f"  from        {run['command']} run {run['folder']}: {run['choice']}",
        f"  strategy    {config.strategy.name} {params}",
        f"  data        {', '.join(loaded.symbols)} {data.interval}, {bars} bars, source "
        f"{data.source}, {window}",
        f"  execution   commission {execution.commission:.4%}, slippage {execution.slippage:.4%}, "
        f"fill {execution.fill}, {execution.direction}, size {execution.size:g}"
        + (f"; exits: {stops_text(execution)}" if execution.has_stops else ""),
    ]
    if data.is_portfolio:
        lines.append(
            f"  portfolio   {portfolio.weights} weights, max leverage {portfolio.max_leverage:g}"
            + ("" if portfolio.max_weight is None else f", max weight {portfolio.max_weight:g}")
            + f", rebalance {portfolio.rebalance}"
            + (f" (band {portfolio.band:g})" if portfolio.band else "")
        )
    hashes = ", ".join(f"{r.get('symbol')} {str(r.get('sha256'))[:12]}" for r in fitted["data"])
    lines.append(f"  fitted on   {fitted.get('first')}..{fitted.get('last')} ({hashes})")
    fold = fitted.get("fold")
    if fold:
        replay = fold["replay"]
        lines.append(
            f"  fold        {fold['fold']}: in-sample {fold['is_first']}..{fold['is_last']}, "
            f"out-of-sample {fold['oos_first']}..{fold['oos_last']}; its OOS again: ivybt "
            f"backtest --preset {loaded.name} --end {replay['end']} --train-split "
            f"{replay['train_split']!r} --run-mode test"
        )
    shown = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades")
    for label, values in document["metrics"].items():
        if isinstance(values, dict) and label != "evidence":
            text = ", ".join(f"{m} {format_metric(m, values[m]).strip()}" for m in shown
                             if values.get(m) is not None)  # fmt: skip
            lines.append(f"  {label:<11} {text}")
        elif label == "evidence":
            text = ", ".join(f"{k.upper()} {v:.2f}" for k, v in values.items())
            lines.append(f"  {'evidence':<11} {text}")
        elif values is not None:
            lines.append(f"  {label:<11} {values:.2f}")
    return lines
