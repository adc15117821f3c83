"""`ivybt check-lookahead`: a strategy's signals and positions on truncated histories vs the
full run (`ivybt.studies.lookahead`)."""

from __future__ import annotations

from typing import Any

import click

from ivybt.cli import Settings, options
from ivybt.cli.backtest import run_config


@click.command("check-lookahead")
@click.argument("strategy")
@options.symbol_or_universe
@options.universe
@options.params
@click.option(
    "--cuts",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Cut bars to check: half evenly spaced after the warm-up, half drawn at random.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the randomly drawn cuts."
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@options.interval
@options.start
@options.end
@options.source
@options.adjusted
@options.bars
@options.execution
@click.pass_obj
def check_lookahead(settings: Settings | None, strategy: str, **values: Any) -> None:
    """Check STRATEGY for look-ahead: rerun it on histories cut after many bars.

    A strategy without look-ahead decides bar t with bars <= t only, so cutting the history
    after bar t changes nothing up to t. For each cut bar, the indicators, the signal (both
    sides), the target side, the units held and the equity up to the cut are compared with
    the full-history run, bit for bit. STRATEGY is a built-in name or package.module:ClassName.

    Exit status: 0 when every cut matches ("no look-ahead: ..."); 1 when look-ahead is found,
    printing the first difference (cut, bar, time, what differs, both values) on one line;
    1 also for a data or runtime error, e.g. bars that cannot be loaded or a strategy whose
    code fails (an "Error:" line on stderr); 2 for an input error (an unknown strategy or
    parameter, a bad option value, windows longer than the bars, a plug-in that cannot be
    imported).

    \b
    Examples:
      ivybt check-lookahead sma_cross --symbol SPY -p fast=10 -p slow=50
      ivybt check-lookahead my_strategies:KeltnerBreakout -s SPY --start 2010-01-01 --cuts 200
      ivybt check-lookahead donchian_breakout -s SPY --bars renko --renko-box 2 --seed 7
      ivybt check-lookahead rsi_reversion -s BTCUSD --direction both --json
      ivybt check-lookahead sma_cross --symbols SPY,MSFT,AAPL --source sample
    """
    from ivybt.config import build_config
    from ivybt.strategies import get_strategy
    from ivybt.studies.lookahead import run_lookahead_check

    ctx = click.get_current_context()
    sections = run_config(
        strategy, {**values, "train_split": None, "run_mode": "full", "out": None}
    )
    params = get_strategy(strategy).resolve_params(values["params"])
    sections["strategy"]["params"] = params
    config = build_config(**sections)
    report = run_lookahead_check(
        config,
        cache_dir=None if settings is None else settings.cache_dir,
        cuts=values["cuts"],
        seed=values["seed"],
    )
    click.echo(report.to_json() if values["as_json"] else report.message)
    if not report.ok:
        ctx.exit(1)
