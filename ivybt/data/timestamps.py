"""Parse vendor timestamps: datetimes, ISO 8601, epoch numbers and common date formats.

Order of attempts: datetime dtype, an explicit format, ISO 8601 (with offsets: read as UTC),
epoch seconds/ms/us/ns (unit from the magnitude), then the common formats below, which must all
agree on every sampled row. Formats that fit and disagree (01/02/2020 as m/d or d/m) are an
error asking for an explicit format.

A file whose ISO times mix rows with a UTC offset and rows without one is refused (naming the
first row of each kind), unless the caller says which zone the rows without an offset are in
(`naive_tz`, the importer's explicit --tz). Timestamps must fit IvyBT's nanosecond timeline,
1677-09-22 to 2262-04-11 (`FIRST_DATE`, `LAST_DATE`); a row outside it is named.
"""

from __future__ import annotations

import difflib
import functools
import zoneinfo
from typing import NamedTuple

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError, ImportFormatError

#: The first and last whole days a nanosecond timestamp can hold (pandas' int64 timeline).
FIRST_DATE = pd.Timestamp.min.ceil("D")
LAST_DATE = pd.Timestamp.max.floor("D")
TIMELINE = f"{FIRST_DATE:%Y-%m-%d} to {LAST_DATE:%Y-%m-%d}"
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


class ParsedTimestamps(NamedTuple):
    """What `parse_timestamps` read: the times, how, and whether rows had mixed kinds."""

    stamps: pd.DatetimeIndex
    how: str
    mixed: bool = False


_DATE_PARTS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%b %d %Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%Y%m%d",
)
_TIME_PARTS = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M", "T%H:%M:%S")
_SNIFF_ROWS = 500


def parse_timestamps(
    values: pd.Series,
    *,
    date_format: str | None = None,
    where: str = "dates",
    naive_tz: str | None = None,
    wall_time: bool = False,
) -> ParsedTimestamps:
    """Parse a column of timestamps; return them and how they were read.

    Tries, in order: datetime dtype, `date_format`, ISO 8601, epoch numbers (unit from the
    magnitude), then the common formats, which must agree on every row sampled.

    Parameters
    ----------
    values : the column as read (strings, numbers or datetimes); its index numbers the rows.
    date_format : an explicit strftime format (with ``%z``: offsets read as UTC).
    where : how messages name the column, e.g. "prices.csv, Date".
    naive_tz : the zone of ISO times without an offset in a file where other rows carry one;
        None refuses such a mixed file. Files without any offset stay naive (the caller
        decides their zone).
    wall_time : drop ISO offsets and keep the times as written (daily bars: the date written
        is the session date, whatever the offset).

    Returns
    -------
    ParsedTimestamps: tz-naive times, or UTC times when the rows carry offsets or are epoch
    numbers; `mixed` is True when `naive_tz` was applied to some rows.
    """
    try:
        parsed = _parse(values, date_format, where, naive_tz, wall_time)
    except pd.errors.OutOfBoundsDatetime as err:
        raise ImportFormatError(
            f"{where}: dates outside the {TIMELINE} timeline ({err}); fix or drop those rows"
        ) from err
    return parsed._replace(stamps=_on_timeline(parsed.stamps, values, where))


def check_time_zone(tz: str, *, name: str = "--tz") -> str:
    """Return `tz` if it names a time zone (IANA name, "UTC"); a `ConfigError` otherwise."""
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception as err:
        close = difflib.get_close_matches(str(tz), _zone_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"{name} must be a time zone such as UTC, Europe/London or America/New_York, got "
            f"{tz!r}; {hint}see the IANA tz database names"
        ) from err
    return tz


