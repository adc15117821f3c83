"""Slow, obvious twins of `ivybt.kernels.renko` (STYLE 3), written from the rules of issue #7
with plain Python lists and floats, sharing no code with the kernels.

A brick is (open, close, bar). The rules, stated once more:

- the first bar from `first_bar` on with a finite close and a finite positive box sets the
  anchor level (the highest multiple k * box the close reaches, touch tolerance included, or
  the close itself) and makes no brick;
- before the first brick, a price one box above the anchor makes an up brick, one box below it
  a down brick;
- after it: a price one box beyond the last close continues; a price `reversal` boxes beyond the
  last close against the last direction reverses, the new brick starting at the last brick's
  open (at its close when reversal == 1);
- "beyond" allows 1e-9 * box of rounding; a level is computed by adding one box at a time;
- source "hl" visits the bar's extreme farther from the close first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from ivybt._typing import Float64Array1D, Int64Array1D

Number = float | Fraction
Brick = tuple[Number, Number, int]


def _reached(price: Number, level: Number, upward: bool, slack: Number) -> bool:
    """`price` reaches `level` moving up (down), allowing `slack`: 1e-9 * box for floats, 0
    for exact numbers."""
    if upward:
        return price >= level - slack
    return price <= level + slack


def floor_level(price: float, box: float) -> float:
    """The floor anchor: try the levels k * box from one above floor(price / box) down, and
    keep the first `price` reaches going up (0.3 with a box of 0.1 is on level 3, although
    0.3 / 0.1 = 2.9999999999999996)."""
    k = math.floor(price / box) + 1
    while not _reached(price, k * box, True, 1e-9 * box):
        k -= 1
    return k * box


def _one_brick(
    bricks: list[Brick], anchor: Number, price: Number, box: Number, reversal: int,
    slack: Number,
) -> tuple[Number, Number] | None:  # fmt: skip
    """The next brick `price` makes after `bricks` (or from `anchor`), or None."""
    if not bricks:
        if _reached(price, anchor + box, True, slack):
            return anchor, anchor + box
        if _reached(price, anchor - box, False, slack):
            return anchor, anchor - box
        return None
    last_open, last_close, _ = bricks[-1]
    rising = last_close > last_open
    step = box if rising else -box
    if _reached(price, last_close + step, rising, slack):
        return last_close, last_close + step
    start = last_open if reversal >= 2 else last_close
    target = start
    for _ in range(max(reversal - 1, 1)):
        target = target - box if rising else target + box
    if _reached(price, target, not rising, slack):
        return start, (start - box if rising else start + box)
    return None


def renko_bricks(
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    boxes: Float64Array1D,
    settings: tuple[int, int, int, int],
) -> list[Brick]:
    """Every brick, in order: the twin of `renko_bricks_nb` (same `settings` tuple)."""
    reversal, anchor_mode, source, first_bar = settings
    bricks: list[Brick] = []
    anchor: float | None = None
    for t in range(max(first_bar, 0), len(close)):
        c, box = float(close[t]), float(boxes[t])
        h, lo = float(high[t]), float(low[t])
        if math.isnan(c) or not (box > 0.0) or math.isinf(box):
            continue
        if source == 1 and (math.isnan(h) or math.isnan(lo)):
            continue
        if anchor is None:
            anchor = floor_level(c, box) if anchor_mode == 0 else c
            continue
        if source == 0:
            path = [c]
        elif c - lo >= h - c:
            path = [lo, h]
        else:
            path = [h, lo]
        for price in path:
            brick = _one_brick(bricks, anchor, price, box, reversal, 1e-9 * box)
            while brick is not None:
                bricks.append((brick[0], brick[1], t))
                brick = _one_brick(bricks, anchor, price, box, reversal, 1e-9 * box)
    return bricks


def renko_bricks_exact(
    close: Sequence[Fraction], box: Fraction, reversal: int = 2, anchor_mode: int = 0
) -> list[Brick]:
    """The bricks of closes (source "close", a fixed box) in exact rational arithmetic: levels
    are exact multiples of `box` (floor anchor: the largest k * box <= the first close), a
    level is reached only when the close is on it or beyond. What the float kernel must give
    for decimal prices and boxes such as 0.1 or 1.1, up to its touch tolerance."""
    bricks: list[Brick] = []
    if not close:
        return bricks
    first = close[0]
    anchor = math.floor(first / box) * box if anchor_mode == 0 else first
    for t in range(1, len(close)):
        brick = _one_brick(bricks, anchor, close[t], box, reversal, Fraction(0))
        while brick is not None:
            bricks.append((brick[0], brick[1], t))
            brick = _one_brick(bricks, anchor, close[t], box, reversal, Fraction(0))
    return bricks


def renko_volume(volume: Float64Array1D, bars: Int64Array1D, mode: int) -> Float64Array1D:
    """The twin of `renko_volume_nb`: mode 0 sum, 1 split, 2 none."""
    out = []
    bar_list = [int(b) for b in bars]
    for i, bar in enumerate(bar_list):
        earlier = [b for b in bar_list[:i] if b < bar]
        since = earlier[-1] + 1 if earlier else 0
        window = 0.0
        for s in range(since, bar + 1):
            window += float(volume[s])
        same_bar = bar_list.count(bar)
        first_of_bar = i == bar_list.index(bar)
        if mode == 0:
            out.append(window if first_of_bar else 0.0)
        elif mode == 1:
            out.append(window / same_bar)
        else:
            out.append(0.0)
    return np.array(out, dtype=np.float64)
