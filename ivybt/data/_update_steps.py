"""The steps of a cache update as plain functions: request spans, Yahoo's windows, fetching
a range, detecting revised history, merging. Used by `ivybt.data.cache.DataCache`, whose module
docstring describes the algorithm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from ivybt.data.intervals import Interval, day_label
from ivybt.data.validate import OHLC_COLUMNS
from ivybt.data.yahoo import FetchResult
from ivybt.errors import DataError, EmptyDataError

logger = logging.getLogger(__name__)

Fetcher = Callable[[str, Interval, pd.Timestamp, pd.Timestamp], FetchResult]
REVISION_RTOL = 1e-6
_YEARS_OF_DAILY_HISTORY = 99  # yfinance's own default start for daily data


def fetch_range(
    symbol: str, iv: Interval, start: pd.Timestamp, end: pd.Timestamp, fetcher: Fetcher
) -> tuple[pd.DataFrame, str | None, list[tuple[pd.Timestamp, pd.Timestamp]], list[str]]:
    """Fetch [start, end) in spans Yahoo accepts; empty spans give no bars, not an error."""
    frames, requests, repairs, tz = [], [], [], None
    for lo, hi in request_spans(iv, start, end):
        requests.append((lo, hi))
        try:
            result = fetcher(symbol, iv, lo, hi)
        except EmptyDataError:
            logger.info("%s %s: no bars in [%s, %s)", symbol, iv.name, lo, hi)
            continue
        frames.append(result.frame.loc[(result.frame.index >= lo) & (result.frame.index < hi)])
        repairs += result.repairs
        tz = result.exchange_tz or tz
    merged = merge_bars(*frames) if frames else empty_frame(iv)
    return merged, tz, requests, repairs


def request_spans(
    iv: Interval, start: pd.Timestamp, end: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if iv.yahoo_max_span is None:
        return [(start, end)]
    spans, lo = [], start
    while lo < end:
        hi = min(lo + iv.yahoo_max_span, end)
        spans.append((lo, hi))
        lo = hi
    return spans


def check_yahoo_window(symbol: str, iv: Interval, start: pd.Timestamp, now: pd.Timestamp) -> None:
    earliest = iv.earliest_available(now)
    if earliest is not None and start < earliest:
        days = iv.yahoo_lookback.days if iv.yahoo_lookback is not None else 0
        raise DataError(
            f"Yahoo serves {iv.name} bars only for the last {days} days (since "
            f"{earliest:%Y-%m-%d %H:%M} UTC), but {symbol} was requested from "
            f"{start:%Y-%m-%d %H:%M}; start later, use a coarser --interval (1h goes back "
            "730 days), or import older bars with `ivybt data import`"
        )


def describe_revision(
    cached: pd.DataFrame, fresh: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp
) -> str | None:
    """Describe how `fresh` differs from `cached` on [lo, hi), or None when it does not."""
    old = cached.loc[(cached.index >= lo) & (cached.index < hi)]
    new = fresh.loc[(fresh.index >= lo) & (fresh.index < hi)]
    added = new.index.difference(old.index)
    if len(added):
        return f"{len(added)} bar(s) appeared inside the cached range, first {day_label(added[0])}"
    dropped = old.index.difference(new.index)
    if len(dropped) and len(new):
        return f"{len(dropped)} cached bar(s) vanished, first {day_label(dropped[0])}"
    common = old.index.intersection(new.index)
    columns = [c for c in (*OHLC_COLUMNS, "adj_close") if c in old and c in new]
    for column in columns:
        a = old.loc[common, column].to_numpy()
        b = new.loc[common, column].to_numpy()
        differs = ~np.isclose(a, b, rtol=REVISION_RTOL, atol=0.0)
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            return f"{column} on {day_label(common[i])} changed from {a[i]:.6g} to {b[i]:.6g}"
    return None


def merge_bars(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate, keep the last (newest) bar per timestamp, sort."""
    frames = tuple(f for f in frames if len(f))
    if not frames:
        raise ValueError("nothing to merge")
    merged = pd.concat(frames) if len(frames) > 1 else frames[0]
    merged = merged.loc[~merged.index.duplicated(keep="last")].sort_index(kind="stable")
    partial = [c for c in merged.columns if merged[c].isna().any()]
    if partial:
        logger.warning("dropping column(s) %s: not every merged bar has them", partial)
    return merged.drop(columns=partial)  # adj_close only when every bar has it


def empty_frame(iv: Interval) -> pd.DataFrame:
    index = pd.DatetimeIndex(
        [], dtype="datetime64[ns, UTC]" if iv.intraday else "datetime64[ns]", name="date"
    )
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in (*OHLC_COLUMNS, "volume")}, index=index
    )


def default_start(iv: Interval, now: pd.Timestamp) -> pd.Timestamp:
    earliest = iv.earliest_available(now)
    if earliest is not None:
        return (earliest + pd.Timedelta(days=1)).floor("D")
    today = pd.Timestamp(now).tz_convert("UTC").tz_localize(None).normalize()
    return today - pd.DateOffset(years=_YEARS_OF_DAILY_HISTORY)


def iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).isoformat()
