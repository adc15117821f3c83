"""`ivybt signals PRESET...`: today's side, target weight and stops per symbol (no broker)."""

from __future__ import annotations

from pathlib import Path

import click

from ivybt.cli import Settings
from ivybt.cli.presets import presets_dir_option


@click.command("signals")
@click.argument("presets", nargs=-1, required=True)
@click.option(
    "--as-of",
    default=None,
    metavar="DATE",
    help="Replay a past moment: data cut at DATE (a date is its 00:00 UTC), so the table is "
    "what a backtest held that day. Default: now.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "yahoo", "cache", "sample"]),
    default="auto",
    show_default=True,
    help="Where bars come from: auto brings the cache up to date from Yahoo (only what is "
    "missing), offline the cache, else the bundled sample with a warning.",
)
@click.option(
    "--max-age",
    default=None,
    metavar="DURATION",
    help="Exit with status 3 when a symbol's last bar ended longer ago, e.g. 4d, 36h. "
    "Default per interval: 4d for daily and intraday bars, 10d weekly, 34d monthly.",
)
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the table as JSON (a list of rows).")  # fmt: skip
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the table as CSV.")  # fmt: skip
@presets_dir_option
@click.pass_obj
def signals(
    settings: Settings,
    presets: tuple[str, ...],
    as_of: str | None,
    source: str,
    max_age: str | None,
    json_file: Path | None,
    csv_file: Path | None,
    presets_dir: Path | None,
) -> None:
    """Print what each PRESET holds now, per symbol, from fresh data.

    For each symbol: the side to hold from the next fill on and since which bar, what the
    last complete bar's decision changed (enter, exit, flip, hold) and why, the target weight
    (after the portfolio's normalisation and leverage cap), the stop levels in force, the
    bars left to a time stop, the last close and the data's last bar. A bar still forming
    (today's daily bar) is left out. Exit status 3 when some symbol's data are older than
    --max-age allows, so a scheduler notices (docs/presets.md).

    \b
    Examples:
      ivybt signals spy-sma
      ivybt signals spy-sma universe --json signals.json --csv signals.csv
      ivybt signals spy-sma --as-of 2020-06-01 --source sample
      ivybt signals intraday-eurusd --max-age 6h
    """
    from ivybt.files import write_json, write_text
    from ivybt.runs.signals import STATUS_STALE, signals_records, stale_lines
    from ivybt.runs.signals import signals as compute

    table = compute(list(presets), as_of=as_of, source=source, max_age=max_age,
                    presets_dir=presets_dir, cache_dir=settings.cache_dir)  # fmt: skip
    moment = table.attrs["as_of"] or table.attrs["now"]
    click.echo(f"{'as of' if as_of else 'now'}: {moment[:16].replace('T', ' ')} UTC")
    click.echo(format_table(table))
    if json_file is not None:
        write_json(json_file, signals_records(table))
        click.echo(f"wrote {json_file}")
    if csv_file is not None:
        write_text(csv_file, table.to_csv(index=False))
        click.echo(f"wrote {csv_file}")
    lines = stale_lines(table)
    if lines:
        for line in lines:
            click.echo(f"warning: {line}", err=True)
        click.echo(f"{len(lines)} symbol(s) with stale data: exit status {STATUS_STALE}", err=True)
        raise click.exceptions.Exit(STATUS_STALE)


def format_table(table: object) -> str:
    """The signals table for the terminal: dates, weights as fractions, the stop columns only
    when some preset has stops, `*` after a stale symbol's last bar."""
    import pandas as pd

    from ivybt.data.intervals import day_label

    frame: pd.DataFrame = table  # type: ignore[assignment]
    shown = pd.DataFrame(
        {
            "preset": frame["preset"],
            "symbol": frame["symbol"],
            "side": frame["side"],
            "since": frame["since"].map(lambda s: "-" if pd.isna(s) else day_label(s)),
            "change": frame["change"],
            "reason": frame["reason"],
            "weight": frame["weight"].map(lambda w: f"{w:+.4f}" if w else "0"),
            "signal": frame["signal"],
        }
    )
    for column in ("stop_loss", "take_profit", "trailing_stop"):
        if frame[column].notna().any():
            shown[column] = frame[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    if frame["time_stop_bars"].notna().any():
        shown["time_stop_bars"] = frame["time_stop_bars"].map(
            lambda v: "-" if pd.isna(v) else str(int(v)))  # fmt: skip
    shown["price"] = frame["price"].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    shown["last_bar"] = [
        day_label(stamp) + ("*" if stale else "")
        for stamp, stale in zip(frame["last_bar"], frame["stale"], strict=True)
    ]
    return str(shown.to_string(index=False))
