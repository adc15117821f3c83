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
                                                1e-4 (rounding in the source), never more;
8. arithmetic on the bars stays finite: bar-to-bar ratios, the adjustment factor
   adj_close / close and the adjusted prices, and running sums of high² and high x volume
   (what rolling means, variances, returns and dollar volumes are built from);
9. no price jump beyond `max_jump` (default `MAX_JUMP` = 10): every bar's range, stretched to
   the previous close, max(high, prev close) / min(low, prev close), and a first bar's
   high / low stay within the factor, for the stored and the adjusted prices. Bundled real
   series stay below 1.9 (BTCUSD's 2020-03-12 crash), so 10 leaves room for real crashes and
   squeezes and catches typos (1e308, a price 100x off) and unadjusted splits of 10:1 or more.
   A real larger move (a vendor file not adjusted for splits, a penny stock) needs
   `max_jump=` / `--max-jump`; it is stored with the cached series. `math.inf` turns the rule
   off (rule 8 still holds).

Repairs happen only with `repair=True` and are reported in `Validated.repairs`. Rules 8 and 9
have no repair: a price cannot be safely guessed, so `repair` never changes prices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ivybt.data.intervals import Interval
from ivybt.errors import ConfigError, ValidationError

OHLC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
REQUIRED_COLUMNS: tuple[str, ...] = (*OHLC_COLUMNS, "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("adj_close",)
INDEX_NAME = "date"
#: Largest relative OHLC inconsistency that `repair=True` clips (rounding in the source).
OHLC_REPAIR_RTOL = 1e-4
#: Largest factor between a bar's prices and the previous close that passes (rule 9).
MAX_JUMP = 10.0
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
    max_jump: float | None = None,
) -> Validated:
    """Check `frame` against the rules above; return it in canonical form.

    Parameters
    ----------
    frame : the OHLCV frame; not modified.
    name : how to name the series in messages, e.g. "SPY 1d" or a file path.
    interval : when given, the index must be of its kind (naive dates or UTC times).
    repair : apply the safe repairs (sort, drop exact duplicates, clip rounding-level OHLC).
    max_jump : the factor of rule 9, > 1; None means `MAX_JUMP`, `math.inf` no limit.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    factor = check_max_jump(max_jump)
    _check_columns(frame, name)
    frame = frame.loc[:, [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame]]
    frame = frame.set_axis(_check_index(frame.index, name, interval), axis=0)
    repairs: list[str] = []
    frame = _check_order(frame, name, repair, repairs)
    frame = _check_duplicates(frame, name, repair, repairs)
    _check_values(frame, name)
    frame = _check_ohlc(frame, name, repair, repairs)
    _check_arithmetic(frame, name)
    _check_jumps(frame, name, factor)
    return Validated(frame, tuple(repairs))


def check_max_jump(max_jump: float | None) -> float:
    """The jump factor to use: `MAX_JUMP` for None; a `ConfigError` unless it is > 1."""
    if max_jump is None:
        return MAX_JUMP
    try:
        factor = float(max_jump)
    except (TypeError, ValueError):
        factor = math.nan
    if not factor > 1.0:
        raise ConfigError(
            f"max_jump (--max-jump) must be a factor above 1, e.g. 10 or 50 (inf: no limit), "
            f"got {max_jump!r}"
        )
    return factor


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
    with np.errstate(all="ignore"):  # rule 8 reports absurd values
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


def _price_views(frame: pd.DataFrame) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The stored prices and, with adj_close, the adjusted ones (OHLC x adj_close / close)."""
    stored = {c: frame[c].to_numpy() for c in OHLC_COLUMNS}
    views = [("", stored)]
    if "adj_close" in frame:
        with np.errstate(all="ignore"):
            factor = frame["adj_close"].to_numpy() / stored["close"]
            views.append(("adjusted ", {c: stored[c] * factor for c in OHLC_COLUMNS}))
    return views


def _span(prices: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each bar's max(high, previous close) / min(low, previous close), and both ends."""
    high, low = prices["high"], prices["low"]
    previous = np.concatenate(([np.nan], prices["close"][:-1]))
    top = np.fmax(high, previous)
    bottom = np.fmin(low, previous)
    with np.errstate(all="ignore"):
        return top / bottom, top, bottom


def _check_arithmetic(frame: pd.DataFrame, name: str) -> None:
    fix = (
        "a price or volume of absurd size (a bad tick or a unit error); fix or drop those "
        "bars in the source"
    )
    volume = frame["volume"].to_numpy()
    with np.errstate(all="ignore"):
        if "adj_close" in frame:
            factor = frame["adj_close"].to_numpy() / frame["close"].to_numpy()
            bad = ~np.isfinite(factor) | (factor <= 0)
            if bad.any():
                raise _fail(name, "adj_close / close is finite and > 0", frame.index[bad], fix)
        for label, prices in _price_views(frame):
            for column, values in prices.items():
                bad = ~np.isfinite(values) | (values <= 0)
                if bad.any():
                    rule = f"{label}{column} is finite and > 0"
                    raise _fail(name, rule, frame.index[bad], fix)
            span, _, _ = _span(prices)
            bad = ~np.isfinite(span)
            if bad.any():
                rule = f"{label}bar-to-bar price ratios are finite"
                raise _fail(name, rule, frame.index[bad], fix)
            high = prices["high"]
            for what, terms in (("high²", high * high), ("high x volume", high * volume)):
                running = np.cumsum(terms)
                bad = ~np.isfinite(running)
                if bad.any():
                    first = int(np.argmax(bad))
                    rule = f"the running sum of {label}{what} is finite"
                    seen = f"{label}high {high[first]:.6g}, volume {volume[first]:.6g} there; "
                    raise _fail(name, rule, frame.index[first : first + 1], seen + fix)


def _check_jumps(frame: pd.DataFrame, name: str, factor: float) -> None:
    if math.isinf(factor):
        return
    for label, prices in _price_views(frame):
        span, top, bottom = _span(prices)
        bad = span > factor
        if not bad.any():
            continue
        worst = int(np.nanargmax(np.where(bad, span, np.nan)))
        raise _fail(
            name,
            f"{label}prices within {factor:g}x of the previous close",
            frame.index[bad],
            f"largest {span[worst]:.3g}x on {_fmt(frame.index[worst])} (from {bottom[worst]:.6g} "
            f"to {top[worst]:.6g}); a typo or bad tick: fix or drop those bars in the source; "
            f"a real move (a crash, prices not adjusted for a split): pass --max-jump above "
            f"{span[worst]:.3g} (max_jump=); --repair never changes prices",
        )
