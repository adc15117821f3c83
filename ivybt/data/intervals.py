"""Bar intervals: their length, how timestamps look, and what Yahoo serves.

Conventions (also in docs/data.md):

- Daily, weekly and monthly bars ("1d", "1wk", "1mo") are stamped with the tz-naive session date
  at midnight. Weekly bars are stamped with the week's first session, monthly bars with the
  first day of the month (as Yahoo does).
- Intraday bars ("1m" ... "1h") are stamped with the bar's **open** time, tz-aware UTC.
- A bar is *complete* once its end has passed; only complete bars are cached.
- Request ranges are half-open, [start, end).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import pandas as pd

from ivybt.errors import ConfigError


@dataclass(frozen=True)
class Interval:
    """One bar interval.

    Attributes
    ----------
    name : canonical name, e.g. "1d", "1h", "5m".
    step : nominal bar length (a month counts as 31 days here; see `complete_before`).
    intraday : True for bars shorter than a day (stamped in UTC), False for session dates.
    yahoo_lookback : how far back from now Yahoo serves this interval (None: no limit).
    yahoo_max_span : the longest range one Yahoo request may cover (None: no limit).
    """

    name: str
    step: pd.Timedelta
    intraday: bool
    yahoo_lookback: pd.Timedelta | None = None
    yahoo_max_span: pd.Timedelta | None = None

    def complete_before(self, now: pd.Timestamp) -> pd.Timestamp:
        """The instant C such that every bar stamped before C is complete at `now`.

        Intraday: a bar is complete when open + step <= now. Daily: bars dated before today's
        UTC date (a session dated D has closed by D+1 00:00 UTC on every exchange west of
        UTC+24, i.e. all). Weekly: bars dated at least 7 days before today. Monthly: bars of
        months before the current one.
        """
        now_utc = _as_utc(now)
        if self.intraday:
            return (now_utc - self.step).floor("min") + pd.Timedelta(minutes=1)
        today = now_utc.tz_localize(None).normalize()
        if self.name == "1wk":
            return today - pd.Timedelta(days=6)
        if self.name == "1mo":
            return today.replace(day=1)
        return today

    def earliest_available(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """The oldest bar time Yahoo still serves for this interval (None: no limit)."""
        if self.yahoo_lookback is None:
            return None
        return _as_utc(now) - self.yahoo_lookback


_MINUTE = pd.Timedelta(minutes=1)
_DAY = pd.Timedelta(days=1)
# Yahoo's limits (yfinance docs and Yahoo's chart API answers): 1m bars only for the last
# 30 days and at most 8 days per request (we ask for 7 to stay clear of the edge); 2m-90m
# bars for the last 60 days; 1h bars for the last 730 days.
_INTERVALS = {
    "1m": Interval("1m", _MINUTE, True, 30 * _DAY, 7 * _DAY),
    "2m": Interval("2m", 2 * _MINUTE, True, 60 * _DAY, 60 * _DAY),
    "5m": Interval("5m", 5 * _MINUTE, True, 60 * _DAY, 60 * _DAY),
    "15m": Interval("15m", 15 * _MINUTE, True, 60 * _DAY, 60 * _DAY),
    "30m": Interval("30m", 30 * _MINUTE, True, 60 * _DAY, 60 * _DAY),
    "90m": Interval("90m", 90 * _MINUTE, True, 60 * _DAY, 60 * _DAY),
    "1h": Interval("1h", 60 * _MINUTE, True, 730 * _DAY, 730 * _DAY),
    "1d": Interval("1d", _DAY, False),
    "1wk": Interval("1wk", 7 * _DAY, False),
    "1mo": Interval("1mo", 31 * _DAY, False),
}
_ALIASES = {"60m": "1h", "1w": "1wk"}

INTERVAL_NAMES: tuple[str, ...] = tuple(_INTERVALS)


def parse_interval(name: str | Interval) -> Interval:
    """Return the `Interval` called `name` ("1d", "1h", "60m", "5m", ...)."""
    if isinstance(name, Interval):
        return name
    key = _ALIASES.get(str(name), str(name))
    try:
        return _INTERVALS[key]
    except KeyError:
        close = difflib.get_close_matches(str(name).lower(), [*_INTERVALS, *_ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"interval must be one of {', '.join(INTERVAL_NAMES)}, got {name!r}{hint}"
        ) from None


def to_bound(value: object, interval: Interval, *, name: str) -> pd.Timestamp | None:
    """Turn a user's start/end (string, date, datetime, Timestamp or None) into a timestamp
    on the interval's timeline: tz-naive for daily-type intervals, UTC for intraday ones.

    A naive value on an intraday interval is read as UTC; an aware value on a daily-type
    interval is converted to UTC and its date kept.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"{name} must be a date like 2020-01-31 or a time like '2020-01-31 14:30', "
            f"got {value!r}"
        ) from err
    if stamp is pd.NaT:
        raise ConfigError(f"{name} must be a date like 2020-01-31, got {value!r}")
    if interval.intraday:
        stamp = _as_utc(stamp)
    elif stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    try:
        return stamp.as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError) as err:
        raise ConfigError(
            f"{name} must lie between 1677-09-22 and 2262-04-11 (nanosecond timestamps), got "
            f"{value!r}; leave it out to mean from the first bar or up to the last one"
        ) from err


def to_range(
    start: object, end: object, interval: Interval
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """`to_bound` for both ends of a half-open [start, end); start must come before end."""
    lo = to_bound(start, interval, name="start")
    hi = to_bound(end, interval, name="end")
    if lo is not None and hi is not None and lo >= hi:
        raise ConfigError(f"start must be before end, got start={start} and end={end}")
    return lo, hi


def day_label(stamp: pd.Timestamp | None) -> str:
    """ "2020-01-31" for a session date, "2020-01-31 14:30" for a time, "-" for None."""
    if stamp is None:
        return "-"
    stamp = pd.Timestamp(stamp)
    if stamp.tzinfo is None and stamp == stamp.normalize():
        return f"{stamp:%Y-%m-%d}"
    return f"{stamp:%Y-%m-%d %H:%M}"


def _as_utc(stamp: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
