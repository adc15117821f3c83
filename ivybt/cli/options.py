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
