"""Renko bricks (issue #7): hand-built series, volume modes, the ATR box, validation messages,
and the stocktrends package on the bundled SPY series.

Mapping onto stocktrends 0.1.6 (`stocktrends.Renko`, `chart_type = PERIOD_CLOSE`, read from its
source): it seeds a synthetic up brick L - box -> L, with L = floor(c0 / box) * box, dated bar
0; then, per bar, `n = int((close - last_close) / box)`: in an up trend n >= 1 adds n up bricks
from the last close and n <= -2 adds |n| - 1 down bricks from the last close - box (the last
open); mirrored in a down trend. That is our classic 2-box, floor-anchor rule, dated by the bar
that completed the bricks, except at the start: we make the first brick on a move of one box
from L either way, so a first move down gives us an extra brick L -> L - box (stocktrends needs
L - 2 box, then draws L - box -> L - 2 box, which we draw too). After that first brick both
are in the same state. So: ours == stocktrends[1:] (seed dropped) when our first brick is up,
and ours[1:] == stocktrends[1:] when it is down. Boxes here are powers of two or integers, so
its `int()` truncation of a float division cannot misround a level.
"""

from __future__ import annotations

import inspect
import math
import re
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from ivybt.bars import RenkoSettings, brick_bars, renko_bricks, renko_columns
from ivybt.data.sample import load_sample
from ivybt.errors import ConfigError, ValidationError
from ivybt.kernels import renko as renko_kernels
from ivybt.kernels.renko import renko_bricks_nb, renko_volume_nb
from ivybt.kernels.wilder import atr_1d_nb
from tests import reference_renko


def bricks(close, box=1.0, reversal=2, anchor=0, source=0, first_bar=0, high=None, low=None):
    """(open, close, bar) of every brick, through the kernel's count-then-fill contract."""
    close = np.asarray(close, dtype=np.float64)
    high = close if high is None else np.asarray(high, dtype=np.float64)
    low = close if low is None else np.asarray(low, dtype=np.float64)
    boxes = np.broadcast_to(np.asarray(box, np.float64), close.shape).copy()
    settings = np.array([reversal, anchor, source, first_bar], dtype=np.int64)
    empty_f, empty_i = np.empty(0), np.empty(0, np.int64)
    needed = -renko_bricks_nb(high, low, close, boxes, settings, empty_f, empty_f, empty_i)
    opens, closes, bars = np.empty(needed), np.empty(needed), np.empty(needed, np.int64)
    assert renko_bricks_nb(high, low, close, boxes, settings, opens, closes, bars) == needed
    got = [(float(o), float(c), int(b)) for o, c, b in zip(opens, closes, bars, strict=True)]
    expected = reference_renko.renko_bricks(high, low, close, boxes, tuple(settings))
    assert got == expected
    return got


# -- hand-built series --------------------------------------------------------------------------


def test_the_picture_in_docs_renko_md():
    got = bricks([100.5, 101.0, 100.5, 103.5, 102.5, 101.0])
    assert got == [(100, 101, 1), (101, 102, 3), (102, 103, 3), (102, 101, 5)]


def test_one_bar_completes_three_bricks_on_a_gap():
    assert bricks([100.2, 100.5, 103.7]) == [(100, 101, 2), (101, 102, 2), (102, 103, 2)]


def test_a_one_box_pull_back_never_reverses():
    closes = [100.2, 102.1, 101.0, 100.5, 101.9, 103.0]
    assert bricks(closes) == [(100, 101, 1), (101, 102, 1), (102, 103, 5)]


def test_a_reversal_needs_two_boxes_and_starts_at_the_last_open():
    # last brick 102 -> 103: 101.0 is two boxes below its close, one below its open (102)
    assert bricks([100.2, 103.0, 101.5, 101.0])[3:] == [(102, 101, 3)]


def test_a_reversal_of_several_boxes_in_one_bar():
    got = bricks([100.0, 105.0, 100.0])
    assert got[5:] == [(104, 103, 2), (103, 102, 2), (102, 101, 2), (101, 100, 2)]


