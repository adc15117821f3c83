"""Import OHLCV from any vendor's CSV or Parquet file into the cache.

What is normalised (and reported, so nothing happens silently):

- column names: Date/Datetime/Timestamp/Time/"Gmt time", Open/High/Low/Close/"Close/Last"/
  "Adj Close"/Volume and other common spellings (`ivybt.data.columns`); a separate Time column
  is joined to the Date column; other columns are dropped and listed;
- numbers: "$1,234.50", "1.2M" volumes, and decimal commas in ';'-separated files;
- dates: ISO 8601 (with or without offsets), epoch seconds/ms/us/ns, and common formats
  (m/d/Y, d.m.Y, Y.m.d H:M, d-b-Y, ...). When a file's dates fit two formats that disagree
  (01/02/2020), the import stops and asks for --date-format;
- time zones: naive intraday times are read in `tz` (default UTC) and converted to UTC; a file
  mixing times with and without a UTC offset is refused unless `tz` is given, which then
  applies to the rows without one; bars stamped at their close can be shifted to their open
  with stamp="close"; daily bars keep the date written (an offset does not move it), and a
  `tz` for them is refused, as it would change nothing;
- dates must fit the 1677-09-22 to 2262-04-11 timeline (nanosecond timestamps);
- prices pass `ivybt.data.validate` (finite arithmetic, at most a `max_jump` factor between a
  bar and the previous close; the factor used is stored with the series).

The interval is checked against the timestamps (no intraday times in daily data, bar spacing
equal to an intraday interval); no resampling is done.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ivybt.data.cache import DataCache, UpdateReport, normalise_symbol
from ivybt.data.columns import find_date_column, map_value_columns, squash
from ivybt.data.intervals import Interval, parse_interval
from ivybt.data.numbers import parse_numbers
from ivybt.data.timestamps import (
    ParsedTimestamps,
    check_time_zone,
    localize,
    parse_timestamps,
)
from ivybt.data.validate import INDEX_NAME, validate_ohlcv
from ivybt.errors import ConfigError, ImportFormatError

Stamp = Literal["open", "close"]
_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".gz", ".bz2", ".zip", ".xz"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_SYMBOL_COLUMNS = ("ticker", "symbol")


@dataclass(frozen=True)
class ImportReport:
    """What an import read, how it was interpreted, and what the cache holds afterwards."""

    path: Path
    symbol: str
    interval: str
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp
    columns: dict[str, str]
    dropped_columns: tuple[str, ...]
    dates: str
    file_sha256: str
    repairs: tuple[str, ...] = ()
    max_jump: float | None = None
    update: UpdateReport | None = field(default=None, compare=False)

    def summary(self) -> str:
        mapped = ", ".join(f"{k}->{v}" for k, v in self.columns.items())
        dropped = f"; dropped {', '.join(self.dropped_columns)}" if self.dropped_columns else ""
        fixed = f"; repairs: {'; '.join(self.repairs)}" if self.repairs else ""
        jumps = (
            f"; price jumps up to {self.max_jump:g}x allowed (--max-jump)"
            if self.max_jump is not None
            else ""
        )
        head = (
            f"read {self.rows:,} {self.interval} bars of {self.symbol} from {self.path.name} "
            f"({self.first} .. {self.last}); columns {mapped}{dropped}; dates "
            f"{self.dates}{fixed}{jumps}"
        )
        return head if self.update is None else f"{head}\n{self.update.summary()}"


def import_file(
    path: str | Path,
    *,
    symbol: str,
    interval: str,
    tz: str | None = None,
    date_format: str | None = None,
    stamp: Stamp = "open",
    repair: bool = False,
    max_jump: float | None = None,
    replace: bool = False,
    cache_dir: str | Path | None = None,
) -> ImportReport:
    """Read a vendor file (`read_vendor_file`) and merge it into the cache.

    Imported bars win over cached imported bars at the same timestamps. A series fetched from
    Yahoo is not mixed with a vendor file: pass replace=True to discard it first. A `max_jump`
    given is stored with the series, so later loads validate it with the same factor.
    """
    frame, report = read_vendor_file(
        path,
        symbol=symbol,
        interval=interval,
        tz=tz,
        date_format=date_format,
        stamp=stamp,
        repair=repair,
        max_jump=max_jump,
    )
    basis = (
        "as in the vendor file "
        + report.path.name
        + ("; adj_close as given" if "adj_close" in frame else "")
    )
    update = DataCache(cache_dir).store_import(
        report.symbol,
        report.interval,
        frame,
        origin=f"{report.path.name} sha256:{report.file_sha256}",
        price_basis=basis,
        replace=replace,
        max_jump=max_jump,
    )
    return ImportReport(**{**report.__dict__, "update": update})


def read_vendor_file(
    path: str | Path,
    *,
    symbol: str,
    interval: str,
    tz: str | None = None,
    date_format: str | None = None,
    stamp: Stamp = "open",
    repair: bool = False,
    max_jump: float | None = None,
) -> tuple[pd.DataFrame, ImportReport]:
    """Read a CSV or Parquet file into a validated canonical OHLCV frame (no cache write).

    `tz` is the zone of intraday times written without a UTC offset: None reads a file
    without offsets in UTC and refuses a file that mixes both kinds; a zone given reads every
    such row in it. `max_jump` is the validation factor (`ivybt.data.validate.MAX_JUMP`).
    """
    path = Path(path)
    iv = parse_interval(interval)
    symbol = normalise_symbol(symbol)
    if tz is not None:
        check_time_zone(tz)
        if not iv.intraday:
            raise ConfigError(
                f"--tz applies to intraday bars only; {iv.name} bars keep the session dates "
                f"written in the file, so --tz {tz} would change nothing (drop --tz)"
            )
    if stamp not in ("open", "close"):
        raise ConfigError(f"stamp must be 'open' or 'close', got {stamp!r}")
    if stamp == "close" and not iv.intraday:
        raise ConfigError(
            f"--stamp close applies to intraday bars only; {iv.name} bars carry session dates "
            "(drop --stamp)"
        )
    raw, sep = _read_table(path)
    _check_single_symbol(raw, path)
    parsed, date_columns = _extract_timestamps(raw, path, date_format, iv, tz)
    mapping = map_value_columns(pd.Index([c for c in raw.columns if c not in date_columns]))
    dropped = tuple(str(c) for c in raw.columns if c not in mapping and c not in date_columns)
    frame = pd.DataFrame(
        {
            target: parse_numbers(raw[source], path, source, semicolon=sep == ";")
            for source, target in mapping.items()
        }
    )
    index, tz_note = _to_timeline(parsed.stamps, iv, tz, stamp, path, mixed=parsed.mixed)
    frame.index = index
    if len(frame) > 1 and frame.index.is_monotonic_decreasing:
        frame = frame.iloc[::-1]  # newest-first vendors (Nasdaq.com, Investing.com)
        tz_note += "; newest-first file read oldest-first"
    _check_spacing(frame.index, iv, path)
    checked = validate_ohlcv(frame, name=str(path), interval=iv, repair=repair, max_jump=max_jump)
    out = checked.frame
    report = ImportReport(
        path=path,
        symbol=symbol,
        interval=iv.name,
        rows=len(out),
        first=out.index[0],
        last=out.index[-1],
        columns=dict(mapping, **{c: "date" for c in date_columns}),
        dropped_columns=dropped,
        dates=f"{parsed.how}; {tz_note}",
        file_sha256=_sha256(path),
        repairs=checked.repairs,
        max_jump=max_jump,
    )
    return out, report


def _read_table(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The file as a frame of strings (CSV) or as stored (Parquet), and the CSV separator."""
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file; give the path of a CSV or Parquet file")
    suffix = path.suffix.lower()
    sep = None
    try:
        if suffix in _PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex):
                frame = frame.reset_index(names=frame.index.name or "date")
        elif suffix in _CSV_SUFFIXES:
            sep = _sniff_separator(path)
            frame = pd.read_csv(path, sep=sep, dtype=str, skipinitialspace=True)
        else:
            raise ImportFormatError(
                f"{path}: unknown file type {suffix!r}; give a .csv/.txt/.tsv (optionally "
                "compressed) or .parquet file"
            )
    except ImportFormatError:
        raise
    except Exception as err:
        raise ImportFormatError(f"{path}: cannot be read ({type(err).__name__}: {err})") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise ImportFormatError(f"{path}: the file has no rows; check it is the right file")
    return frame, sep


