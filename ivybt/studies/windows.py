"""Walk-forward windows: which bars each fold fits on (in-sample, IS) and judges on (OOS).

- Windows are half-open `[start, end)` bar indices into the series (`is_end`, `oos_end` are the
  first bars *not* in the window); `folds_frame` adds the timestamps of the first and last bars
  *included* (`is_last` is the bar at `is_end - 1`) and states this in its `attrs`.
- Lengths are bars (`500`, `"500"`) or calendar durations (`"2y"`, `"6M"`, `"3w"`, `"90d"`,
  `"12h"`, `"30min"`; see `parse_length`). The gap (embargo) is always in bars.
- Rolling (the default), in bars: fold k has `is_start = k*step`, `is_end = is_start + IS`,
  `oos_start = is_end + gap`, `oos_end = oos_start + OOS`. Anchored: `is_start = 0` always and
  `is_end = IS + k*step`. The step defaults to the OOS length, in its unit (bars or duration).
- Durations are boundaries in time. With t0 the first bar's timestamp, rolling fold k's IS runs
  from `t0 + k*step` to `t0 + k*step + IS` and its OOS ends at `t0 + k*step + IS + OOS`
  (anchored: IS from t0 to `t0 + IS + k*step`). Each boundary is t0 plus one combined calendar
  offset (pandas `DateOffset`: no month-end drift), turned into a bar by
  `index.searchsorted(time, side="left")`, the first bar at or after it. So with step = OOS the
  OOS windows tile exactly, as in bars.
- The gap is added after that conversion: `oos_start = is_end + gap`, and a duration OOS window
  ends `gap` bars after the bar of its nominal end (it moves `gap` bars later, as in bars, so
  fold k's `oos_end` stays fold k+1's `oos_start` when step = OOS).
- Mixed units are allowed: each length counts in its own unit from the boundary before it (a
  duration after a bar boundary starts at that bar's timestamp); tiling is then not exact.
- `folds=N` (instead of an OOS length): the bars after the first IS window and the gap are cut
  into N OOS windows of `(n_bars - IS - gap) // N` bars (a duration IS counts as the bars of the
  first IS window, in bars from then on). With the default step this gives exactly N folds, the
  last ending at most N-1 bars before the end; another step gives the folds that fit.
- The last window: in bars it is whole when `oos_end <= n_bars`; as a duration, when its nominal
  end time is at or before the last bar's timestamp. The first fold that is not whole is dropped
  (`last_window="drop"`, the default) or kept cut at `n_bars` (`"keep"`: at least 1 OOS bar is
  left, as no fold's OOS starts at the end or later). Later folds are not made.
- Every fold needs at least 2 IS bars and 1 OOS bar; a duration that leaves fewer (a hole in the
  data, a duration shorter than the bar spacing) is an error, not a silent fold. A fold equal to
  the previous one (duration steps landing on the same bars, e.g. over a weekend) is skipped;
  over 1,000 in a row is an error (the step is shorter than the bars).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ivybt.data.intervals import day_label
from ivybt.engine.splits import train_test_split
from ivybt.errors import ConfigError

HALF_OPEN_NOTE = (
    "windows are half-open [start, end) bar indices; *_first and *_last are the first and "
    "last bars included"
)

_UNITS = {"y": "years", "mo": "months", "w": "weeks", "d": "days", "h": "hours", "min": "minutes"}
_LENGTH_FORMS = (
    "a number of bars (e.g. 500) or a whole number with a unit: y (years), M or mo (months), "
    "w (weeks), d (days), h (hours), min (minutes), e.g. 2y or 6M"
)
_LENGTH_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")
_MAX_REPEATS = 1_000  # steps in a row that may land on the same bars (1h steps on daily bars)
Length = int | pd.DateOffset  # bars, or a duration


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: IS bars `[is_start, is_end)`, OOS bars `[oos_start, oos_end)`.

    `oos_start = is_end + gap`; `number` counts folds from 0 in time order.
    """

    number: int
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int

    @property
    def is_slice(self) -> slice:
        return slice(self.is_start, self.is_end)

    @property
    def oos_slice(self) -> slice:
        return slice(self.oos_start, self.oos_end)