def test_a_close_exactly_on_a_level_counts_within_the_tolerance():
    assert bricks([100.0, 101.0]) == [(100.0, 101.0, 1)]
    assert bricks([100.0, 101.0 - 0.5e-9]) == [(100.0, 101.0, 1)]  # inside 1e-9 x box
    assert bricks([100.0, 101.0 - 2e-9]) == []  # a hair beyond the tolerance
    assert bricks([100.0, 99.0 + 0.5e-9]) == [(100.0, 99.0, 1)]
    assert bricks([100.0, 99.0 + 2e-9]) == []
    # the tolerance scales with the box: 1e-6 for a box of 1000
    assert bricks([1000.0, 2000.0 - 0.5e-6], box=1000.0) == [(1000.0, 2000.0, 1)]
    assert bricks([1000.0, 2000.0 - 2e-6], box=1000.0) == []


def test_the_floor_anchor_applies_the_touch_tolerance():
    """0.3 / 0.1 = 2.9999999999999996: floor() alone anchored 0.3 at 0.2, so a close 0.6 box
    above made a brick and a full box below made none (issue #13, point 16)."""
    assert rounded(bricks([0.3, 0.36, 0.405], box=0.1)) == [(0.3, 0.4, 2)]
    assert rounded(bricks([0.3, 0.25, 0.2], box=0.1)) == [(0.3, 0.2, 2)]
    index = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC", name="date")
    frame = pd.DataFrame({"open": 0.3, "high": 0.31, "low": 0.19, "close": [0.3, 0.25, 0.2],
                          "volume": 1.0}, index=index)  # fmt: skip
    got = renko_bricks(frame, RenkoSettings(box=0.1))
    assert got["bar"].tolist() == [2] and got["direction"].tolist() == [-1]
    # a close a hair under a level (inside the tolerance) anchors on it; beyond it, below it
    assert rounded(bricks([0.7 - 0.5e-10, 0.8], box=0.1)) == [(0.7, 0.8, 1)]
    assert rounded(bricks([0.7 - 2e-10, 0.8], box=0.1)) == [(0.6, 0.7, 1), (0.7, 0.8, 1)]


def rounded(got):
    return [(round(o, 12), round(c, 12), bar) for o, c, bar in got]


NON_BINARY_BOXES = ("0.1", "0.2", "0.3", "0.7", "1.1")


def assert_matches_exact(closes, box, reversal=2, anchor=0):
    """The kernel (and its float twin) on decimal closes == the exact rational reference:
    same bricks, bars and directions, levels within the touch tolerance of the exact ones."""
    exact = reference_renko.renko_bricks_exact(closes, box, reversal, anchor)
    got = bricks([float(c) for c in closes], float(box), reversal, anchor)
    assert [bar for _, _, bar in got] == [bar for _, _, bar in exact], (closes, box)
    for (o, c, _), (exact_open, exact_close, _) in zip(got, exact, strict=True):
        assert abs(o - exact_open) <= 1e-9 * box and abs(c - exact_close) <= 1e-9 * box
        assert (c > o) == (exact_close > exact_open)


@pytest.mark.parametrize("box", NON_BINARY_BOXES)
def test_the_floor_anchor_of_decimal_closes_matches_exact_arithmetic(box):
    """First closes 0.01 .. 15.00 with non-binary boxes: the anchor is the exact decimal floor,
    so a close one box above or below it (on the level) makes exactly one brick, and a close
    0.6 box above the first close makes one only when it reaches the next level."""
    step = Fraction(box)
    for hundredths in range(1, 1501):
        first = Fraction(hundredths, 100)
        level = math.floor(first / step) * step
        for second in (
            level + step,
            level - step,
            first + step * Fraction(6, 10),
            first - step * Fraction(6, 10),
            level + 2 * step,
            level + step / 2,
        ):
            assert_matches_exact([first, second], step)


def test_chop_makes_no_brick():
    assert bricks([100.0, 100.9, 99.1, 100.9, 99.1, 100.5]) == []
    # after an up brick 100 -> 101, swings between 99.1 and 101.9 make nothing either
    assert bricks([100.0, 101.0, 99.1, 101.9, 99.1, 101.9]) == [(100, 101, 1)]


def test_the_first_brick_is_one_box_from_the_anchor_either_way():
    assert bricks([100.5, 99.0]) == [(100.0, 99.0, 1)]  # stocktrends would wait for 98
    assert bricks([100.5, 101.0]) == [(100.0, 101.0, 1)]


def test_anchor_first_vs_floor():
    assert bricks([100.5, 101.4], anchor=0) == [(100.0, 101.0, 1)]
    assert bricks([100.5, 101.4], anchor=1) == []
    assert bricks([100.5, 101.5, 99.5], anchor=1) == [(100.5, 101.5, 1), (100.5, 99.5, 2)]


