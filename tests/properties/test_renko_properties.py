"""Hypothesis properties of the Renko kernels (issue #7, STYLE 3):

- kernel == its tests/reference_renko.py twin, brick for brick, bit for bit;
- bricks are contiguous: a brick opens at the previous close when it continues, at the previous
  open when it reverses (at the previous close with reversal 1); the first opens at the anchor;
- each brick spans exactly the box in force at its completing bar (to 1e-12 relative) and never
  lies beyond the price that completed it;
- completing bars never decrease (the wrapper's timestamps neither);
- causality: changing bars (and boxes) after t changes no brick completed at or before t, also
  through the wrapper's ATR boxes (fixed at `start`, or dynamic) on real SPY bars;
- count-then-fill: too small outputs return -needed and hold the first bricks;
- volumes == the twin, and `sum` and `split` conserve the source volume.

Inputs: random walks (tests/strategies.py) with a box of 0.2 % to 8 % of the median price,
quarter-step grids with a box of 1 or 0.5, where closes land exactly on levels (or a hair
inside or outside the touch tolerance) all the time, and whole-cent prices with non-binary
boxes (0.1, 0.2, 0.3, 0.7, 1.1), checked against exact rational arithmetic too.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pandas as pd
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ivybt.bars import RenkoSettings, renko_bricks
from ivybt.data.sample import load_sample
from ivybt.errors import ConfigError
from ivybt.kernels.renko import renko_bricks_nb, renko_volume_nb
from tests import reference_renko
from tests.strategies import ohlc_arrays

RTOL_BOX = 1e-12
"""|close - open| vs the box: the brick close is open + box in float64, so only its rounding."""

RTOL_VOLUME = 1e-12
"""Total brick volume vs total source volume: the same numbers summed in another grouping."""


class Case(NamedTuple):
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    boxes: np.ndarray
    settings: np.ndarray


@st.composite
def grid_bars(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Closes on a 0.25 grid around 100, wicks of whole quarter steps, box 1.0 or 0.5; some
    closes moved off the grid by 0.4e-9 or 3e-9 box, inside or outside the touch tolerance."""
    size = draw(st.integers(2, 80))
    box = draw(st.sampled_from([1.0, 0.5]))
    steps = draw(arrays(np.int64, size, elements=st.integers(-6, 6)))
    jitter = draw(arrays(np.float64, size, elements=st.sampled_from([0.0, 0.4e-9, 3e-9])))
    signs = draw(arrays(np.float64, size, elements=st.sampled_from([-1.0, 1.0])))
    close = 100.0 + 0.25 * np.cumsum(steps) + signs * jitter * box
    up = draw(arrays(np.int64, size, elements=st.integers(0, 6)))
    down = draw(arrays(np.int64, size, elements=st.integers(0, 6)))
    return close + 0.25 * up, close - 0.25 * down, close, box


NON_BINARY_BOXES = (Fraction("0.1"), Fraction("0.2"), Fraction("0.3"), Fraction("0.7"),
                    Fraction("1.1"))  # fmt: skip
"""Boxes with no exact binary form: k x box and closes on its levels round differently."""