def parse_length(text: str | int | pd.DateOffset, *, name: str = "length") -> Length:
    """A window length: an `int` number of bars, or a `pd.DateOffset` for a duration.

    "500" or 500 -> 500 bars; "2y"/"2Y" years, "6M"/"6mo" months, "3w" weeks, "90d" days,
    "12h" hours, "30min" minutes (units are case-insensitive, except that a bare "m" is refused:
    "M" is months, "min" minutes). A `pd.DateOffset` is returned as it is. `name` is the option
    the messages name (e.g. "--is").
    """
    if isinstance(text, pd.DateOffset):
        if not text.kwds or not set(text.kwds) <= set(_UNITS.values()):
            raise ConfigError(f"{name} must be {_LENGTH_FORMS}; got {text!r}")
        return text
    if isinstance(text, int | np.integer) and not isinstance(text, bool) and text >= 0:
        return int(text)
    match = _LENGTH_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{name} must be {_LENGTH_FORMS}; got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "":
        return count
    key = "mo" if unit == "M" else unit.lower()
    if key not in _UNITS:
        hint = "; a bare m is ambiguous: write 6M or 6mo for months, 30min for minutes"
        raise ConfigError(
            f"{name} must be {_LENGTH_FORMS}; got {text!r}{hint if key == 'm' else ''}"
        )
    if count == 0:
        raise ConfigError(f"{name} must be a positive duration, got {text!r}; e.g. 90d or 6M")
    return pd.DateOffset(**{_UNITS[key]: count})  # type: ignore[arg-type]


def make_folds(
    index: pd.DatetimeIndex,
    *,
    in_sample: str | int | pd.DateOffset,
    out_of_sample: str | int | pd.DateOffset | None = None,
    folds: int | None = None,
    step: str | int | pd.DateOffset | None = None,
    gap: int = 0,
    anchored: bool = False,
    last_window: Literal["drop", "keep"] | str = "drop",
) -> list[Fold]:
    """The walk-forward folds over the bars of `index` (oldest first); see the module docstring.

    Give the OOS length (`out_of_sample`) or a number of folds (`folds`), not both. Raises
    `ConfigError` for a bad setting or when not even one fold fits the series.
    """
    _check_index(index)
    if (out_of_sample is None) == (folds is None):
        got = "both" if folds is not None else "neither"
        raise ConfigError(
            f"walk-forward windows need either --oos or --folds, got {got}; "
            "give one, e.g. --oos 6M or --folds 5"
        )
    if last_window not in ("drop", "keep"):
        raise ConfigError(
            f"--last-window must be 'drop' or 'keep', got {last_window!r}; "
            "use --last-window keep to keep a partial last OOS window"
        )
    if isinstance(gap, bool) or not isinstance(gap, int | np.integer) or gap < 0:
        raise ConfigError(
            f"--gap must be a whole number of bars >= 0, got {gap!r}; e.g. --gap 5 (0: no gap)"
        )
    is_len = _at_least(parse_length(in_sample, name="--is"), "--is", 2, "e.g. --is 500")
    step_len = None if step is None else parse_length(step, name="--step")
    if isinstance(step_len, int) and step_len < 1:
        why = "the in-sample window would never grow" if anchored else "the folds would not move"
        raise ConfigError(
            f"--step must be at least 1 bar ({why}), got {step_len}; give a positive --step "
            "or leave it out to step by the OOS length"
        )
    plan = _Plan(_Timeline(index), is_len, 1, 1, int(gap), anchored, _text(in_sample), "")
    if folds is not None:
        plan.cut_into_folds(folds)
    else:
        oos_len = parse_length(out_of_sample, name="--oos")  # type: ignore[arg-type]
        plan.oos_len = _at_least(oos_len, "--oos", 1, "e.g. --oos 250")
        plan.oos_text = f"--oos {_text(out_of_sample)}"
    plan.step_len = plan.oos_len if step_len is None else step_len
    made = plan.generate(keep_partial=last_window == "keep")
    if not made:
        raise ConfigError(plan.no_fit_message())
    return made