def test_reversal_one_and_three():
    # reversal 1: a one-box move against the trend reverses, from the last close
    assert bricks([100.0, 102.0, 101.0], reversal=1)[2:] == [(102.0, 101.0, 2)]
    # reversal 3: three boxes from the last close; both bricks from the last open come at once
    assert bricks([100.0, 102.0, 100.0], reversal=3)[2:] == []
    assert bricks([100.0, 102.0, 99.0], reversal=3)[2:] == [(101, 100, 2), (100, 99, 2)]


def test_bars_before_first_bar_and_nan_bars_are_ignored():
    assert bricks([100.0, 110.0, 100.2, 101.0], first_bar=2) == [(100.0, 101.0, 3)]
    nan = float("nan")
    assert bricks([nan, 100.2, nan, 101.0]) == [(100.0, 101.0, 3)]


def test_source_hl_visits_the_extreme_farther_from_the_close_first():
    high = [110.0, 102.3, 103.5]
    low = [90.0, 97.6, 98.2]
    close = [100.0, 101.0, 99.0]
    got = bricks(close, source=1, high=high, low=low)
    # bar 0 only anchors (its high and low are ignored). Bar 1 closes in the upper half: low
    # first (two down bricks), then high (reversal from the last open 99, then continuation).
    # Bar 2 closes in the lower half: high first (103.5: one more up brick), then low (98.2:
    # reversal from 102 down to 99).
    assert got == [
        (100, 99, 1), (99, 98, 1), (99, 100, 1), (100, 101, 1), (101, 102, 1),
        (102, 103, 2), (102, 101, 2), (101, 100, 2), (100, 99, 2),
    ]  # fmt: skip


def test_dynamic_boxes_use_the_box_of_the_completing_bar():
    nan = float("nan")
    got = bricks([99.0, 100.0, 101.0, 103.0, 105.5, 101.0], box=[nan, 1, 1, 2, 2.5, 1.5])
    # bar 0 has no box (ATR warm-up): bar 1 anchors; a reversal counts current boxes from the
    # last open (103 - 1.5 = 101.5 > 101.0, so one brick of 1.5)
    assert got == [(100, 101, 2), (101, 103, 3), (103, 105.5, 4), (103, 101.5, 5)]


def test_count_then_fill_contract_and_inputs_unchanged():
    close = np.array([100.2, 100.5, 103.7, 99.0])
    boxes = np.ones(4)
    settings = np.array([2, 0, 0, 0], dtype=np.int64)
    copies = close.copy(), boxes.copy(), settings.copy()
    small = np.full(2, -7.0), np.full(2, -7.0), np.full(2, -7, np.int64)
    assert renko_bricks_nb(close, close, close, boxes, settings, *small) == -6
    assert list(small[1]) == [101.0, 102.0] and list(small[2]) == [2, 2]
    for before, after in zip(copies, (close, boxes, settings), strict=True):
        np.testing.assert_array_equal(before, after)


def test_the_kernel_tolerance_is_the_documented_one():
    source = inspect.getsource(renko_kernels._next_brick_nb.py_func)
    assert renko_kernels.TOUCH_TOLERANCE == 1e-9 and "tol = 1e-9 * box" in source


# -- volumes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0, [3.0, 0.0, 0.0, 12.0, 13.0]), (1, [1.0, 1.0, 1.0, 12.0, 13.0]), (2, [0.0] * 5)],
)
def test_volume_modes_by_hand(mode, expected):
    volume = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0])
    bars = np.array([1, 1, 1, 4, 6, 99], dtype=np.int64)  # the 6th is past n_bricks: unused
    out = np.full(6, -1.0)
    renko_volume_nb(volume, bars, 5, mode, out)
    # windows: bars 0..1 (3.0) for the three bricks of bar 1, 2..4 (12.0), 5..6 (13.0)
    assert list(out) == [*expected, -1.0]
    assert list(out[:5]) == list(reference_renko.renko_volume(volume, bars[:5], mode))


# -- the pandas wrapper -------------------------------------------------------------------------


def _frame(close, volume=None):
    close = np.asarray(close, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=close.size, freq="D", name="date")
    volume = np.arange(1.0, close.size + 1) if volume is None else volume
    return pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": volume},
        index=index,
    )


