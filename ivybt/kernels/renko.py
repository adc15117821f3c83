"""Renko bricks from price bars, and their volumes (issue #7).

A brick is one box of price movement, tied to the source bar that completed it. The rules, in
full in `renko_bricks_nb` and docs/renko.md:

- the first level (the anchor) is set at the close of the first bar with a valid close and box
  (floor anchor: the highest multiple of the box that close reaches, touch tolerance included);
- a continuation brick needs the price one box beyond the last brick's close;
- a reversal needs `reversal` boxes against the last brick's direction, counted from its close,
  and starts at the last brick's open (classic 2-box Renko; with `reversal = 1`, at its close);
- a level is reached when the price is within `TOUCH_TOLERANCE * box` of it or beyond;
- one bar can complete several bricks; they share its index.

Inputs are never mutated; bricks are written only into the `out_*` arguments. Brick prices are
built by repeated addition (`close = open + box`), as stocktrends does: exact for boxes such as
0.25, 1 or 5 on prices with few decimals; with a box like 0.1 a level may sit a few ulps from
k x 0.1, far inside the touch tolerance. Reference twin: tests/reference_renko.py.
"""

from __future__ import annotations

import math

from numba import njit

from ivybt._typing import Float64Array1D, Int64Array1D

TOUCH_TOLERANCE = 1e-9
"""A level L counts as reached by a price p moving up when p >= L - 1e-9 * box (down: when
p <= L + 1e-9 * box), so a close exactly on a level, give or take rounding, makes the brick.
The kernel writes it as the literal 1e-9 (kernels read no module state, STYLE 2.4);
tests/test_renko.py checks that the two agree."""

# The codes of `settings` and `mode`, for wrappers (the kernels compare with the literals).
SOURCE_CLOSE = 0
SOURCE_HIGH_LOW = 1
ANCHOR_FLOOR = 0
ANCHOR_FIRST = 1
VOLUME_SUM = 0
VOLUME_SPLIT = 1
VOLUME_NONE = 2


@njit(cache=True)
def _next_brick_nb(
    price: float,
    box: float,
    reversal: int,
    last_open: float,
    last_close: float,
    direction: int,
) -> tuple[float, float]:
    """(open, close) of the next brick `price` completes, or (NaN, NaN) when none.

    `direction` is the last brick's (+1 up, -1 down), or 0 before the first brick, when
    `last_close` holds the anchor level and a move of one box either way makes a brick.
    """
    tol = 1e-9 * box
    up_level = last_close + box
    down_level = last_close - box
    if direction >= 0 and price >= up_level - tol:
        return last_close, up_level
    if direction <= 0 and price <= down_level + tol:
        return last_close, down_level
    if direction == 0:
        return math.nan, math.nan
    # A reversal: `need` bricks from `start`, i.e. `reversal` boxes from the last close.
    start = last_open if reversal >= 2 else last_close
    need = reversal - 1 if reversal >= 2 else 1
    level = start
    for _ in range(need):
        level = level - direction * box
    if direction > 0 and price <= level + tol:
        return start, start - box
    if direction < 0 and price >= level - tol:
        return start, start + box
    return math.nan, math.nan


@njit(cache=True)
def _floor_level_nb(price: float, box: float) -> float:
    """The floor anchor: k x box for the largest integer k whose level `price` reaches, i.e.
    price >= k x box - 1e-9 x box (the touch tolerance), so a price on a level anchors there.

    `math.floor(price / box)` alone misses by one when the division rounds down
    (0.3 / 0.1 = 2.9999999999999996, floor 2 although 0.3 is on level 3), or up past a level
    the price does not reach; one step either way corrects it.
    """
    tol = 1e-9 * box
    k = math.floor(price / box)
    if price >= (k + 1) * box - tol:
        k += 1
    elif price < k * box - tol:
        k -= 1
    return k * box