def folds_frame(folds: Sequence[Fold], index: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per fold: `fold`, `is_start`, `is_end`, `oos_start`, `oos_end` (int64, half-open
    bar ranges) and `is_first`, `is_last`, `oos_first`, `oos_last`: the timestamps of the first
    and last bars included in each window, with the index's dtype and timezone.

    `frame.attrs["windows"]` states the half-open convention (kept by parquet).
    """
    columns = ["fold", "is_start", "is_end", "oos_start", "oos_end"]
    rows = [(f.number, f.is_start, f.is_end, f.oos_start, f.oos_end) for f in folds]
    frame = pd.DataFrame(np.array(rows, dtype=np.int64).reshape(-1, 5), columns=columns)
    for side in ("is", "oos"):
        frame[f"{side}_first"] = index[frame[f"{side}_start"].to_numpy()]
        frame[f"{side}_last"] = index[frame[f"{side}_end"].to_numpy() - 1]
    frame.attrs["windows"] = HALF_OPEN_NOTE
    return frame


def train_test_fold(n_bars: int, train_split: float) -> Fold:
    """The train/test split as a one-fold walk-forward: IS = `[0, split)`, OOS =
    `[split, n_bars)` with `split = floor(n_bars x train_split)`; each part needs 2 bars
    (`ivybt.engine.splits.train_test_split`, which checks both)."""
    split = train_test_split(n_bars, train_split).split
    return Fold(0, 0, split, split, n_bars)


@dataclass(frozen=True)
class _Point:
    """A window boundary: an exact bar, or a nominal time `base + offset` kept unrounded."""

    bar: int | None = None
    base: pd.Timestamp | None = None
    offset: dict[str, int] = field(default_factory=dict)


class _Timeline:
    """Bars and times of one index: moves boundaries by lengths and turns them into bars."""

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self.index = index
        self.n_bars = len(index)

    def origin(self, length: Length) -> _Point:
        """The first bar, as a bar or (for a duration to come) as the time t0."""
        at_bar = isinstance(length, int) or self.n_bars == 0
        return _Point(bar=0) if at_bar else _Point(base=self.index[0])

    def advance(self, point: _Point, length: Length, times: int = 1) -> _Point:
        """`point` moved by `times` x `length`, in the length's own unit."""
        if isinstance(length, int):
            return _Point(bar=self.bar(point) + times * length)
        added = {key: value * length.n * times for key, value in length.kwds.items()}
        if point.bar is not None:
            if point.bar >= self.n_bars:  # already past the data: stays past it
                return _Point(bar=self.n_bars + 1)
            return _Point(base=self.index[point.bar], offset=added)
        keys = {*point.offset, *added}
        offset = {key: point.offset.get(key, 0) + added.get(key, 0) for key in keys}
        return _Point(base=point.base, offset=offset)

    def time(self, point: _Point) -> pd.Timestamp:
        assert point.base is not None
        offset = pd.DateOffset(**point.offset)  # type: ignore[arg-type]
        return point.base + offset if point.offset else point.base

    def bar(self, point: _Point) -> int:
        """The bar index of a boundary: the first bar at or after a nominal time."""
        if point.bar is not None:
            return point.bar
        return int(self.index.searchsorted(self.time(point), side="left"))

    def within(self, point: _Point) -> bool:
        """True when the data reaches `point` (the window ending there is whole)."""
        if point.bar is not None:
            return point.bar <= self.n_bars
        return self.time(point) <= self.index[-1]

    def label(self, bar: int) -> str:
        return day_label(self.index[bar]) if 0 <= bar < self.n_bars else "-"


@dataclass
class _Plan:
    """Resolved lengths of a walk-forward; `generate` makes the folds.

    `is_text` and `oos_text` say in messages what the user asked for ("2y", "--oos 6M").
    """

    timeline: _Timeline
    is_len: Length
    oos_len: Length
    step_len: Length
    gap: int
    anchored: bool
    is_text: str
    oos_text: str

    def generate(self, *, keep_partial: bool) -> list[Fold]:
        timeline, n_bars = self.timeline, self.timeline.n_bars
        made: list[Fold] = []
        k = repeats = 0
        while True:
            is_start_point, is_end_point = self._is_points(k)
            is_start, is_end = timeline.bar(is_start_point), timeline.bar(is_end_point)
            oos_start = is_end + self.gap
            if oos_start >= n_bars:
                return made
            oos_end_point = timeline.advance(is_end_point, self.oos_len)
            oos_end = timeline.bar(oos_end_point) + self.gap
            self._check_fold(len(made), is_start, is_end, oos_start, oos_end)
            whole = timeline.within(oos_end_point) and oos_end <= n_bars
            if not whole and not keep_partial:
                return made
            fold = Fold(len(made), is_start, is_end, oos_start, min(oos_end, n_bars))
            last = made[-1] if made else None
            if last is None or (last.is_slice, last.oos_slice) != (fold.is_slice, fold.oos_slice):
                made.append(fold)
                repeats = 0
            elif (repeats := repeats + 1) > _MAX_REPEATS:
                raise ConfigError(
                    f"a step must move the windows by at least a bar, but {repeats:,} steps "
                    f"from {timeline.label(is_start)} landed on the same bars; use a longer "
                    "--step (or --oos, which it defaults to)"
                )
            if not whole:
                return made
            k += 1

    def cut_into_folds(self, folds: int) -> None:
        """`folds=N`: OOS windows of `(n_bars - IS - gap) // N` bars, a duration IS in bars."""
        if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 1:
            raise ConfigError(
                f"--folds must be a whole number >= 1, got {folds!r}; e.g. --folds 5"
            )
        timeline = self.timeline
        self.oos_text = f"--folds {folds} (at least 1 bar each)"
        self.oos_len = int(folds)  # for the no-fit message: one bar per fold
        is_bars = timeline.bar(timeline.advance(timeline.origin(self.is_len), self.is_len))
        remaining = timeline.n_bars - is_bars - self.gap
        if remaining < 1:
            raise ConfigError(self.no_fit_message())
        if remaining < folds:
            raise ConfigError(
                f"--folds {folds} cuts the {remaining:,} bars after the first in-sample window "
                f"and the gap into OOS windows of 0 bars; each needs at least 1: use fewer "
                "--folds, a shorter --is or more history"
            )
        self._check_fold(0, 0, is_bars, is_bars + self.gap, timeline.n_bars)
        self.is_len = is_bars
        self.oos_len = remaining // int(folds)

    def _is_points(self, k: int) -> tuple[_Point, _Point]:
        timeline = self.timeline
        if self.anchored:
            first_end = timeline.advance(timeline.origin(self.is_len), self.is_len)
            return _Point(bar=0), timeline.advance(first_end, self.step_len, k)
        start = timeline.advance(timeline.origin(self.step_len), self.step_len, k)
        return start, timeline.advance(start, self.is_len)

    def _check_fold(
        self, number: int, is_start: int, is_end: int, oos_start: int, oos_end: int
    ) -> None:
        if is_end - is_start < 2:
            raise ConfigError(
                f"every in-sample window needs at least 2 bars, but fold {number}'s "
                f"(--is {self.is_text} from {self.timeline.label(is_start)}) holds "
                f"{is_end - is_start}; lengthen --is or fill the hole in the data"
            )
        if oos_end - oos_start < 1:
            raise ConfigError(
                f"every OOS window needs at least 1 bar, but fold {number}'s "
                f"({self.oos_text} from {self.timeline.label(oos_start)}) holds none; "
                "lengthen --oos or fill the hole in the data"
            )

    def no_fit_message(self) -> str:
        timeline = self.timeline
        need = f"--is {self.is_text}" + (f" + --gap {self.gap}" if self.gap else "")
        need += f" + {self.oos_text}"
        if isinstance(self.is_len, int) and isinstance(self.oos_len, int):
            need += f" = {self.is_len + self.gap + self.oos_len:,} bars"
        elif timeline.n_bars:
            end = timeline.advance(self._is_points(0)[1], self.oos_len)
            if end.bar is None:
                until = day_label(timeline.time(end))
                more = f" and {self.gap} bars more" if self.gap else ""
                need += f" (bars from {timeline.label(0)} to before {until}{more})"
        first, last = timeline.label(0), timeline.label(timeline.n_bars - 1)
        return (
            f"no walk-forward fold fits: the first needs {need}, but the series has "
            f"{timeline.n_bars:,} bars ({first}..{last}); shorten --is/--oos or load more "
            "history"
        )


def _check_index(index: pd.DatetimeIndex) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise ConfigError(
            f"walk-forward windows need a DatetimeIndex, got {type(index).__name__}; "
            "pass the bars' index (frame.index)"
        )
    if not index.is_monotonic_increasing:
        raise ConfigError(
            "walk-forward windows need the bars oldest first, got an unsorted index; "
            "sort the bars (frame.sort_index())"
        )


def _at_least(length: Length, name: str, minimum: int, example: str) -> Length:
    if isinstance(length, int) and length < minimum:
        unit = "bar" if minimum == 1 else "bars"
        raise ConfigError(f"{name} must be at least {minimum} {unit}, got {length}; {example}")
    return length


def _text(length: str | int | pd.DateOffset | None) -> str:
    """How a length reads in messages: as the user wrote it."""
    if isinstance(length, pd.DateOffset):
        return "+".join(f"{value * length.n} {key}" for key, value in length.kwds.items())
    return str(length).strip()