def test_wrapper_labels_bricks_with_the_completing_bar():
    frame = _frame([100.2, 100.5, 103.7, 101.0, 99.0])
    got = renko_bricks(frame, RenkoSettings(box=1.0, volume="split"))
    assert list(got.columns) == ["open", "high", "low", "close", "volume", "direction", "bar"]
    assert got.index.name == "date" and got.index.is_monotonic_increasing
    assert list(got.index) == list(frame.index[[2, 2, 2, 3, 4, 4]])
    assert got["direction"].dtype == np.int8
    assert list(got["direction"]) == [1, 1, 1, -1, -1, -1]
    assert list(got["open"]) == [100, 101, 102, 102, 101, 100]
    assert list(got["high"]) == [101, 102, 103, 102, 101, 100]
    assert list(got["low"]) == [100, 101, 102, 101, 100, 99]
    assert list(got["volume"]) == [2.0, 2.0, 2.0, 4.0, 2.5, 2.5]  # (1 + 2 + 3) / 3, 4, 5 / 2
    columns = renko_columns(got)
    assert list(columns) == ["open", "high", "low", "close", "volume"]
    assert all(a.dtype == np.float64 and a.flags.c_contiguous for a in columns.values())
    assert brick_bars(got).dtype == np.int64 and list(brick_bars(got)) == [2, 2, 2, 3, 4, 4]


def test_wrapper_volume_none_needs_no_volume_column():
    frame = _frame([100.0, 102.0]).drop(columns="volume")
    got = renko_bricks(frame, RenkoSettings(box=1.0, volume="none"))
    assert list(got["volume"]) == [0.0, 0.0]


@pytest.fixture(scope="module")
def spy():
    return load_sample("SPY", "1d")[0]


@pytest.mark.parametrize(("start", "atr_bar"), [(0, 14), (14, 14), (15, 14), (300, 299)])
def test_atr_box_is_the_atr_known_at_start(spy, start, atr_bar):
    settings = RenkoSettings(atr=14, atr_mult=1.5)
    atr = atr_1d_nb(*(spy[c].to_numpy() for c in ("high", "low", "close")), 14)
    box = atr[atr_bar] * 1.5
    got = renko_bricks(spy, settings, start=start)
    expected = renko_bricks(spy, RenkoSettings(box=box))
    pd.testing.assert_frame_equal(got, expected)
    assert got["bar"].iloc[0] < 50  # bricks are built from bar 0, whatever the start


def test_dynamic_atr_box_is_the_atr_at_each_completing_bar(spy):
    got = renko_bricks(spy, RenkoSettings(atr=14, atr_mult=2.0, atr_dynamic=True), start=900)
    atr = atr_1d_nb(*(spy[c].to_numpy() for c in ("high", "low", "close")), 14)
    np.testing.assert_allclose(
        (got["close"] - got["open"]).abs(), 2.0 * atr[got["bar"]], rtol=1e-12
    )
    assert got["bar"].iloc[0] > 14  # bar 14 (the first ATR) only anchors


# -- stocktrends --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # its pandas use
@pytest.mark.parametrize("box", [0.5, 1.0, 2.0, 5.0, 10.0])
def test_matches_stocktrends_classic_two_box_floor_anchor(spy, box):
    stocktrends = pytest.importorskip("stocktrends")
    chart = stocktrends.Renko(spy.reset_index())
    chart.brick_size = box
    theirs = chart.get_ohlc_data().iloc[1:]  # drop the synthetic seed brick
    ours = renko_bricks(spy, RenkoSettings(box=box))
    if ours["direction"].iloc[0] < 0:
        ours = ours.iloc[1:]  # our first brick L -> L - box, which stocktrends never draws
    assert len(ours) == len(theirs) > 50
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(ours[name].to_numpy(), theirs[name].to_numpy(float))
    assert list(ours["direction"] > 0) == list(theirs["uptrend"])
    assert list(ours.index) == list(pd.to_datetime(theirs["date"]))  # the completing bar


def test_stocktrends_mapping_covers_both_first_directions(spy):
    first = [renko_bricks(spy, RenkoSettings(box=b))["direction"].iloc[0] for b in (0.5, 1.0)]
    assert first == [-1, 1]


# -- validation ---------------------------------------------------------------------------------

