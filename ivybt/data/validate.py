"""Validation of OHLCV frames: run on every load, fetch and import.

The canonical frame has columns `open, high, low, close, volume` (and `adj_close` when the
source has it), all float64, and a sorted, unique `DatetimeIndex` named `date` with
nanosecond resolution: tz-naive session dates for daily-type intervals, UTC bar-open times for
intraday ones.

Rules (each violation raises `ValidationError` naming the series, the rule, the first offending
timestamps and the fix):

1. the required columns exist and are float64; no other columns;
2. the index is a DatetimeIndex of the interval's kind (naive dates / UTC);
3. sorted ascending;                            repair: sort
4. unique timestamps;                           repair: drop *exact* duplicate rows
5. no NaN or infinity in open/high/low/close/volume (and adj_close);
6. prices > 0; volume >= 0;
7. high >= max(open, close), low <= min(open, close);
                                                repair: clip violations within a relative
                                                1e-4 (rounding in the source), never more.

Repairs happen only with `repair=True` and are reported in `Validated.repairs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ivybt.data.intervals import Interval
from ivybt.errors import ValidationError

OHLC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
REQUIRED_COLUMNS: tuple[str, ...] = (*OHLC_COLUMNS, "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("adj_close",)
INDEX_NAME = "date"
#: Largest relative OHLC inconsistency that `repair=True` clips (rounding in the source).
OHLC_REPAIR_RTOL = 1e-4
_SHOW = 3  # offending timestamps shown in a message
_REPAIR_HINT = "fix the source, or pass --repair (repair=True) to {what}"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})


@dataclass(frozen=True)
class Validated:
    """A frame that passed validation, and the repairs applied to get there."""

    frame: pd.DataFrame
    repairs: tuple[str, ...] = ()


def validate_ohlcv(
    frame: pd.DataFrame,
    *,
    name: str,
    interval: Interval | None = None,
    repair: bool = False,
) -> Validated:
    """Check `frame` against the rules above; return it in canonical form.

    Parameters
    ----------
    frame : the OHLCV frame; not modified.
    name : how to name the series in messages, e.g. "SPY 1d" or a file path.
    interval : when given, the index must be of its kind (naive dates or UTC times).
    repair : apply the safe repairs (sort, drop exact duplicates, clip rounding-level OHLC).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    _check_columns(frame, name)
    frame = frame.loc[:, [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame]]
    frame = frame.set_axis(_check_index(frame.index, name, interval), axis=0)
    repairs: list[str] = []
    frame = _check_order(frame, name, repair, repairs)
    frame = _check_duplicates(frame, name, repair, repairs)
    _check_values(frame, name)
    frame = _check_ohlc(frame, name, repair, repairs)
    return Validated(frame, tuple(repairs))


def _fail(name: str, rule: str, stamps: Sequence[object] | pd.Index, fix: str) -> ValidationError:
    shown = ", ".join(_fmt(s) for s in list(stamps)[:_SHOW])
    more = f" (and {len(stamps) - _SHOW} more)" if len(stamps) > _SHOW else ""
    count = f"{len(stamps)} bar{'s' if len(stamps) != 1 else ''}"
    return ValidationError(
        f"{name}: rule `{rule}` fails on {count}, first at {shown}{more}; {fix}"
    )


def _fmt(stamp: object) -> str:
    if isinstance(stamp, pd.Timestamp):
        if stamp.tzinfo is None and stamp == stamp.normalize():
            return stamp.strftime("%Y-%m-%d")
        return stamp.isoformat()
    return str(stamp)


