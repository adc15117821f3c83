"""Higher-timeframe (HTF) bars resampled from a run's bars, and when each becomes known.

An indicator may be computed on a higher timeframe (`Indicator(..., timeframe="1w")` on daily
bars, `"1d"` on hourly bars). The rules, also in docs/strategies.md ("Higher timeframes"):

- **Periods.** Each base bar belongs to the calendar period holding its timestamp (the bar's
  start, as stored): `"Nh"` (N dividing 24) blocks of N hours from midnight, `"1d"` calendar
  days, `"1w"` ISO weeks (Monday to Sunday), `"1mo"` calendar months. Timestamps are read as
  stored: tz-naive bars (daily data) in their own wall clock, tz-aware bars in UTC, so a
  `"1d"` period of hourly bars runs from 00:00 to 24:00 UTC. US equity sessions
  (14:30-21:00 UTC) and FX days fall in one UTC day each; a market whose session crosses
  midnight UTC is split there (resample such data yourself and load it as its own series).
- **HTF bars.** Over the base bars of a period that are not missing (finite close): open of
  the first, highest high, lowest low, close of the last, summed volume. A period with no
  such bar has no HTF bar (a holiday week does not exist on the HTF either).
- **Visibility.** An HTF bar is known only once its period has ended, and a period is known
  to have ended only when a bar of a later period arrives (the calendar alone would not say
  whether Friday is the week's last bar: a holiday may end it on Thursday). So base bar t
  sees the HTF values of the last HTF bar whose period is *before* t's period, never those
  of the period t belongs to: the week's value reaches the strategy on the first bar of the
  next week. Before that (the first period) the value is NaN, like a warm-up.

With these rules an HTF value at bar t depends only on bars of earlier periods, all <= t, so
HTF indicators obey IvyBT's no-look-ahead rule; `ivybt check-lookahead` checks it for every
strategy (tests/test_timeframes.py plants a leaky resample and the checker catches it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from ivybt._typing import Float64Array2D, Int64Array1D
from ivybt.data.timestamps import TIME_COLUMN
from ivybt.errors import ConfigError

TIMEFRAMES = ("1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "1w", "1mo")
"""The higher timeframes an indicator may use."""

_NS_PER_HOUR = 3_600 * 10**9
_NS_PER_DAY = 24 * _NS_PER_HOUR
TIME = TIME_COLUMN
"""The key of the bars' timestamps in a columns mapping (`ivybt.data.timestamps.time_column`)."""


def check_timeframe(timeframe: str) -> str:
    """`timeframe` if it is one of `TIMEFRAMES`; a `ConfigError` naming them otherwise."""
    if timeframe in TIMEFRAMES:
        return timeframe
    import difflib

    close = difflib.get_close_matches(str(timeframe), TIMEFRAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"unknown timeframe {timeframe!r}{hint}; timeframes: {', '.join(TIMEFRAMES)} "
        "(hours dividing a day, calendar days, ISO weeks, calendar months)"
    )


def period_keys(time_ns: Int64Array1D, timeframe: str) -> Int64Array1D:
    """int64 (n_bars,): the period of each bar under `timeframe`; equal keys, one period, and
    keys increase with time."""
    time_ns = np.asarray(time_ns, dtype=np.int64)
    if timeframe == "1mo":
        return time_ns.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    if timeframe == "1w":  # 1970-01-01 was a Thursday: shift so weeks start on Mondays
        return (np.floor_divide(time_ns, _NS_PER_DAY) + 3) // 7
    if timeframe == "1d":
        return np.floor_divide(time_ns, _NS_PER_DAY)
    hours = int(re.fullmatch(r"(\d+)h", timeframe).group(1))  # type: ignore[union-attr]
    return np.floor_divide(time_ns, hours * _NS_PER_HOUR)


def resample(
    columns: Mapping[str, np.ndarray], timeframe: str
) -> tuple[dict[str, np.ndarray], Int64Array1D]:
    """The HTF bars of `columns` and, per base bar, the HTF bar it may see.

    Parameters
    ----------
    columns : the base bars: float64 "open", "high", "low", "close" (and "volume"), and
        `TIME` (int64 ns), shape (n_bars,).
    timeframe : one of `TIMEFRAMES`.

    Returns
    -------
    htf : the HTF bars, same keys (`TIME`: the first base bar's timestamp), shape (n_htf,).
    visible : int64 (n_bars,): the HTF bar base bar t sees (the last one of an earlier
        period), -1 where none has closed yet.
    """
    check_timeframe(timeframe)
    if TIME not in columns:
        raise ConfigError(
            f"an indicator on timeframe {timeframe!r} needs timestamped bars, and these have "
            "none (Renko bricks, or columns without 'time'); use it on standard bars"
        )
    keys = period_keys(columns[TIME], timeframe)
    close = np.asarray(columns["close"], dtype=np.float64)
    valid = np.flatnonzero(np.isfinite(close))
    if len(valid) and len(keys) and np.any(np.diff(keys) < 0):
        raise ConfigError("bars for a higher timeframe must be in time order")
    vkeys = keys[valid]
    starts = np.flatnonzero(np.r_[True, vkeys[1:] != vkeys[:-1]]) if len(valid) else valid
    ends = np.r_[starts[1:], len(valid)] - 1 if len(valid) else valid
    htf: dict[str, np.ndarray] = {}
    if len(valid):
        htf["open"] = np.asarray(columns["open"], dtype=np.float64)[valid][starts]
        htf["high"] = np.maximum.reduceat(np.asarray(columns["high"], np.float64)[valid], starts)
        htf["low"] = np.minimum.reduceat(np.asarray(columns["low"], np.float64)[valid], starts)
        htf["close"] = close[valid][ends]
        if "volume" in columns:
            volume = np.asarray(columns["volume"], dtype=np.float64)[valid]
            htf["volume"] = np.add.reduceat(volume, starts)
        htf[TIME] = np.asarray(columns[TIME], dtype=np.int64)[valid][starts]
    else:
        htf = {name: np.empty(0, dtype=np.asarray(values).dtype) for name, values in
               columns.items()}  # fmt: skip
    htf = {name: np.ascontiguousarray(values) for name, values in htf.items()}
    if len(valid) > 1 and len(starts) == len(valid):
        raise ConfigError(
            f"timeframe {timeframe!r} is not above the bars' own interval (every period holds "
            "one bar); choose a longer timeframe"
        )
    visible = np.searchsorted(vkeys[starts], keys, side="left") - 1
    return htf, visible.astype(np.int64)


def on_base_bars(htf_table: Float64Array2D, visible: Int64Array1D) -> Float64Array2D:
    """float64 (n_rows, n_bars): each HTF row's value at each base bar, NaN where no HTF bar
    has closed yet (`resample`'s `visible`)."""
    out = np.full((htf_table.shape[0], len(visible)), np.nan)
    seen = visible >= 0
    out[:, seen] = htf_table[:, visible[seen]]
    return out