@st.composite
def decimal_closes(draw: st.DrawFn) -> tuple[list[Fraction], Fraction]:
    """A non-binary box and closes in whole cents from 0.01 to 50, both exact: the first close
    on a level of the box half the time (where floor(c0 / box) misrounds), then a random walk
    of whole boxes and cents, so closes land on levels often."""
    box = draw(st.sampled_from(NON_BINARY_BOXES))
    box_cents = int(box * 100)
    size = draw(st.integers(2, 60))
    if draw(st.booleans()):
        start = box_cents * draw(st.sampled_from(range(1, 5000 // box_cents + 1)))
    else:
        start = draw(st.integers(1, 5000))
    steps = draw(st.lists(st.integers(-3, 3), min_size=size - 1, max_size=size - 1))
    cents_off = draw(st.lists(st.sampled_from([0, 0, 0, -1, 1, 5]), min_size=size - 1,
                              max_size=size - 1))  # fmt: skip
    cents = [start]
    for step, off in zip(steps, cents_off, strict=True):
        cents.append(min(max(cents[-1] + step * box_cents + off, 1), 5000))
    return [Fraction(c, 100) for c in cents], box


@st.composite
def decimal_bars(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    closes, box = draw(decimal_closes())
    close = np.array([float(c) for c in closes])
    wick = draw(arrays(np.int64, close.shape[0], elements=st.integers(0, 30))) / 100.0
    return close + wick, close - wick, close, float(box)


@st.composite
def walk_bars(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    bars = draw(ohlc_arrays(min_size=2))
    box = float(np.median(bars.close)) * draw(st.floats(0.002, 0.08))
    return bars.high, bars.low, bars.close, box


@st.composite
def cases(draw: st.DrawFn) -> Case:
    high, low, close, box = draw(st.one_of(grid_bars(), walk_bars(), decimal_bars()))
    n_bars = close.shape[0]
    boxes = np.full(n_bars, box)
    if draw(st.booleans()):  # dynamic: the box changes at every bar, with an ATR-like warm-up
        factors = draw(arrays(np.float64, n_bars, elements=st.floats(0.5, 2.0)))
        boxes = box * factors
        boxes[: draw(st.integers(0, n_bars // 3))] = np.nan
    close = close.copy()
    for t in draw(st.lists(st.integers(0, n_bars - 1), max_size=3)):
        close[t] = np.nan  # a missing bar
    settings = np.array(
        [
            draw(st.integers(1, 4)),
            draw(st.integers(0, 1)),
            draw(st.integers(0, 1)),
            draw(st.integers(0, min(5, n_bars - 1))),
        ],
        dtype=np.int64,
    )
    return Case(high, low, close, boxes, settings)


def run(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    empty_f, empty_i = np.empty(0), np.empty(0, np.int64)
    needed = -renko_bricks_nb(*case[:4], case.settings, empty_f, empty_f, empty_i)
    out = np.empty(needed), np.empty(needed), np.empty(needed, np.int64)
    assert renko_bricks_nb(*case[:4], case.settings, *out) == needed
    return out


@given(cases())
def test_kernel_matches_reference(case):
    opens, closes, bars = run(case)
    expected = reference_renko.renko_bricks(*case[:4], tuple(int(s) for s in case.settings))
    got = [(float(o), float(c), int(b)) for o, c, b in zip(opens, closes, bars, strict=True)]
    assert got == expected


def _anchor(case: Case) -> float:
    first_bar, anchor = int(case.settings[3]), int(case.settings[1])
    for t in range(first_bar, case.close.shape[0]):
        c, box = case.close[t], case.boxes[t]
        if not (math.isnan(c) or math.isnan(box)):
            return reference_renko.floor_level(c, box) if anchor == 0 else c
    return math.nan


@given(decimal_closes(), st.integers(1, 3), st.integers(0, 1))
@example(([Fraction("0.3"), Fraction("0.36"), Fraction("0.405")], Fraction("0.1")), 2, 0)
@example(([Fraction("0.3"), Fraction("0.25"), Fraction("0.2")], Fraction("0.1")), 2, 0)
def test_decimal_closes_give_the_bricks_of_exact_arithmetic(closes_and_box, reversal, anchor):
    """Decimal prices and boxes (0.1, 1.1...): the float kernel makes the bricks exact
    rational arithmetic makes, at the same bars, each level within the touch tolerance."""
    closes, box = closes_and_box
    exact = reference_renko.renko_bricks_exact(closes, box, reversal, anchor)
    close = np.array([float(c) for c in closes])
    settings = np.array([reversal, anchor, 0, 0], dtype=np.int64)
    opens, ends, bars = run(Case(close, close, close, np.full(close.shape[0], float(box)),
                                 settings))  # fmt: skip
    assert bars.tolist() == [bar for _, _, bar in exact]
    tol = 1e-9 * float(box)
    for got_open, got_close, (exact_open, exact_close, _) in zip(opens, ends, exact, strict=True):
        assert abs(got_open - exact_open) <= tol and abs(got_close - exact_close) <= tol


@given(cases())
def test_bricks_are_contiguous_one_box_each_and_never_beyond_the_price(case):
    opens, closes, bars = run(case)
    assume(opens.size > 0)
    reversal, _, source, first_bar = (int(s) for s in case.settings)
    assert opens[0] == _anchor(case)
    direction = np.sign(closes - opens)
    for i in range(1, opens.size):
        if direction[i] == direction[i - 1]:
            assert opens[i] == closes[i - 1]
        else:
            assert opens[i] == (opens[i - 1] if reversal >= 2 else closes[i - 1])
    np.testing.assert_allclose(np.abs(closes - opens), case.boxes[bars], rtol=RTOL_BOX)
    assert np.all(np.diff(bars) >= 0) and bars[0] >= first_bar
    tol = 1e-9 * case.boxes[bars]
    top = case.high[bars] if source == 1 else case.close[bars]
    bottom = case.low[bars] if source == 1 else case.close[bars]
    assert np.all((direction < 0) | (closes <= top + tol))
    assert np.all((direction > 0) | (closes >= bottom - tol))


@given(cases(), st.data())
def test_data_after_t_changes_no_brick_completed_at_or_before_t(case, data):
    n_bars = case.close.shape[0]
    t = data.draw(st.integers(0, n_bars - 1))
    later = slice(t + 1, None)
    factors = data.draw(arrays(np.float64, n_bars, elements=st.floats(0.5, 1.5)))
    columns = (np.concatenate([c[: t + 1], c[later] * factors[later]]) for c in case[:4])
    changed = Case(*columns, case.settings)
    before, after = run(case), run(changed)
    kept = int(np.sum(before[2] <= t))
    assert kept == int(np.sum(after[2] <= t))
    for one, other in zip(before, after, strict=True):
        np.testing.assert_array_equal(one[:kept], other[:kept])


@given(cases(), st.data())
def test_too_small_outputs_return_minus_needed_and_hold_the_first_bricks(case, data):
    full = run(case)
    needed = full[0].size
    assume(needed > 0)
    capacity = data.draw(st.integers(0, needed - 1))
    out = np.empty(capacity), np.empty(capacity), np.empty(capacity, np.int64)
    assert renko_bricks_nb(*case[:4], case.settings, *out) == -needed
    for part, whole in zip(out, full, strict=True):
        np.testing.assert_array_equal(part, whole[:capacity])


@given(cases(), st.data())
def test_volumes_match_reference_and_conserve_the_source_volume(case, data):
    bars = run(case)[2]
    assume(bars.size > 0)
    n_bars = case.close.shape[0]
    volume = data.draw(arrays(np.float64, n_bars, elements=st.floats(0.0, 1e9)))
    for mode in (0, 1, 2):
        out = np.empty(bars.size)
        renko_volume_nb(volume, bars, bars.size, mode, out)
        np.testing.assert_array_equal(out, reference_renko.renko_volume(volume, bars, mode))
        expected_total = 0.0 if mode == 2 else math.fsum(volume[: bars[-1] + 1])
        np.testing.assert_allclose(out.sum(), expected_total, rtol=RTOL_VOLUME)


@given(cases(), st.sampled_from(["close", "hl"]))
def test_wrapper_timestamps_never_decrease_and_name_the_completing_bar(case, source):
    n_bars = case.close.shape[0]
    index = pd.date_range("2020-01-01", periods=n_bars, freq="h", tz="UTC", name="date")
    frame = pd.DataFrame(
        {"high": case.high, "low": case.low, "close": case.close, "volume": 1.0}, index=index
    )
    try:
        settings = RenkoSettings(box=float(np.nanmax(case.boxes)), source=source)
        bricks = renko_bricks(frame, settings)
    except ConfigError as error:
        assume("makes no brick" not in str(error))
        raise
    assert bricks.index.is_monotonic_increasing
    assert list(bricks.index) == list(index[bricks["bar"].to_numpy()])
    assert bricks["volume"].sum() == bricks["bar"].iloc[-1] + 1


_SPY = load_sample("SPY", "1d")[0].iloc[:600]


@given(st.integers(1, 30), st.integers(0, 400), st.booleans(), st.data())
def test_atr_box_bricks_ignore_bars_after_t(atr, start, dynamic, data):
    """The ATR box (fixed at `start` or dynamic) uses no bar after t >= max(start - 1, atr)."""
    t = data.draw(st.integers(max(start - 1, atr), len(_SPY) - 1))
    factors = data.draw(arrays(np.float64, len(_SPY) - t - 1, elements=st.floats(0.8, 1.25)))
    changed = _SPY.copy()
    changed.iloc[t + 1 :] = changed.iloc[t + 1 :].mul(factors, axis=0)
    settings = RenkoSettings(atr=atr, atr_mult=0.5, atr_dynamic=dynamic)
    before = renko_bricks(_SPY, settings, start=start)
    after = renko_bricks(changed, settings, start=start)
    pd.testing.assert_frame_equal(before[before["bar"] <= t], after[after["bar"] <= t])