def _sniff_separator(path: Path) -> str:
    if path.suffix.lower() in {".gz", ".bz2", ".zip", ".xz"}:
        return ","
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(8192)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_single_symbol(raw: pd.DataFrame, path: Path) -> None:
    for column in raw.columns:
        if squash(column) in _SYMBOL_COLUMNS:
            values = raw[column].dropna().unique()
            if len(values) > 1:
                shown = ", ".join(map(str, values[:5]))
                raise ImportFormatError(
                    f"{path}: column {column!r} holds {len(values)} symbols ({shown}); import "
                    "one symbol per file (filter the rows first)"
                )


def _extract_timestamps(
    raw: pd.DataFrame, path: Path, date_format: str | None, iv: Interval, tz: str | None
) -> tuple[ParsedTimestamps, tuple[str, ...]]:
    date_column = find_date_column(raw.columns)
    if date_column is None:
        raise ImportFormatError(
            f"{path}: no date column found (columns: {', '.join(map(str, raw.columns))}); "
            "name it Date, Datetime or Timestamp"
        )
    values = raw[date_column]
    used: tuple[str, ...] = (date_column,)
    time_column = next((c for c in raw.columns if squash(c) == "time" and c != date_column), None)
    if time_column is not None and not pd.api.types.is_datetime64_any_dtype(values):
        values = values.astype(str).str.strip() + " " + raw[time_column].astype(str).str.strip()
        used = (date_column, time_column)
    parsed = parse_timestamps(
        values,
        date_format=date_format,
        where=f"{path}, {used[0]}",
        naive_tz=tz if iv.intraday else None,
        wall_time=not iv.intraday,
    )
    return parsed, used