def _check_columns(frame: pd.DataFrame, name: str) -> None:
    columns = [str(c) for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValidationError(
            f"{name}: column names must be unique, got {', '.join(repeated)} more than once; "
            "drop or rename the copies"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValidationError(
            f"{name}: columns {', '.join(REQUIRED_COLUMNS)} are required, missing "
            f"{', '.join(missing)} (columns seen: {', '.join(columns) or 'none'}); "
            "import vendor files with `ivybt data import`, which maps common column names"
        )
    extra = [c for c in columns if c not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)]
    if extra:
        raise ValidationError(
            f"{name}: only columns {', '.join((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))} are "
            f"allowed, got also {', '.join(extra)}; drop or rename them"
        )
    wrong = [f"{c} ({frame[c].dtype})" for c in frame.columns if frame[c].dtype != np.float64]
    if wrong:
        raise ValidationError(
            f"{name}: every column must be float64, got {', '.join(wrong)}; convert with "
            "frame.astype('float64') or import the file with `ivybt data import`"
        )


def _check_index(index: pd.Index, name: str, interval: Interval | None) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise ValidationError(
            f"{name}: the index must be a DatetimeIndex, got {type(index).__name__}; "
            "set the date column as the index, e.g. frame.set_index('date')"
        )
    if index.hasnans:
        bad = np.flatnonzero(index.isna())
        raise ValidationError(
            f"{name}: rule `no missing timestamps` fails at row(s) "
            f"{', '.join(map(str, bad[:_SHOW]))}; drop those rows from the source"
        )
    if interval is not None:
        if interval.intraday and str(index.tz) not in _UTC_NAMES:
            raise ValidationError(
                f"{name}: {interval.name} bars must be stamped in UTC, got tz={index.tz}; "
                "convert with index.tz_convert('UTC') (or tz_localize for naive times)"
            )
        if interval.intraday:
            index = index.tz_convert("UTC")  # one spelling of UTC (Etc/UTC, Zulu...)
        if not interval.intraday:
            if index.tz is not None:
                raise ValidationError(
                    f"{name}: {interval.name} bars carry tz-naive session dates, got "
                    f"tz={index.tz}; use index.tz_localize(None)"
                )
            off = index[index != index.normalize()]
            if len(off):
                raise _fail(
                    name,
                    f"{interval.name} timestamps are dates at midnight",
                    off,
                    "use a daily-type interval only for session dates, or an intraday one",
                )
    return index.as_unit("ns").rename(INDEX_NAME)


def _check_order(frame: pd.DataFrame, name: str, repair: bool, repairs: list[str]) -> pd.DataFrame:
    index = frame.index
    if index.is_monotonic_increasing:
        return frame
    values = index.asi8
    bad = index[1:][values[1:] < values[:-1]]
    if not repair:
        raise _fail(
            name, "timestamps sorted ascending", bad, _REPAIR_HINT.format(what="sort the bars")
        )
    repairs.append(f"sorted {len(bad)} out-of-order bar(s) (first at {_fmt(bad[0])})")
    return frame.sort_index(kind="stable")


def _check_duplicates(
    frame: pd.DataFrame, name: str, repair: bool, repairs: list[str]
) -> pd.DataFrame:
    dup_any = frame.index.duplicated(keep=False)
    if not dup_any.any():
        return frame
    with_index = frame.reset_index()
    exact_extra = with_index.duplicated(keep="first").to_numpy()
    remaining = frame.index[~exact_extra]
    conflicting = remaining[remaining.duplicated(keep=False)].unique()
    if len(conflicting):
        raise _fail(
            name,
            "unique timestamps",
            conflicting,
            "the bars differ, so keep the right one per timestamp in the source",
        )
    if not repair:
        raise _fail(
            name,
            "unique timestamps",
            frame.index[exact_extra],
            _REPAIR_HINT.format(what="drop exact duplicate rows"),
        )
    repairs.append(f"dropped {int(exact_extra.sum())} exact duplicate row(s)")
    return frame.loc[~exact_extra]


def _check_values(frame: pd.DataFrame, name: str) -> None:
    for column in frame.columns:
        nan = frame.index[frame[column].isna().to_numpy()]
        if len(nan):
            raise _fail(name, f"{column} is not NaN", nan, "fill or drop those bars in the source")
    for column in frame.columns:
        inf = frame.index[np.isinf(frame[column].to_numpy())]
        if len(inf):
            raise _fail(name, f"{column} is finite", inf, "fix or drop those bars in the source")
    for column in (*OHLC_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in frame]):
        bad = frame.index[(frame[column] <= 0).to_numpy()]
        if len(bad):
            raise _fail(name, f"{column} > 0", bad, "prices must be positive; fix the source")
    bad = frame.index[(frame["volume"] < 0).to_numpy()]
    if len(bad):
        raise _fail(name, "volume >= 0", bad, "volume cannot be negative; fix the source")


def _check_ohlc(frame: pd.DataFrame, name: str, repair: bool, repairs: list[str]) -> pd.DataFrame:
    body_top = np.maximum(frame["open"].to_numpy(), frame["close"].to_numpy())
    body_bottom = np.minimum(frame["open"].to_numpy(), frame["close"].to_numpy())
    high = frame["high"].to_numpy()
    low = frame["low"].to_numpy()
    checks = (
        ("high >= max(open, close)", high < body_top, (body_top - high) / body_top),
        ("low <= min(open, close)", low > body_bottom, (low - body_bottom) / body_bottom),
    )
    for rule, bad, rel in checks:
        if not bad.any():
            continue
        small = bad & (rel <= OHLC_REPAIR_RTOL)
        if not repair or (bad & ~small).any():
            fix = (
                "fix the source"
                if (bad & ~small).any()
                else _REPAIR_HINT.format(
                    what=f"clip rounding-level violations (<= {OHLC_REPAIR_RTOL:g} relative)"
                )
            )
            worst = float(rel[bad].max())
            raise _fail(
                name, rule, frame.index[bad], f"worst relative violation {worst:.2e}; {fix}"
            )
    if not any(bad.any() for _, bad, _ in checks):
        return frame
    clipped = frame.copy()
    clipped["high"] = np.maximum(high, body_top)
    clipped["low"] = np.minimum(low, body_bottom)
    count = int((checks[0][1] | checks[1][1]).sum())
    repairs.append(
        f"clipped high/low on {count} bar(s) with rounding-level violations "
        f"(<= {OHLC_REPAIR_RTOL:g} relative)"
    )
    return clipped
