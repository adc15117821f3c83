"""`ivybt montecarlo`: trade and block bootstraps of a finished backtest or walk-forward run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click


@click.command("montecarlo")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--n", "n", type=click.IntRange(min=1), default=10_000, show_default=True,
    help="Resampled paths.",
)  # fmt: skip
@click.option(
    "--method",
    type=click.Choice(["trades", "block"]),
    default=None,
    help="trades: draw the closed trades with replacement and compound their returns; "
    "block: circular blocks of per-bar returns. Default: trades for a backtest of one "
    "symbol, block for a walk-forward run (its folder keeps no trades) or a universe's "
    "backtest (its trades overlap in time in one account; trades is refused there).",
)
@click.option(
    "--block-size",
    type=click.IntRange(min=1),
    default=None,
    help="Bars per block with --method block. Default: round(sqrt(bars)).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True,
    help="Random seed: the same seed gives the same paths, whatever the thread count.",
)  # fmt: skip
def montecarlo(
    run_dir: Path, n: int, method: str | None, block_size: int | None, seed: int
) -> None:
    """Bootstrap a finished backtest or walk-forward run: return, drawdown and Sharpe bands.

    Prints the percentiles of total return, max drawdown and Sharpe over the resampled
    paths next to the run's own values, and draws an equity fan chart. Paths compound
    returns (equity x (1 + r)), never dollar PnL. The trade bootstrap resamples every trade,
    the one still open at the last bar marked there as the backtest marks it, so the run's
    own line is the backtest's total return. On a walk-forward run the stitched
    out-of-sample returns are resampled. Writes montecarlo-<method>-n<N>-seed<S>.json and
    .html into RUN_DIR (montecarlo-block<size>-... for blocks): studies with other settings
    keep their files.

    \b
    Examples:
      ivybt montecarlo results/backtest-sma_cross-SPY-20261124T120000Z
      ivybt montecarlo results/bt --n 50000 --method block --block-size 20 --seed 7
      ivybt montecarlo results/walkforward-sma_cross-SPY-20261124T120000Z --n 10000
    """
    from ivybt.runs.montecarlo import METRICS, monte_carlo

    result = monte_carlo(run_dir, n=n, method=method, block_size=block_size, seed=seed)
    click.echo(
        f"{result.method} bootstrap of {result.source['command']} {result.run_dir}: "
        f"{result.n:,} paths of {result.resampled}, seed {result.seed}"
    )
    columns = list(result.percentiles.columns)
    click.echo(f"  {'metric':<14}" + "".join(f"{c:>9}" for c in columns)
               + f"{'the run':>10}{'worse':>7}")  # fmt: skip
    for name in METRICS:
        cells = "".join(f"{_shown(name, v):>9}" for v in result.percentiles.loc[name])
        worse = result.share_worse[name]
        click.echo(
            f"  {name:<14}{cells}{_shown(name, result.observed[name]):>10}"
            f"{'n/a' if math.isnan(worse) else f'{worse:.0%}':>7}"
        )
    click.echo(f"  the run: {result.run_label}")
    click.echo(f"  sharpe: {result.sharpe_basis}; worse: share of paths below the run")
    for line in result.readings():
        click.echo(line)
    for path in result.files:
        click.echo(f"wrote {path}")


def _shown(name: str, value: Any) -> str:
    number = float(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:.2f}" if name == "sharpe" else f"{number:.1%}"
