"""Renko bricks from an OHLCV frame: validated settings, the box, and a labelled brick table.

The arithmetic is `ivybt.kernels.renko`; this module resolves the box, validates, and labels.
Every brick is tied to the real bar that completed it (its index, its timestamp); a strategy on
Renko decides when a brick completes and fills at the next real bar's open. docs/renko.md has
the rules with a picture.

The box
-------
- fixed (`box`): the same price step at every bar;
- ATR (`atr`, `atr_mult`): `ATR(atr) * atr_mult`, with the ATR of `ivybt.kernels.wilder`
  (Wilder's RMA of the true range, TA-Lib convention, first value at bar `atr`). The box is
  the ATR known at the close of bar `start - 1`, i.e. from the bars before the evaluated
  window. When there are not enough bars before `start` (start <= atr), it is the first ATR
  value (bar `atr`, from bars 0..atr): a warm-up estimate from the first atr + 1 bars, which
  may include bars at or after `start` (documented look-ahead of the warm-up only);
- dynamic ATR (`atr_dynamic`): bar t is checked with `ATR[t] * atr_mult` (known at bar t's
  close); bars before the first ATR value make no brick and set no anchor. `start` changes
  nothing then: each box already uses bars <= t only.

Bricks are always built from bar 0 (bricks before `start` warm up signals, like indicators on
standard bars); only the fixed-at-start ATR box depends on `start`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Int64Array1D
from ivybt.errors import ConfigError, ValidationError
from ivybt.kernels.renko import (
    ANCHOR_FIRST,
    ANCHOR_FLOOR,
    SOURCE_CLOSE,
    SOURCE_HIGH_LOW,
    VOLUME_NONE,
    VOLUME_SPLIT,
    VOLUME_SUM,
    renko_bricks_nb,
    renko_volume_nb,
)
from ivybt.kernels.wilder import atr_1d_nb

ANCHORS = ("floor", "first")
SOURCES = ("close", "hl")
VOLUMES = ("sum", "split", "none")
MAX_BRICKS = 10_000_000
"""More bricks than this (about 0.9 GB as a brick table) is refused: the box is too small."""

COLUMNS = ("open", "high", "low", "close", "volume", "direction", "bar")


@dataclass(frozen=True)
class RenkoSettings:
    """How to build Renko bricks; validated on construction (`ConfigError`, one line each).

    Attributes
    ----------
    box : fixed box in price units, > 0 (exactly one of `box` and `atr`).
    atr : ATR period in bars, >= 1, for an ATR box.
    atr_mult : the ATR box is ATR x atr_mult, > 0 (ATR boxes only).
    atr_dynamic : recompute the box from the ATR at each bar instead of the ATR known at the
        start of the evaluated window (ATR boxes only).
    reversal : boxes against the trend that make a reversal, >= 1 (2 = classic Renko).
    anchor : "floor" (first level floor(c0 / box) x box, a c0 on a level give or take the
        touch tolerance anchoring on it) or "first" (first level c0).
    source : "close" (closes only) or "hl" (highs and lows).
    volume : "sum", "split" or "none" (see `ivybt.kernels.renko.renko_volume_nb`).
    """

    box: float | None = None
    atr: int | None = None
    atr_mult: float = 1.0
    atr_dynamic: bool = False
    reversal: int = 2
    anchor: str = "floor"
    source: str = "close"
    volume: str = "sum"

    def __post_init__(self) -> None:
        _check_box_or_atr(self)
        _check_int("reversal", self.reversal)
        if self.reversal < 1:
            raise ConfigError(
                f"Renko reversal >= 1 must hold, but got reversal={self.reversal}; "
                "use --renko-reversal 2 (classic) or 1"
            )
        _check_choice("anchor", self.anchor, ANCHORS)
        _check_choice("source", self.source, SOURCES)
        _check_choice("volume", self.volume, VOLUMES)

    @property
    def kernel_settings(self) -> Int64Array1D:
        """`settings` of `renko_bricks_nb` (first_bar 0: bricks are built from bar 0)."""
        anchor = {"floor": ANCHOR_FLOOR, "first": ANCHOR_FIRST}[self.anchor]
        source = {"close": SOURCE_CLOSE, "hl": SOURCE_HIGH_LOW}[self.source]
        return np.array([self.reversal, anchor, source, 0], dtype=np.int64)

    @property
    def volume_mode(self) -> int:
        """`mode` of `renko_volume_nb`."""
        return {"sum": VOLUME_SUM, "split": VOLUME_SPLIT, "none": VOLUME_NONE}[self.volume]


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Renko {name} must be a number, got {type(value).__name__} {value!r}; "
            f"pass e.g. {name}=1.0"
        )
    return float(value)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"Renko {name} must be an integer, got {type(value).__name__} {value!r}; "
            f"pass e.g. {name}=14"
        )
    return int(value)


def _check_box_or_atr(settings: RenkoSettings) -> None:
    box, atr = settings.box, settings.atr
    if box is not None and atr is not None:
        raise ConfigError(
            f"Renko needs exactly one of box and atr, but got box={box} and atr={atr}; "
            "pass either --renko-box or --renko-atr"
        )
    if box is None and atr is None:
        raise ConfigError(
            "Renko needs exactly one of box and atr, but got neither; "
            "pass --renko-box (e.g. 1.0) or --renko-atr (e.g. 14)"
        )
    mult = _check_number("atr_mult", settings.atr_mult)
    if box is not None:
        value = _check_number("box", box)
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(
                f"Renko box > 0 must hold, but got box={box}; "
                "set a positive price step, e.g. --renko-box 1.0"
            )
        if settings.atr_dynamic:
            raise ConfigError(
                f"--renko-atr-dynamic applies to an ATR box only, but got box={box}; "
                "drop --renko-atr-dynamic or use --renko-atr instead of --renko-box"
            )
        if mult != 1.0:
            raise ConfigError(
                f"--renko-atr-mult applies to an ATR box only, but got box={box} and "
                f"atr_mult={settings.atr_mult}; drop --renko-atr-mult or use --renko-atr"
            )
        return
    period = _check_int("atr", atr)
    if period < 1:
        raise ConfigError(
            f"Renko ATR period >= 1 must hold, but got atr={atr}; "
            "set --renko-atr to a number of bars, e.g. 14"
        )
    if not (mult > 0 and math.isfinite(mult)):
        raise ConfigError(
            f"Renko ATR multiple > 0 must hold, but got atr_mult={settings.atr_mult}; "
            "set --renko-atr-mult to a positive number, e.g. 1.0"
        )


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value in choices:
        return
    allowed = ", ".join(repr(c) for c in choices)
    close = difflib.get_close_matches(str(value), choices, n=1)
    fix = (
        f"did you mean --renko-{name} {close[0]}?"
        if close
        else f"pass one of them to --renko-{name}"
    )
    raise ConfigError(f"Renko {name} must be one of {allowed}, but got {value!r}; {fix}")


def renko_bricks(frame: pd.DataFrame, settings: RenkoSettings, *, start: int = 0) -> pd.DataFrame:
    """One row per Renko brick of `frame`, built from bar 0 with the box known at `start`.

    Parameters
    ----------
    frame : DataFrame
        OHLCV bars, oldest first: float columns high, low, close (and volume unless
        `settings.volume == "none"`); a NaN bar is skipped.
    settings : RenkoSettings
        Box, reversal, anchor, source and volume mode.
    start : int, default 0
        The first evaluated bar, 0 <= start < len(frame). Only a non-dynamic ATR box depends
        on it (see the module docstring).

    Returns
    -------
    DataFrame
        Indexed by the timestamp of the bar that completed each brick (the frame's index name;
        bricks of one bar repeat it). Columns: open, close (close = open +- box), high =
        max(open, close), low = min(open, close), volume (float64), direction (int8, +1 up,
        -1 down), bar (int64, position of the completing bar in `frame`, non-decreasing).

    Raises
    ------
    ConfigError
        `start` out of range, too few bars for the ATR, no brick at all, or more than
        `MAX_BRICKS` bricks.
    """
    n_bars = len(frame)
    high, low, close, volume = _columns(frame, settings)
    if isinstance(start, bool) or not isinstance(start, numbers.Integral):
        raise TypeError(f"start must be an integer bar position, got {start!r}; pass e.g. 0")
    if n_bars == 0:
        raise ConfigError("Renko bricks need bars, but the frame is empty; load a range with data")
    if not 0 <= start < n_bars:
        raise ConfigError(
            f"start must be a bar position in 0..{n_bars - 1}, but got start={start}; "
            "pass the first bar of the evaluated window"
        )
    boxes = _boxes(high, low, close, settings, int(start), _series_name(frame))
    kernel_settings = settings.kernel_settings
    empty_f, empty_i = np.empty(0, np.float64), np.empty(0, np.int64)
    needed = -renko_bricks_nb(high, low, close, boxes, kernel_settings, empty_f, empty_f, empty_i)
    if needed == 0:
        raise ConfigError(_no_brick_message(frame, settings, boxes, (high, low, close)))
    if needed > MAX_BRICKS:
        raise ConfigError(
            f"Renko bricks <= {MAX_BRICKS:,} must hold, but {_box_text(settings, boxes)} makes "
            f"{needed:,} bricks on {_bars_text(frame)}; use a larger box"
        )
    out_open = np.empty(needed, np.float64)
    out_close = np.empty(needed, np.float64)
    out_bar = np.empty(needed, np.int64)
    renko_bricks_nb(high, low, close, boxes, kernel_settings, out_open, out_close, out_bar)
    out_volume = np.empty(needed, np.float64)
    renko_volume_nb(volume, out_bar, needed, settings.volume_mode, out_volume)
    index = frame.index[out_bar]
    return pd.DataFrame(
        {
            "open": out_open,
            "high": np.maximum(out_open, out_close),
            "low": np.minimum(out_open, out_close),
            "close": out_close,
            "volume": out_volume,
            "direction": np.where(out_close > out_open, 1, -1).astype(np.int8),
            "bar": out_bar,
        },
        index=index,
    )


def renko_columns(bricks: pd.DataFrame) -> dict[str, Float64Array1D]:
    """open, high, low, close, volume of `bricks` as contiguous float64 arrays, for kernels."""
    return {
        name: np.ascontiguousarray(bricks[name].to_numpy(), dtype=np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }


def brick_bars(bricks: pd.DataFrame) -> Int64Array1D:
    """The source bar (position in the original frame) that completed each brick, int64."""
    return np.ascontiguousarray(bricks["bar"].to_numpy(), dtype=np.int64)


# -- helpers -----------------------------------------------------------------------------------


def _columns(
    frame: pd.DataFrame, settings: RenkoSettings
) -> tuple[Float64Array1D, Float64Array1D, Float64Array1D, Float64Array1D]:
    needed = ["high", "low", "close"] + (["volume"] if settings.volume != "none" else [])
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"Renko bricks need columns {', '.join(needed)}, but the frame lacks "
            f"{', '.join(missing)}; pass an OHLCV frame such as ivybt.load(...)"
        )

    def column(name: str) -> Float64Array1D:
        if name not in frame.columns:
            return np.zeros(len(frame), np.float64)
        return np.ascontiguousarray(frame[name].to_numpy(np.float64, na_value=np.nan))

    return column("high"), column("low"), column("close"), column("volume")


def _boxes(
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    settings: RenkoSettings,
    start: int,
    name: str,
) -> Float64Array1D:
    n_bars = close.shape[0]
    if settings.box is not None:
        return np.full(n_bars, float(settings.box), np.float64)
    period = int(settings.atr)  # type: ignore[arg-type]
    if n_bars < period + 1:
        raise ConfigError(
            f"an ATR({period}) box needs at least {period + 1} bars ({period} true ranges), "
            f"but {name} has {n_bars:,}; load more bars or use a smaller --renko-atr"
        )
    atr = atr_1d_nb(high, low, close, period) * settings.atr_mult
    if settings.atr_dynamic:
        return atr
    valid = np.flatnonzero(~np.isnan(atr))
    if valid.size == 0:
        raise ConfigError(
            f"an ATR({period}) box needs {period} finite true ranges in a row, but {name} "
            "has none; check the data for NaN bars"
        )
    before = valid[valid < start]
    # the ATR known at the close of bar start - 1; else the first ATR value (warm-up estimate)
    known = atr[before[-1]] if before.size else atr[valid[0]]
    return np.full(n_bars, known, np.float64)


def _series_name(frame: pd.DataFrame) -> str:
    record = frame.attrs.get("ivybt")
    symbol = record.get("symbol") if isinstance(record, dict) else None
    return str(symbol) if symbol else "the series"


def _bars_text(frame: pd.DataFrame) -> str:
    """ "SPY's 2,520 bars", or "2,520 bars" when the frame does not say its symbol."""
    name = _series_name(frame)
    owner = f"{name}'s " if name != "the series" else ""
    return f"{owner}{len(frame):,} bars"


def _num(value: float) -> str:
    return f"{value:,.6g}"


def _box_text(settings: RenkoSettings, boxes: Float64Array1D) -> str:
    if settings.box is not None:
        return f"a box of {_num(float(settings.box))}"
    rule = f"ATR({settings.atr}) x {_num(settings.atr_mult)}"
    finite = boxes[np.isfinite(boxes)]
    if settings.atr_dynamic and finite.size:
        return f"a dynamic box of {rule} ({_num(finite.min())}..{_num(finite.max())})"
    return f"a box of {_num(float(boxes[0]))} ({rule})"


def _no_brick_message(
    frame: pd.DataFrame,
    settings: RenkoSettings,
    boxes: Float64Array1D,
    prices: tuple[Float64Array1D, Float64Array1D, Float64Array1D],
) -> str:
    high, low, close = prices
    seen = np.concatenate([low, high]) if settings.source == "hl" else close
    finite = seen[np.isfinite(seen)]
    span = f" (range {_num(finite.min())}..{_num(finite.max())})" if finite.size else ""
    fix = "--renko-box" if settings.box is not None else "--renko-atr-mult"
    return (
        f"{_box_text(settings, boxes)} makes no brick on {_bars_text(frame)}{span}; "
        f"use a smaller {fix}"
    )