ERRORS = [
    ({"box": 0.0}, "Renko box > 0 must hold, but got box=0.0; set a positive price step, "
     "e.g. --renko-box 1.0"),
    ({"box": -1.0}, "Renko box > 0 must hold, but got box=-1.0; set a positive price step, "
     "e.g. --renko-box 1.0"),
    ({"atr": 0}, "Renko ATR period >= 1 must hold, but got atr=0; set --renko-atr to a number "
     "of bars, e.g. 14"),
    ({"atr": 14, "atr_mult": 0.0}, "Renko ATR multiple > 0 must hold, but got atr_mult=0.0; "
     "set --renko-atr-mult to a positive number, e.g. 1.0"),
    ({"box": 1.0, "reversal": 0}, "Renko reversal >= 1 must hold, but got reversal=0; "
     "use --renko-reversal 2 (classic) or 1"),
    ({"box": 1.0, "atr": 14}, "Renko needs exactly one of box and atr, but got box=1.0 and "
     "atr=14; pass either --renko-box or --renko-atr"),
    ({}, "Renko needs exactly one of box and atr, but got neither; pass --renko-box (e.g. 1.0) "
     "or --renko-atr (e.g. 14)"),
    ({"box": 1.0, "atr_dynamic": True}, "--renko-atr-dynamic applies to an ATR box only, but "
     "got box=1.0; drop --renko-atr-dynamic or use --renko-atr instead of --renko-box"),
    ({"box": 1.0, "atr_mult": 2.0}, "--renko-atr-mult applies to an ATR box only, but got "
     "box=1.0 and atr_mult=2.0; drop --renko-atr-mult or use --renko-atr"),
    ({"box": 1.0, "anchor": "flor"}, "Renko anchor must be one of 'floor', 'first', but got "
     "'flor'; did you mean --renko-anchor floor?"),
    ({"box": 1.0, "source": "ohlc4"}, "Renko source must be one of 'close', 'hl', but got "
     "'ohlc4'; pass one of them to --renko-source"),
    ({"box": 1.0, "volume": "split_even"}, "Renko volume must be one of 'sum', 'split', "
     "'none', but got 'split_even'; did you mean --renko-volume split?"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "message"), ERRORS)
def test_invalid_settings_say_rule_value_and_fix(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        RenkoSettings(**kwargs)


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="Renko box must be a number, got str '1'"):
        RenkoSettings(box="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Renko atr must be an integer, got float 14\.0"):
        RenkoSettings(atr=14.0)  # type: ignore[arg-type]


def _whole(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_data_errors_name_the_series_and_the_fix(spy):
    spy = spy.copy()
    spy.attrs["ivybt"] = {"symbol": "SPY"}
    with pytest.raises(ConfigError, match=_whole(
        "a box of 500 makes no brick on SPY's 5,241 bars (range 68.11..350.58); "
        "use a smaller --renko-box"
    )):  # fmt: skip
        renko_bricks(spy, RenkoSettings(box=500.0))
    with pytest.raises(ConfigError, match=_whole(
        "an ATR(14) box needs at least 15 bars (14 true ranges), but SPY has 10; "
        "load more bars or use a smaller --renko-atr"
    )):  # fmt: skip
        renko_bricks(spy.iloc[:10], RenkoSettings(atr=14))
    with pytest.raises(ConfigError, match=_whole(
        "start must be a bar position in 0..5240, but got start=5241; "
        "pass the first bar of the evaluated window"
    )):  # fmt: skip
        renko_bricks(spy, RenkoSettings(box=1.0), start=5241)
    with pytest.raises(ConfigError, match=(
        r"^a box of [\d,.]+ \(ATR\(14\) x 1,000\) makes no brick on SPY's 5,241 bars "
        r"\(range 68\.11\.\.350\.58\); use a smaller --renko-atr-mult$"
    )):  # fmt: skip
        renko_bricks(spy, RenkoSettings(atr=14, atr_mult=1000.0))
    with pytest.raises(ConfigError, match=_whole(
        "Renko bricks <= 10,000,000 must hold, but a box of 0.0001 makes 64,969,174 bricks on "
        "SPY's 5,241 bars; use a larger box"
    )):  # fmt: skip
        renko_bricks(spy, RenkoSettings(box=1e-4))


def test_frame_errors():
    with pytest.raises(ValidationError, match=_whole(
        "Renko bricks need columns high, low, close, volume, but the frame lacks volume; "
        "pass an OHLCV frame such as ivybt.load(...)"
    )):  # fmt: skip
        renko_bricks(_frame([1.0, 2.0]).drop(columns="volume"), RenkoSettings(box=1.0))
    with pytest.raises(ConfigError, match=_whole(
        "a box of 5 makes no brick on 3 bars (range 1..3); use a smaller --renko-box"
    )):  # fmt: skip
        renko_bricks(_frame([1.0, 2.0, 3.0]), RenkoSettings(box=5.0))
