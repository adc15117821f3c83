"""`ivybt backtest`: one strategy on one symbol, written as a run folder."""

from __future__ import annotations

from typing import Any

import click

from ivybt.cli import Settings, command_line_of, options
from ivybt.cli.presets import presets_dir_option

EXECUTION_OPTIONS = (
    "commission", "slippage", "fill", "direction", "size", "initial_cash", "periods_per_year",
    "sl", "tp", "trail", "sl_atr", "max_bars", "atr_length",
)  # fmt: skip
TABLE_METRICS = (
    "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
    "n_trades", "win_rate", "profit_factor", "avg_win", "avg_loss", "exposure",
)  # fmt: skip


@click.command("backtest")
@options.strategy
@options.config_file
@options.symbol
@options.universe
@options.params
@options.interval
@options.start
@options.end
@options.source
@options.adjusted
@options.bars
@options.execution
@options.split
@options.output
@click.option(
    "--preset",
    default=None,
    metavar="NAME",
    help="Backtest a saved preset (`ivybt preset list`): its strategy, parameters, "
    "universe, execution and data window; options typed here override them.",
)
@presets_dir_option
@click.pass_obj
def backtest(settings: Settings, strategy: str | None, **values: Any) -> None:
    """Backtest STRATEGY on one symbol or a universe and write its run folder.

    STRATEGY is a built-in name (see `ivybt strategies`) or package.module:ClassName.
    --config FILE reads the run from a YAML file or a run's manifest.json; options typed on
    the command line override its fields (-p per parameter). The folder holds metrics.json,
    trades.csv/.parquet, equity.parquet, manifest.json and an offline report.html; a short
    metrics table is printed. --symbols A,B,C (or --universe FILE) trades the strategy on
    every symbol in one account (docs/portfolio.md) and adds weights.parquet. --preset NAME
    backtests a saved preset (docs/presets.md) as --config would its file.

    \b
    Examples:
      ivybt backtest sma_cross --symbol SPY -p fast=10 -p slow=50
      ivybt backtest rsi_reversion -s SPY --direction both --commission 0.0005 --fill close
      ivybt backtest sma_cross -s SPY --train-split 0.7 --run-mode test --out results/spy-test
      ivybt backtest sma_cross --symbols SPY,MSFT,AAPL,GOOG,IBM --source sample
      ivybt backtest mypkg.signals:Breakout -s BTCUSD --periods-per-year 365
      ivybt backtest --config results/spy-test/manifest.json --commission 0.002
      ivybt backtest --preset spy-sma --start 2021-01-01
    """
    from ivybt.config import build_config
    from ivybt.runs.backtest import run_backtest

    if values["preset"] is not None:  # a checked preset file, read as --config reads one
        from ivybt.runs.presets import preset_config_file

        values["config_file"] = preset_config_file(
            values["preset"], presets_dir=values["presets_dir"], config=values["config_file"],
            strategy=strategy,
        )  # fmt: skip
    sections = run_config(strategy, values)
    sections["strategy"]["params"] = values["params"]
    sections = options.run_sections(sections, values)
    params = sections["strategy"].pop("params", {})
    config = _with_params(build_config(**sections), params)
    options.check_run_folder(config, values, settings.results_dir)  # before the work
    if values["config_file"] is not None:
        from ivybt.config_file import warn_ignored_by_backtest

        chosen = config.strategy
        warn_ignored_by_backtest(values["config_file"], chosen.name, chosen.params)
    if config.data.is_portfolio:
        from ivybt.runs.portfolio import run_portfolio_backtest

        result = run_portfolio_backtest(config, cache_dir=settings.cache_dir)
    else:
        result = run_backtest(config, cache_dir=settings.cache_dir)
    folder = result.write(
        values["out"],
        overwrite=values["overwrite"],
        results_dir=settings.results_dir,
        command_line=command_line_of(click.get_current_context()),
    )
    _print_summary(result)
    click.echo(f"wrote {folder}")


def run_config(strategy: str | None, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The data, strategy, execution, split and output sections from the shared options."""
    universe = options.universe_settings(values)
    portfolio = options.portfolio_settings(values)
    if portfolio and not universe and values.get("symbol") is not None:
        import warnings

        from ivybt.errors import IgnoredSettingsWarning

        given = ", ".join(f"--{options.PORTFOLIO_OPTIONS[f].replace('_', '-')}" for f in portfolio)
        warnings.warn(IgnoredSettingsWarning(
            f"{given} set how a universe shares one account; a single --symbol ignores them "
            "(give --symbols A,B,... for a universe)"
        ), stacklevel=2)  # fmt: skip
    return {
        "data": {
            **{
                name: values[name]
                for name in ("symbol", "interval", "start", "end", "source", "adjusted")
            },
            **options.bar_settings(values),
            **universe,
        },
        "strategy": {"name": strategy},
        "execution": {
            name: values[name] for name in EXECUTION_OPTIONS if values.get(name) is not None
        },
        "split": {"train_split": values["train_split"], "run_mode": values["run_mode"]},
        "output": {"out": values["out"]},
        **({"portfolio": portfolio} if "weights" in values else {}),
    }


def _with_params(config: Any, given: dict[str, Any]) -> Any:
    """Resolve parameters (CLI strings, a file's numbers) with the strategy's own types before
    they enter the config."""
    from ivybt.strategies import get_strategy

    params = get_strategy(config.strategy.name).resolve_params(given)
    return config.model_copy(
        update={"strategy": config.strategy.model_copy(update={"params": params})}
    )


def _print_summary(result: Any) -> None:
    from ivybt.report.html import bars_label

    params = " ".join(f"{name}={value}" for name, value in result.params.items())
    equity = result.equity
    on = ", ".join(result.symbols) if result.config.data.is_portfolio else result.data["symbol"]
    click.echo(
        f"{result.config.strategy.name} {params} on {on} "
        f"{result.config.data.interval}, {equity.index[0].date()}..{equity.index[-1].date()} "
        f"({len(equity)} bars){bars_label(result.config.data)}"
    )
    if result.split:
        click.echo(
            f"{result.split['run_mode']} part of a {result.split['train_split']:g} split at "
            f"{result.split['split_time']}"
        )
    click.echo(f"  {'':<14} {'strategy':>10} {'buy&hold':>10}")
    for name in TABLE_METRICS:
        held = result.benchmark.get(name)
        shown = format_metric(name, held) if held is not None else ""
        click.echo(f"  {name:<14} {format_metric(name, result.metrics[name])} {shown:>10}")
    if result.config.data.is_portfolio:
        exposure = result.exposure
        click.echo(
            f"  gross exposure avg {exposure['avg_gross']:.2f} max {exposure['max_gross']:.2f}, "
            f"net avg {exposure['avg_net']:.2f}, turnover {exposure['turnover']:.2f}/year "
            "(buy&hold: equal weights)"
        )
        for symbol, row in result.contributions.iterrows():
            click.echo(
                f"  {symbol:<14} pnl {row['pnl']:>14,.2f}  trades {row['trades']:>4}  "
                f"held {row['exposure']:.0%}"
            )


def format_metric(name: str, value: float) -> str:
    """A metric for the terminal: the report's formatting (`ivybt.report.format_metric`),
    right-aligned in a column."""
    from ivybt.report import format_metric as report_format

    return f"{report_format(name, value):>10}"