def _to_timeline(
    stamps: pd.DatetimeIndex,
    iv: Interval,
    tz: str | None,
    stamp: Stamp,
    path: Path,
    *,
    mixed: bool = False,
) -> tuple[pd.DatetimeIndex, str]:
    if iv.intraday:
        if stamps.tz is None:
            stamps = localize(stamps, tz or "UTC", str(path))
            note = f"naive times read in {tz or 'UTC'}"
        elif mixed:
            note = f"times without an offset read in {tz}"
        elif tz is not None:
            note = f"times carry their own zone (--tz {tz} not needed)"
        else:
            note = "times carry their own zone"
        stamps = stamps.tz_convert("UTC")
        if stamp == "close":
            stamps = stamps - iv.step
            note += f"; shifted from bar close to bar open by {iv.name}"
        return stamps.as_unit("ns").rename(INDEX_NAME), note + ", stored in UTC"
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    times = stamps - stamps.normalize()
    if times.nunique() > 1:
        shown = ", ".join(sorted({str(t)[-8:] for t in times[:50]})[:3])
        raise ImportFormatError(
            f"{path}: {iv.name} bars must be one per date, but the times of day vary "
            f"({shown}); is the file intraday? pass its bar --interval, e.g. 1h"
        )
    note = (
        "session dates"
        if times.nunique() == 0 or times[0] == pd.Timedelta(0)
        else (f"session dates (constant time {str(times[0])[-8:]} dropped)")
    )
    return stamps.normalize().as_unit("ns").rename(INDEX_NAME), note


def _check_spacing(index: pd.DatetimeIndex, iv: Interval, path: Path) -> None:
    if len(index) < 5:
        return
    spacing = pd.Series(index.sort_values().unique()).diff().dropna()
    if spacing.empty:
        return
    median = spacing.median()
    ok = median == iv.step if iv.intraday else 0.5 * iv.step <= median <= 1.5 * iv.step
    if not ok:
        raise ImportFormatError(
            f"{path}: bars are typically {median} apart, which does not fit --interval "
            f"{iv.name} ({iv.step}); pass the file's bar interval (imports are not resampled)"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