def localize(stamps: pd.DatetimeIndex, tz: str, where: str) -> pd.DatetimeIndex:
    """Read naive times as wall-clock times in `tz` and convert them to UTC.

    Daylight-saving repeats are resolved by order (`ambiguous="infer"`); a time that does not
    exist in the zone is an `ImportFormatError` asking for the file's zone.
    """
    try:
        aware = stamps.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except Exception as err:
        raise ImportFormatError(
            f"{where}: naive times cannot be read in time zone {tz!r} ({err}); pass "
            "the file's zone with --tz, e.g. --tz America/New_York"
        ) from err
    return aware.tz_convert("UTC")


@functools.cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _parse(
    values: pd.Series,
    date_format: str | None,
    where: str,
    naive_tz: str | None,
    wall_time: bool,
) -> ParsedTimestamps:
    if pd.api.types.is_datetime64_any_dtype(values):
        return ParsedTimestamps(pd.DatetimeIndex(values), "already timestamps")
    text = values.astype(str).str.strip()
    if date_format is not None:
        try:
            utc = "%z" in date_format
            stamps = pd.to_datetime(text, format=date_format, utc=utc)
            return ParsedTimestamps(pd.DatetimeIndex(stamps), date_format)
        except pd.errors.OutOfBoundsDatetime:
            raise
        except (ValueError, TypeError) as err:
            raise ImportFormatError(
                f"{where}: dates do not match --date-format {date_format!r} ({err})"
            ) from err
    if text.str.fullmatch(r"\d{9,19}(\.\d+)?").all():
        return _epoch(text)
    if text.str.match(r"\d{4}-\d{2}-\d{2}").all():
        if wall_time:
            text = text.str.replace(_OFFSET, "", regex=True).str.strip()
        has_offset = text.str.contains(_OFFSET)
        if has_offset.any() and not has_offset.all():
            return _mixed(text, has_offset, where, naive_tz)
        try:
            stamps = pd.to_datetime(text, format="ISO8601", utc=bool(has_offset.any()))
            return ParsedTimestamps(pd.DatetimeIndex(stamps), "ISO 8601")
        except pd.errors.OutOfBoundsDatetime:
            raise
        except (ValueError, TypeError):
            pass
    sample = text.iloc[:: max(1, len(text) // _SNIFF_ROWS)]
    fits: dict[str, pd.DatetimeIndex] = {}
    for fmt in (d + t for d in _DATE_PARTS for t in _TIME_PARTS):
        try:
            fits[fmt] = pd.DatetimeIndex(pd.to_datetime(sample, format=fmt))
        except (ValueError, TypeError):
            continue
    if not fits:
        raise ImportFormatError(_unreadable_dates(text, sample, where))
    distinct = {tuple(v.asi8) for v in fits.values()}
    if len(distinct) > 1:
        raise ImportFormatError(
            f"{where}: dates like {text.iloc[0]!r} fit several formats that disagree "
            f"({', '.join(list(fits)[:3])}); pass --date-format, e.g. '%d/%m/%Y'"
        )
    fmt = next(iter(fits))
    try:
        return ParsedTimestamps(pd.DatetimeIndex(pd.to_datetime(text, format=fmt)), fmt)
    except pd.errors.OutOfBoundsDatetime:
        raise
    except (ValueError, TypeError) as err:
        bad = text[pd.to_datetime(text, format=fmt, errors="coerce").isna()]
        raise ImportFormatError(
            f"{where}: most dates read as {fmt!r} but {bad.iloc[0]!r} does not; fix that row "
            "or pass --date-format"
        ) from err


def _mixed(
    text: pd.Series, has_offset: pd.Series, where: str, naive_tz: str | None
) -> ParsedTimestamps:
    """ISO times of which some carry a UTC offset and some do not."""
    with_offset, without = text[has_offset], text[~has_offset]
    if naive_tz is None:
        raise ImportFormatError(
            f"{where}: {len(with_offset):,} rows carry a UTC offset (first "
            f"{with_offset.iloc[0]!r}, row {_row(with_offset.index[0])} of the file) and "
            f"{len(without):,} do not (first {without.iloc[0]!r}, row {_row(without.index[0])}); "
            "a file must use one kind: fix the file, or pass --tz ZONE to read the rows "
            "without an offset in ZONE"
        )
    try:
        aware = pd.DatetimeIndex(pd.to_datetime(with_offset, format="ISO8601", utc=True))
        naive = pd.DatetimeIndex(pd.to_datetime(without, format="ISO8601"))
    except pd.errors.OutOfBoundsDatetime:
        raise
    except (ValueError, TypeError) as err:
        raise ImportFormatError(
            f"{where}: ISO 8601 times cannot be read ({err}); fix that row or pass --date-format"
        ) from err
    unit = np.datetime_data(aware.dtype.base)[0]
    naive_utc = localize(naive.as_unit(unit), naive_tz, where)
    stamps = pd.Series(aware, index=with_offset.index)
    stamps = pd.concat([stamps, pd.Series(naive_utc, index=without.index)]).sort_index()
    how = f"ISO 8601 ({len(with_offset):,} rows with a UTC offset, {len(without):,} without)"
    return ParsedTimestamps(pd.DatetimeIndex(stamps), how, mixed=True)


def _on_timeline(stamps: pd.DatetimeIndex, values: pd.Series, where: str) -> pd.DatetimeIndex:
    """`stamps` in nanoseconds; an error naming the first row outside the timeline."""
    try:
        return stamps.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime:
        pass
    naive = stamps.tz_localize(None) if stamps.tz is not None else stamps
    outside = np.flatnonzero((naive < pd.Timestamp.min) | (naive > pd.Timestamp.max))
    row = int(outside[0]) if len(outside) else 0
    shown = values.iloc[row]
    raise ImportFormatError(
        f"{where}: {shown!r} (row {_row(values.index[row])} of the file) lies outside the "
        f"{TIMELINE} timeline of nanosecond timestamps; fix or drop that row (is the century "
        "right?)"
    )


def _row(label: object) -> int | object:
    """The file row of a value: the header is row 1."""
    return label + 2 if isinstance(label, (int, np.integer)) else label


def _unreadable_dates(text: pd.Series, sample: pd.Series, where: str) -> str:
    """Why no format fits: the format most rows fit and the first row it does not fit."""
    best, fewest = None, len(sample)
    for fmt in (d + t for d in _DATE_PARTS for t in _TIME_PARTS):
        failed = int(pd.to_datetime(sample, format=fmt, errors="coerce").isna().sum())
        if failed < fewest:
            best, fewest = fmt, failed
    if best is None:
        return (
            f"{where}: cannot read dates like {text.iloc[0]!r}; pass --date-format, e.g. "
            "'%d/%m/%Y %H:%M' (Python strftime codes)"
        )
    bad = text[pd.to_datetime(text, format=best, errors="coerce").isna()]
    return (
        f"{where}: most dates read as {best!r} but {bad.iloc[0]!r} (row {_row(bad.index[0])} of "
        f"the file) does not; fix that row or pass --date-format"
    )


def _epoch(text: pd.Series) -> ParsedTimestamps:
    numbers = text.astype("float64")
    biggest = float(numbers.abs().max())
    unit = "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
    stamps = pd.DatetimeIndex(pd.to_datetime(numbers, unit=unit, utc=True))
    return ParsedTimestamps(stamps, f"epoch {unit} (UTC)")


TIME_COLUMN = "time"
"""The key of the bars' timestamps next to their OHLCV arrays (`ivybt.engine.tables.bar_columns`,
`ivybt.data.panel.Panel.columns`): int64 nanoseconds since the epoch, tz-aware bars in UTC,
tz-naive bars in their own wall clock (what `ivybt.bars.timeframes` resamples by)."""


def time_column(index: object) -> np.ndarray | None:
    """The `TIME_COLUMN` array of a DatetimeIndex; None for another index."""
    if not isinstance(index, pd.DatetimeIndex):
        return None
    stamps = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    return np.ascontiguousarray(stamps.as_unit("ns").asi8, dtype=np.int64)