@njit(cache=True)
def renko_bricks_nb(
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    boxes: Float64Array1D,
    settings: Int64Array1D,
    out_open: Float64Array1D,
    out_close: Float64Array1D,
    out_bar: Int64Array1D,
) -> int:
    """Build Renko bricks from bars `settings[3]` .. n_bars - 1, oldest first.

    Parameters
    ----------
    high, low, close : float64, shape (n_bars,)
        Bar prices in quote currency, oldest first. `high` and `low` are read only when
        `settings[2] == 1`. A bar whose price (close; or high, low and close) is NaN is skipped.
    boxes : float64, shape (n_bars,)
        The box in force at each bar, in price units: constant for a fixed box, or the ATR at
        each bar's close times a multiple (dynamic). Bar t is checked with `boxes[t]`, and a
        brick spans the box in force at the bar that completes it. A bar whose box is NaN or
        <= 0 (e.g. ATR warm-up) is skipped.
    settings : int64, shape (4,)
        `(reversal, anchor, source, first_bar)`. reversal >= 1 (2 = classic); anchor 0 =
        floor (first level floor(c / box) * box, where a c within the touch tolerance under
        a level counts as on it), 1 = first (first level c), where c and box are the close
        and box of the anchor bar; source 0 = closes, 1 = highs and lows; first_bar: bars
        before it are ignored.
    out_open, out_close : float64, shape (capacity,)
        Written: brick i spans out_open[i] -> out_close[i] = out_open[i] +- box.
    out_bar : int64, shape (capacity,)
        Written: index of the source bar that completed brick i (non-decreasing; shared by the
        bricks of one bar). capacity = the smallest of the three lengths.

    Returns
    -------
    n_bricks : int
        The number of bricks written when it is <= capacity; otherwise -(number needed), with
        only the first `capacity` bricks written. Count, then fill: call with empty arrays to
        get -needed (0 means no brick), then again with arrays of exactly `needed`.

    Notes
    -----
    - Anchor: the first bar >= first_bar with a valid close and box sets the first level and
      completes no brick (with source 1 too). From then on, before the first brick, a move
      of one box from the anchor either way makes the first brick (stocktrends instead seeds
      a synthetic up brick below the floor level, so its first down brick needs two boxes).
    - Continuation: a brick from the last close when the price is one box beyond it.
      Reversal: when the price is `reversal` boxes beyond the last close against the last
      direction, i.e. `reversal - 1` boxes beyond the last brick's open, bricks start at that
      open (at the last close when reversal == 1) and all `reversal - 1` of them complete at
      that bar. A smaller pull-back makes no brick. With a dynamic box the boxes are counted
      in the current bar's box, from the last open.
    - Touch: a level is reached when the price is within 1e-9 * box of it, or beyond.
    - Source 1, order within a bar: the extreme farther from the close comes first (close in
      the upper half of the range, ties included: low then high; else high then low), so
      the bar ends on the side where it closed. Each extreme makes every brick it reaches.
    - Causal: bricks completed at or before bar t depend on bars <= t only.
    Reference: tests/reference_renko.py::renko_bricks.
    """
    n_bars = close.shape[0]
    capacity = min(out_open.shape[0], out_close.shape[0], out_bar.shape[0])
    reversal = settings[0]
    anchor = settings[1]
    source = settings[2]
    count = 0
    anchored = False
    direction = 0
    last_open = math.nan
    last_close = math.nan
    for t in range(max(settings[3], 0), n_bars):
        box = boxes[t]
        c = close[t]
        if math.isnan(c) or not box > 0.0 or math.isinf(box):
            continue
        if source == 1 and (math.isnan(high[t]) or math.isnan(low[t])):
            continue
        if not anchored:
            anchored = True
            last_close = _floor_level_nb(c, box) if anchor == 0 else c
            last_open = last_close
            continue
        n_prices = 1
        first_price = c
        second_price = c
        if source == 1:
            n_prices = 2
            if c - low[t] >= high[t] - c:
                first_price, second_price = low[t], high[t]
            else:
                first_price, second_price = high[t], low[t]
        for k in range(n_prices):
            price = first_price if k == 0 else second_price
            while True:
                brick_open, brick_close = _next_brick_nb(
                    price, box, reversal, last_open, last_close, direction
                )
                if math.isnan(brick_open):
                    break
                if count < capacity:
                    out_open[count] = brick_open
                    out_close[count] = brick_close
                    out_bar[count] = t
                count += 1
                last_open = brick_open
                last_close = brick_close
                direction = 1 if brick_close > brick_open else -1
    if count > capacity:
        return -count
    return count


@njit(cache=True)
def renko_volume_nb(
    volume: Float64Array1D,
    bar_of_brick: Int64Array1D,
    n_bricks: int,
    mode: int,
    out_volume: Float64Array1D,
) -> None:
    """Volume of each brick from the volumes of the source bars.

    Parameters
    ----------
    volume : float64, shape (n_bars,)
        Source-bar volumes (units traded), oldest first. A NaN propagates to the bricks whose
        window holds it.
    bar_of_brick : int64, shape (>= n_bricks,)
        `out_bar` of `renko_bricks_nb`: the completing bar of each brick, non-decreasing.
    n_bricks : int
        Number of bricks (the first n_bricks entries are used).
    mode : int
        0 = sum, 1 = split, 2 = none (see Notes).
    out_volume : float64, shape (>= n_bricks,)
        Written: out_volume[:n_bricks].

    Notes
    -----
    Let the window of bar t be the bars (p, t], where p is the completing bar of the last
    brick before bar t's bricks (p = -1 for the first bar with bricks, so the window starts at
    bar 0; pass `volume[first_bar:]` and `bar_of_brick - first_bar` to start elsewhere), and V
    the sum of its volumes. With k bricks completed by bar t:
    - sum: the first of them gets V, the other k - 1 get 0.0 (no source volume traded since
      the previous brick, which completed in the same bar), so the total is conserved;
    - split: each gets V / k, total conserved as well;
    - none: every brick gets 0.0 (as for FX series without volume).
    Reference: tests/reference_renko.py::renko_volume.
    """
    previous_bar = -1
    i = 0
    while i < n_bricks:
        bar = bar_of_brick[i]
        j = i
        while j < n_bricks and bar_of_brick[j] == bar:
            j += 1
        total = 0.0
        if mode != 2:
            for s in range(previous_bar + 1, bar + 1):
                total += volume[s]
        for b in range(i, j):
            if mode == 0:
                out_volume[b] = total if b == i else 0.0
            elif mode == 1:
                out_volume[b] = total / (j - i)
            else:
                out_volume[b] = 0.0
        previous_bar = bar
        i = j
