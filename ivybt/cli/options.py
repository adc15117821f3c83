"""Options shared by IvyBT's commands, defined once and stacked as decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ivybt.data.intervals import INTERVAL_NAMES, parse_interval
from ivybt.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def _check_interval(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return parse_interval(value).name
    except ConfigError as err:
        raise click.BadParameter(str(err)) from err


def _check_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    import pandas as pd

    if value is None:
        return None
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise click.BadParameter(
            f"expected a date like 2020-01-31 or a time like '2020-01-31 14:30', got {value!r}"
        ) from err
    return value


def interval[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--interval",
        "-i",
        default="1d",
        show_default=True,
        metavar="|".join(INTERVAL_NAMES),
        callback=_check_interval,
        help="Bar interval. Intraday bars are stamped at their open, in UTC.",
    )(func)


def start[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--start",
        default=None,
        metavar="DATE",
        callback=_check_date,
        help="First bar to include, e.g. 2015-01-01 (inclusive). Default: all history.",
    )(func)


def end[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--end",
        default=None,
        metavar="DATE",
        callback=_check_date,
        help="End of the range, exclusive, e.g. 2020-01-01. Default: the last complete bar.",
    )(func)


def adjusted[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--adjusted/--raw",
        "adjusted",
        default=None,
        help="Adjusted prices (OHLC x adj_close/close) or the stored raw prices. "
        "Default: adjusted when the series has adj_close, raw otherwise.",
    )(func)


def repair[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--repair",
        is_flag=True,
        help="Apply safe repairs: sort, drop exact duplicate rows, clip OHLC violations "
        "within 1e-4 relative. Each repair is reported.",
    )(func)


# ---- options shared by the run commands (backtest now; grid, optimize, walkforward next) ----


def _parse_params(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"expected name=value such as fast=10, got {item!r}")
        if name.strip() in parsed:
            raise click.BadParameter(f"parameter {name.strip()!r} is given twice")
        parsed[name.strip()] = value.strip()
    return parsed


def strategy[F: Callable[..., Any]](func: F) -> F:
    """The STRATEGY argument: required unless --config gives strategy.name (`run_sections`)."""
    return click.argument("strategy", required=False)(func)


def symbol[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--symbol",
        "-s",
        default=None,
        help="Ticker, e.g. SPY, ^GSPC, EURUSD=X (bundled samples work offline). Required "
        "unless --config gives data.symbol.",
    )(func)


def config_file[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="Run configuration: a YAML file of sections (data, strategy, execution, split, "
        "study, output) or a run's manifest.json, to reproduce it. Options typed on the "
        "command line override the file's fields; defaults do not.",
    )(func)


def run_sections(
    sections: dict[str, dict[str, Any]],
    values: dict[str, Any],
    aliases: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The sections of the run: `sections` (built from every option) without --config.

    With --config FILE, the file's sections with only the options the user typed laid over
    them (`ivybt.config_file.apply_config_file`): a default never replaces the file's value.
    A field's option has the field's name unless `aliases` (or strategy.name -> STRATEGY,
    strategy.space/params -> -p) says otherwise. Without --config, STRATEGY and --symbol are
    required as before.
    """
    ctx = click.get_current_context()
    path = values["config_file"]
    if path is None:
        for name, value, hint in (("strategy", sections["strategy"]["name"], "'STRATEGY'"),
                                  ("symbol", sections["data"]["symbol"], None)):  # fmt: skip
            if value is None:  # Click's own message, as when both were required
                param = next(param for param in ctx.command.params if param.name == name)
                raise click.MissingParameter(ctx=ctx, param=param, param_hint=hint)
        return sections
    from ivybt.config_file import apply_config_file

    names = {"name": "strategy", "space": "params", "params": "params", **(aliases or {})}
    typed = {
        section: {field: value for field, value in fields.items()
                  if (any(_typed(ctx, f"renko_{name}") for name in RENKO_OPTIONS)
                      if field == "renko" else _typed(ctx, names.get(field, field)))}
        for section, fields in sections.items()
    }  # fmt: skip
    return apply_config_file(typed, path)


