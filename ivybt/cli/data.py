"""`ivybt data ...`: fetch, import, list and show market data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from ivybt.cli import Settings, options
from ivybt.errors import IvyBTError

_max_jump = click.option(
    "--max-jump",
    type=click.FloatRange(min=1.0, min_open=True),
    default=None,
    metavar="FACTOR",
    help="Allow price jumps up to FACTOR x the previous close (default 10; inf: no limit), "
    "for real moves such as prices not adjusted for a split. Stored with the series.",
)


@click.group("data")
def data() -> None:
    """Fetch, import, list and show market data (cache and bundled sample).

    \b
    Examples:
      ivybt data list
      ivybt data show SPY --rows 3
      ivybt data fetch SPY ^GSPC --start 2000-01-01
      ivybt data import SPY_D.csv --symbol SPY --interval 1d
    """


@data.command("fetch")
@click.argument("symbols", nargs=-1, required=True)
@options.interval
@options.start
@options.end
@options.repair
@_max_jump
@click.pass_obj
def fetch_command(
    settings: Settings,
    symbols: tuple[str, ...],
    interval: str,
    start: str | None,
    end: str | None,
    repair: bool,
    max_jump: float | None,
) -> None:
    """Fetch SYMBOLS from Yahoo Finance into the cache, only what is missing.

    A repeated request fetches nothing; a longer range fetches only the gaps; the last cached
    bars are re-fetched to catch revisions (dividends, splits, backfills), which re-fetch the
    whole series.

    \b
    Examples:
      ivybt data fetch SPY
      ivybt data fetch SPY QQQ IWM --start 2010-01-01 --end 2024-01-01
      ivybt data fetch EURUSD=X --interval 1h
    """
    from ivybt.data.cache import DataCache, normalise_symbol
    from ivybt.data.intervals import parse_interval, to_bound

    for symbol in symbols:
        normalise_symbol(symbol)  # every name a ticker before anything is fetched
    iv = parse_interval(interval)
    lo, hi = to_bound(start, iv, name="--start"), to_bound(end, iv, name="--end")
    if lo is not None and hi is not None and lo >= hi:
        raise click.BadParameter(f"--start must be before --end, got {start} and {end}")
    cache = DataCache(settings.cache_dir)
    failures: list[str] = []
    for done, symbol in enumerate(symbols, start=1):
        prefix = f"[{done}/{len(symbols)}] " if len(symbols) > 1 else ""
        try:
            report = cache.update(symbol, iv, lo, hi, repair=repair, max_jump=max_jump)
        except IvyBTError as err:
            if len(symbols) == 1:
                raise
            failures.append(symbol)
            click.echo(f"{prefix}error: {symbol}: {' '.join(str(err).split())}", err=True)
            continue
        for line in report.repairs:
            click.echo(f"{prefix}{report.symbol}: repaired: {line}", err=True)
        click.echo(f"{prefix}{report.summary()}")
    if failures:
        raise click.ClickException(
            f"{len(failures)} of {len(symbols)} symbols failed ({', '.join(failures)}); the "
            "others are cached"
        )


@data.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", "-s", required=True, help="Symbol to store the series under.")
@click.option(
    "--interval",
    "-i",
    required=True,
    callback=options._check_interval,
    help="The file's bar interval, e.g. 1d or 1h.",
)
@click.option(
    "--tz",
    default=None,
    help="Time zone (IANA name) of intraday times written without a UTC offset. Default: "
    "UTC for a file without offsets; a file mixing both kinds needs it.",
)
@click.option(
    "--date-format",
    default=None,
    help="strftime format of the dates when they are ambiguous, e.g. '%d/%m/%Y'.",
)
@click.option(
    "--stamp",
    type=click.Choice(["open", "close"]),
    default="open",
    show_default=True,
    help="Whether intraday times mark the bar's open or close.",
)
@options.repair
@_max_jump
@click.option(
    "--replace",
    is_flag=True,
    help="Discard the cached series first (needed to replace Yahoo data).",
)
@click.pass_obj
def import_command(
    settings: Settings,
    file: Path,
    symbol: str,
    interval: str,
    tz: str | None,
    date_format: str | None,
    stamp: str,
    repair: bool,
    max_jump: float | None,
    replace: bool,
) -> None:
    """Import a vendor CSV or Parquet FILE into the cache, validated.

    Column names (Date/Datetime/Timestamp, Open, High, Low, Close or Close/Last, Adj Close,
    Volume, ...), number formats ($1,234.5; 1.2M) and common date formats are recognised.
    The bars are validated (docs/data.md): a price more than 10x away from the previous close
    is refused unless --max-jump allows it.

    \b
    Examples:
      ivybt data import SPY_D.csv --symbol SPY --interval 1d
      ivybt data import es_1h.csv --symbol ES --interval 1h --tz America/Chicago --stamp close
      ivybt data import eu.csv --symbol DAX --interval 1d --date-format '%d.%m.%Y'
    """
    from ivybt.data.importer import import_file

    report = import_file(
        file,
        symbol=symbol,
        interval=interval,
        tz=tz,
        date_format=date_format,
        stamp=stamp,  # type: ignore[arg-type]
        repair=repair,
        max_jump=max_jump,
        replace=replace,
        cache_dir=settings.cache_dir,
    )
    for line in report.repairs:
        click.echo(f"repaired: {line}", err=True)
    click.echo(report.summary())


@data.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
def list_command(settings: Settings, fmt: str) -> None:
    """List cached and bundled series: interval, first and last bar, rows.

    \b
    Examples:
      ivybt data list
      ivybt --cache-dir /data/cache data list --format csv
    """
    from ivybt.data.loader import list_series

    table = list_series(settings.cache_dir)
    if fmt == "json":
        click.echo(table.to_json(orient="records", date_format="iso", indent=2))
        return
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
        return
    shown = table.assign(
        first=table["first"].map(_when),
        last=table["last"].map(_when),
        rows=table["rows"].map("{:,}".format),
        adj_close=table["adj_close"].map({True: "yes", False: "no"}),
        source=table["source"].str.split(";").str[0],
        detail=table["detail"].str.split(" \\(").str[0],
    )
    click.echo(shown.to_string(index=False))
    cached = int((table["location"] == "cache").sum())
    click.echo(
        f"\n{cached} cached series in {settings.cache_dir}; "
        f"{len(table) - cached} bundled (use --source sample)."
    )


@data.command("show")
@click.argument("symbol")
@options.interval
@click.option(
    "--source",
    type=click.Choice(["local", "cache", "sample", "yahoo", "auto"]),
    default="local",
    show_default=True,
    help="local: the cache if the series is cached, else the bundled sample; never the network.",
)
@options.start
@options.end
@options.adjusted
@click.option(
    "--rows",
    "-n",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Rows of head and tail to print.",
)
@click.pass_obj
def show_command(
    settings: Settings,
    symbol: str,
    interval: str,
    source: str,
    start: str | None,
    end: str | None,
    adjusted: bool | None,
    rows: int,
) -> None:
    """Summarise one series and print its first and last bars.

    \b
    Examples:
      ivybt data show SPY
      ivybt data show EURUSD --interval 1h --rows 3
      ivybt data show AAPL --raw --start 2010-01-01 --end 2011-01-01
    """
    from ivybt.data.loader import load_series, local_source
    from ivybt.data.summary import summarize

    if source == "local":
        source = local_source(symbol, interval, settings.cache_dir)
    loaded = load_series(
        symbol,
        interval,
        start,
        end,
        source=source,  # type: ignore[arg-type]
        adjusted=adjusted,
        cache_dir=settings.cache_dir,
    )
    facts = summarize(loaded)
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        click.echo(f"{key:<{width}}  {_fmt(value)}")
    if rows:
        with pd.option_context("display.width", 120, "display.max_columns", 10):
            click.echo(f"\nfirst {rows} bars:\n{loaded.frame.head(rows).to_string()}")
            click.echo(f"\nlast {rows} bars:\n{loaded.frame.tail(rows).to_string()}")


def _when(stamp: object) -> str:
    if stamp is None or stamp is pd.NaT or (isinstance(stamp, float) and stamp != stamp):
        return "-"
    from ivybt.data.intervals import day_label

    stamp = pd.Timestamp(stamp)  # type: ignore[arg-type]
    return day_label(stamp) + (" UTC" if stamp.tzinfo is not None else "")


def _duration(delta: pd.Timedelta) -> str:
    if delta % pd.Timedelta(days=1) == pd.Timedelta(0):
        days = delta.days
        return f"{days} day{'s' if days != 1 else ''}"
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _fmt(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return _when(value)
    if isinstance(value, pd.Timedelta):
        return _duration(value)
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)