def _typed(ctx: click.Context, name: str) -> bool:
    """Whether the user gave option `name` (typed, or from an environment variable)."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source(name)
    return source is not None and source not in (
        ParameterSource.DEFAULT,
        ParameterSource.DEFAULT_MAP,
    )


def source[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--source",
        type=click.Choice(["auto", "yahoo", "cache", "sample"]),
        default="auto",
        show_default=True,
        help="Where bars come from: auto = Yahoo through the cache, falling back to the "
        "bundled sample (with a warning) when offline and nothing is cached.",
    )(func)


def params[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_params,
        help="Strategy parameter, repeatable: -p fast=10 -p slow=50 (see `ivybt strategies`).",
    )(func)


def execution[F: Callable[..., Any]](func: F) -> F:
    """--commission --slippage --fill --direction --size --cash --periods-per-year."""
    decorators = [
        click.option(
            "--commission",
            type=click.FloatRange(0.0, 0.1, max_open=True),
            default=0.001,
            show_default=True,
            help="Commission, fraction of traded notional per side (0.001 = 0.1%).",
        ),
        click.option(
            "--slippage",
            type=click.FloatRange(0.0, 0.1, max_open=True),
            default=0.0005,
            show_default=True,
            help="Slippage, fraction that moves each fill price against you.",
        ),
        click.option(
            "--fill",
            type=click.Choice(["next_open", "close"]),
            default="next_open",
            show_default=True,
            help="next_open: a decision on bar t fills at bar t+1's open. close: at bar t's "
            "close (vectorbt's default, optimistic; for comparisons).",
        ),
        click.option(
            "--direction",
            type=click.Choice(["long", "short", "both"]),
            default="long",
            show_default=True,
            help="Sides the strategy may take.",
        ),
        click.option(
            "--size",
            type=click.FloatRange(0.0, 1.0, min_open=True),
            default=1.0,
            show_default=True,
            help="Fraction of equity per position (commission included); fractional units.",
        ),
        click.option(
            "--cash",
            "initial_cash",
            type=click.FloatRange(0.0, min_open=True),
            default=10_000.0,
            show_default=True,
            help="Initial equity, in the instrument's currency.",
        ),
        click.option(
            "--periods-per-year",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            help="Bars per year for annualising. Default: from the interval and calendar "
            "(252 for daily weekday bars, 365 when weekends trade, measured for intraday).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


RENKO_OPTIONS = ("box", "atr", "atr_mult", "atr_dynamic", "reversal", "anchor", "source",
                 "volume")  # fmt: skip
"""RenkoConfig fields, each set by --renko-<field> (options value key: renko_<field>)."""


def bars[F: Callable[..., Any]](func: F) -> F:
    """--bars and the --renko-* settings (docs/renko.md)."""
    decorators = [
        click.option("--bars", type=click.Choice(["standard", "renko"]), default="standard",
                     show_default=True, help="Bars the signals are computed on; trades always "
                     "fill on the real bars (a brick's decision at the next real open)."),
        click.option("--renko-box", type=click.FloatRange(0.0, min_open=True), default=None,
                     metavar="SIZE", help="Fixed brick size, price units (or -p box=a:b:step)."),
        click.option("--renko-atr", type=click.IntRange(1), default=None, metavar="N",
                     help="ATR box: ATR(N) known at the start of the evaluated window."),
        click.option("--renko-atr-mult", type=click.FloatRange(0.0, min_open=True),
                     default=None, metavar="X", help="ATR box multiple (default 1.0)."),
        click.option("--renko-atr-dynamic", is_flag=True, default=None,
                     help="Recompute the ATR box at each brick instead of fixing it."),
        click.option("--renko-reversal", type=click.IntRange(1), default=None, metavar="BOXES",
                     help="Boxes against the trend that make a reversal brick (default 2)."),
        click.option("--renko-anchor", type=click.Choice(["floor", "first"]), default=None,
                     help="First level at floor(c0 / box) x box (default) or at c0."),
        click.option("--renko-source", type=click.Choice(["close", "hl"]), default=None,
                     help="Build bricks from closes (default) or from highs and lows."),
        click.option("--renko-volume", type=click.Choice(["sum", "split", "none"]),
                     default=None, help="Brick volume: bars' sum since the last brick "
                     "(default), that sum split over a bar's bricks, or none."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def bar_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The data section's bars and renko fields from the options' values."""
    renko = {name: values[f"renko_{name}"] for name in RENKO_OPTIONS
             if values.get(f"renko_{name}") is not None}  # fmt: skip
    return {"bars": values.get("bars", "standard"), "renko": renko or None}


def split[F: Callable[..., Any]](func: F) -> F:
    """--train-split --run-mode."""
    func = click.option(
        "--run-mode",
        type=click.Choice(["full", "train", "test"]),
        default="full",
        show_default=True,
        help="train: trade only the training part; test: trade only the test part, using "
        "the training history to warm up indicators. Needs --train-split.",
    )(func)
    return click.option(
        "--train-split",
        type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
        default=None,
        metavar="FRACTION",
        help="Share of the bars in the training part, e.g. 0.7.",
    )(func)


def output[F: Callable[..., Any]](func: F) -> F:
    """--out --overwrite."""
    func = click.option(
        "--overwrite",
        is_flag=True,
        help="Replace a run folder that holds another configuration's results.",
    )(func)
    return click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False),
        default=None,
        help="Run folder. Default: <results dir>/<command>-<strategy>-<symbol>-<UTC time>.",
    )(func)


def study[F: Callable[..., Any]](func: F) -> F:
    """--constraint --objective --min-trades --memory-budget."""
    decorators = [
        click.option(
            "--constraint",
            "constraints",
            multiple=True,
            metavar="EXPR",
            help="Extra constraint on the parameters, repeatable: --constraint 'fast * 2 <= "
            "slow'. The strategy's own constraints always apply.",
        ),
        click.option(
            "--objective",
            default="sharpe",
            show_default=True,
            metavar="METRIC",
            help="Metric the best combination maximises (docs/metrics.md).",
        ),
        click.option(
            "--min-trades",
            type=click.IntRange(0),
            default=1,
            show_default=True,
            help="Combinations with fewer closed trades are invalid for selection.",
        ),
        click.option(
            "--evidence/--no-evidence",
            default=True,
            show_default=True,
            help="Compute PBO (CSCV) and the deflated Sharpe ratio for metrics.json and the "
            "report (costs about a second on a 15,000-combination grid).",
        ),
        click.option(
            "--memory-budget",
            "memory_budget_mb",
            type=click.FloatRange(16.0),
            default=1024.0,
            show_default=True,
            metavar="MB",
            help="Peak memory the grid plans for; larger grids run in chunks.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
