"""`validate_ohlcv`: every rule broken on real bundled bars (AAPL 1d with adj_close, EURUSD 1h).

Each bad frame is a real sample slice with one or two values changed; each test checks the
error type and the whole message: the rule, the first offending timestamp, and the fix.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

import ivybt
from ivybt.data.intervals import parse_interval
from ivybt.data.validate import MAX_JUMP, OHLC_REPAIR_RTOL, Validated, validate_ohlcv
from ivybt.errors import ConfigError, DataError, ValidationError
from tests.conftest import day, utc

DAILY = parse_interval("1d")
HOURLY = parse_interval("1h")
NAME = "AAPL 1d"
CLIP_NOTE = "clipped high/low on 1 bar(s) with rounding-level violations (<= 0.0001 relative)"


@pytest.fixture(scope="module")
def _aapl() -> pd.DataFrame:
    frame = ivybt.load("AAPL", "1d", "2017-11-01", "2018-01-01", source="sample", adjusted=False)
    frame.attrs = {}
    return frame


@pytest.fixture(scope="module")
def _eurusd() -> pd.DataFrame:
    frame = ivybt.load("EURUSD", "1h", "2018-01-03", "2018-01-05", source="sample")
    frame.attrs = {}
    return frame


@pytest.fixture
def aapl(_aapl: pd.DataFrame) -> pd.DataFrame:
    """Real AAPL daily bars of Nov-Dec 2017 (41 sessions, with adj_close); a fresh copy."""
    return _aapl.copy()


@pytest.fixture
def eurusd(_eurusd: pd.DataFrame) -> pd.DataFrame:
    """Real EURUSD hourly bars of 2018-01-03 and -04 (48 bars, UTC); a fresh copy."""
    return _eurusd.copy()


def check(frame: pd.DataFrame, *, repair: bool = False, interval=DAILY) -> Validated:
    """Validate a copy-protected frame: the input must come back untouched whatever happens."""
    before = frame.copy(deep=True)
    try:
        return validate_ohlcv(frame, name=NAME, interval=interval, repair=repair)
    finally:
        pdt.assert_frame_equal(frame, before)
        assert frame.index.name == before.index.name
        assert frame.index.dtype == before.index.dtype


def fails(frame: pd.DataFrame, *, repair: bool = False, interval=DAILY) -> str:
    with pytest.raises(ValidationError) as info:
        check(frame, repair=repair, interval=interval)
    assert isinstance(info.value, DataError)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def top(frame: pd.DataFrame, stamp: pd.Timestamp) -> float:
    return float(max(frame.at[stamp, "open"], frame.at[stamp, "close"]))


def bottom(frame: pd.DataFrame, stamp: pd.Timestamp) -> float:
    return float(min(frame.at[stamp, "open"], frame.at[stamp, "close"]))


# -- valid input ---------------------------------------------------------------------------


def test_valid_daily_frame_passes_unchanged(aapl: pd.DataFrame) -> None:
    checked = check(aapl)
    assert isinstance(checked, Validated)
    pdt.assert_frame_equal(checked.frame, aapl)
    assert checked.repairs == ()
    assert str(checked.frame.index.dtype) == "datetime64[ns]"
    assert checked.frame.index.name == "date"
    assert list(checked.frame.columns) == ["open", "high", "low", "close", "volume", "adj_close"]


def test_valid_intraday_frame_passes_unchanged(eurusd: pd.DataFrame) -> None:
    checked = check(eurusd, interval=HOURLY)
    pdt.assert_frame_equal(checked.frame, eurusd)
    assert checked.repairs == ()
    assert str(checked.frame.index.dtype) == "datetime64[ns, UTC]"
    assert checked.frame.index.name == "date"


def test_valid_frame_passes_with_repair_too(aapl: pd.DataFrame) -> None:
    checked = check(aapl, repair=True)
    pdt.assert_frame_equal(checked.frame, aapl)
    assert checked.repairs == ()


def test_index_comes_back_as_nanoseconds_named_date(aapl: pd.DataFrame) -> None:
    coarse = aapl.set_axis(aapl.index.as_unit("s").rename("Date"), axis=0)
    checked = check(coarse)
    assert str(checked.frame.index.dtype) == "datetime64[ns]"
    assert checked.frame.index.name == "date"
    pdt.assert_frame_equal(checked.frame, aapl)
    # the caller's frame keeps its own index
    assert str(coarse.index.dtype) == "datetime64[s]"
    assert coarse.index.name == "Date"


def test_intraday_index_in_microseconds_comes_back_in_ns(eurusd: pd.DataFrame) -> None:
    coarse = eurusd.set_axis(eurusd.index.as_unit("us").rename(None), axis=0)
    checked = check(coarse, interval=HOURLY)
    pdt.assert_frame_equal(checked.frame, eurusd)


def test_columns_come_back_in_canonical_order(aapl: pd.DataFrame) -> None:
    shuffled = aapl[["volume", "adj_close", "close", "low", "high", "open"]]
    pdt.assert_frame_equal(check(shuffled).frame, aapl)


def test_without_interval_the_index_kind_is_not_checked(aapl: pd.DataFrame) -> None:
    aware = aapl.tz_localize("America/New_York")
    checked = validate_ohlcv(aware, name=NAME)
    pdt.assert_frame_equal(checked.frame, aware.rename_axis("date"))


def test_not_a_dataframe_is_a_type_error(aapl: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match=r"^AAPL 1d: expected a pandas DataFrame, got Series$"):
        validate_ohlcv(aapl["close"], name=NAME)


# -- rule 1: columns -------------------------------------------------------------------------


def test_missing_column(aapl: pd.DataFrame) -> None:
    message = fails(aapl.drop(columns=["volume"]))
    assert message == (
        "AAPL 1d: columns open, high, low, close, volume are required, missing volume "
        "(columns seen: open, high, low, close, adj_close); import vendor files with "
        "`ivybt data import`, which maps common column names"
    )


def test_vendor_column_names_are_missing_columns(aapl: pd.DataFrame) -> None:
    vendor = aapl.rename(columns={"open": "Open", "close": "Close"})
    message = fails(vendor)
    seen = "missing open, close (columns seen: Open, high, low, Close, volume, adj_close)"
    assert seen in message
    assert message.endswith(
        "import vendor files with `ivybt data import`, which maps common column names"
    )


def test_extra_column(aapl: pd.DataFrame) -> None:
    aapl["dividends"] = 0.0
    assert fails(aapl) == (
        "AAPL 1d: only columns open, high, low, close, volume, adj_close are allowed, got "
        "also dividends; drop or rename them"
    )


def test_repeated_column_name(aapl: pd.DataFrame) -> None:
    doubled = pd.concat([aapl, aapl[["close"]]], axis=1)
    assert fails(doubled) == (
        "AAPL 1d: column names must be unique, got close more than once; drop or rename the copies"
    )


def test_non_float64_column(aapl: pd.DataFrame) -> None:
    aapl["volume"] = aapl["volume"].astype("int64")
    assert fails(aapl) == (
        "AAPL 1d: every column must be float64, got volume (int64); convert with "
        "frame.astype('float64') or import the file with `ivybt data import`"
    )


def test_float32_and_text_columns_are_named(aapl: pd.DataFrame) -> None:
    aapl["close"] = aapl["close"].astype("float32")
    aapl["open"] = aapl["open"].map("{:.2f}".format).astype(object)
    message = fails(aapl)
    assert "every column must be float64, got open (object), close (float32);" in message


# -- rule 2: the index -----------------------------------------------------------------------


def test_index_not_a_datetimeindex(aapl: pd.DataFrame) -> None:
    assert fails(aapl.reset_index(drop=True)) == (
        "AAPL 1d: the index must be a DatetimeIndex, got RangeIndex; set the date column as "
        "the index, e.g. frame.set_index('date')"
    )


def test_index_of_date_strings_is_not_a_datetimeindex(aapl: pd.DataFrame) -> None:
    text = aapl.set_axis(aapl.index.strftime("%Y-%m-%d"), axis=0)
    assert "the index must be a DatetimeIndex, got Index;" in fails(text)


def test_missing_timestamp(aapl: pd.DataFrame) -> None:
    index = aapl.index.to_series()
    index.iloc[4] = pd.NaT
    message = fails(aapl.set_axis(pd.DatetimeIndex(index), axis=0))
    assert message == (
        "AAPL 1d: rule `no missing timestamps` fails at row(s) 4; drop those rows from the source"
    )


def test_intraday_index_in_another_zone(eurusd: pd.DataFrame) -> None:
    london = eurusd.tz_convert("Europe/London")
    assert fails(london, interval=HOURLY) == (
        "AAPL 1d: 1h bars must be stamped in UTC, got tz=Europe/London; convert with "
        "index.tz_convert('UTC') (or tz_localize for naive times)"
    )


def test_intraday_index_naive(eurusd: pd.DataFrame) -> None:
    naive = eurusd.tz_localize(None)
    assert "1h bars must be stamped in UTC, got tz=None;" in fails(naive, interval=HOURLY)


def test_daily_index_tz_aware(aapl: pd.DataFrame) -> None:
    aware = aapl.tz_localize("America/New_York")
    assert fails(aware) == (
        "AAPL 1d: 1d bars carry tz-naive session dates, got tz=America/New_York; use "
        "index.tz_localize(None)"
    )


def test_daily_index_with_times_of_day(aapl: pd.DataFrame) -> None:
    index = aapl.index.to_series()
    index.iloc[[3, 4]] += pd.Timedelta(hours=16)
    message = fails(aapl.set_axis(pd.DatetimeIndex(index), axis=0))
    assert message == (
        "AAPL 1d: rule `1d timestamps are dates at midnight` fails on 2 bars, first at "
        "2017-11-06T16:00:00, 2017-11-07T16:00:00; use a daily-type interval only for "
        "session dates, or an intraday one"
    )


# -- rule 3: order ---------------------------------------------------------------------------


def swapped(frame: pd.DataFrame, i: int) -> pd.DataFrame:
    order = list(range(len(frame)))
    order[i], order[i + 1] = order[i + 1], order[i]
    return frame.iloc[order]


def test_unsorted_is_an_error_without_repair(aapl: pd.DataFrame) -> None:
    message = fails(swapped(aapl, 10))
    assert message == (
        "AAPL 1d: rule `timestamps sorted ascending` fails on 1 bar, first at 2017-11-15; "
        "fix the source, or pass --repair (repair=True) to sort the bars"
    )


def test_unsorted_is_sorted_with_repair(aapl: pd.DataFrame) -> None:
    checked = check(swapped(aapl, 10), repair=True)
    pdt.assert_frame_equal(checked.frame, aapl)
    assert checked.repairs == ("sorted 1 out-of-order bar(s) (first at 2017-11-15)",)


def test_reversed_intraday_is_sorted_with_repair(eurusd: pd.DataFrame) -> None:
    backwards = eurusd.iloc[::-1]
    message = fails(backwards, interval=HOURLY)
    assert "rule `timestamps sorted ascending` fails on 47 bars, first at " in message
    first = "2018-01-04T22:00:00+00:00, 2018-01-04T21:00:00+00:00, 2018-01-04T20:00:00+00:00 "
    assert first in message
    assert (
        "(and 44 more); fix the source, or pass --repair (repair=True) to sort the bars" in message
    )
    checked = check(backwards, repair=True, interval=HOURLY)
    pdt.assert_frame_equal(checked.frame, eurusd)
    assert checked.repairs == (
        "sorted 47 out-of-order bar(s) (first at 2018-01-04T22:00:00+00:00)",
    )


# -- rule 4: unique timestamps ---------------------------------------------------------------


def with_copy_of(frame: pd.DataFrame, i: int, **changes: float) -> pd.DataFrame:
    """`frame` with row i repeated right after itself (changed by `changes`)."""
    extra = frame.iloc[[i]].copy()
    for column, value in changes.items():
        extra[column] = value
    return pd.concat([frame.iloc[: i + 1], extra, frame.iloc[i + 1 :]])


def test_exact_duplicate_is_an_error_without_repair(aapl: pd.DataFrame) -> None:
    assert fails(with_copy_of(aapl, 20)) == (
        "AAPL 1d: rule `unique timestamps` fails on 1 bar, first at 2017-11-30; fix the "
        "source, or pass --repair (repair=True) to drop exact duplicate rows"
    )


def test_exact_duplicates_are_dropped_with_repair(aapl: pd.DataFrame) -> None:
    doubled = with_copy_of(with_copy_of(aapl, 20), 5)
    checked = check(doubled, repair=True)
    pdt.assert_frame_equal(checked.frame, aapl)
    assert checked.repairs == ("dropped 2 exact duplicate row(s)",)


def test_unsorted_duplicates_are_sorted_then_dropped(aapl: pd.DataFrame) -> None:
    messy = pd.concat([aapl, aapl.iloc[[3, 7]]])
    checked = check(messy, repair=True)
    pdt.assert_frame_equal(checked.frame, aapl)
    assert checked.repairs == (
        "sorted 1 out-of-order bar(s) (first at 2017-11-06)",
        "dropped 2 exact duplicate row(s)",
    )


def test_conflicting_duplicate_is_an_error_even_with_repair(aapl: pd.DataFrame) -> None:
    stamp = aapl.index[20]
    conflicting = with_copy_of(aapl, 20, volume=aapl.at[stamp, "volume"] + 100)
    for repair in (False, True):
        assert fails(conflicting, repair=repair) == (
            "AAPL 1d: rule `unique timestamps` fails on 1 bar, first at 2017-11-30; the bars "
            "differ, so keep the right one per timestamp in the source"
        )


def test_conflict_is_found_beside_an_exact_duplicate(aapl: pd.DataFrame) -> None:
    stamp = aapl.index[20]
    frame = with_copy_of(with_copy_of(aapl, 20), 20, close=aapl.at[stamp, "open"])
    message = fails(frame, repair=True)
    rule = "rule `unique timestamps` fails on 1 bar, first at 2017-11-30; the bars differ"
    assert rule in message


# -- rule 5: no NaN --------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "adj_close"])
def test_nan_price(aapl: pd.DataFrame, column: str) -> None:
    aapl.loc[day("2017-11-15"), column] = np.nan
    assert fails(aapl, repair=True) == (
        f"AAPL 1d: rule `{column} is not NaN` fails on 1 bar, first at 2017-11-15; fill or "
        "drop those bars in the source"
    )


def test_nan_volume(aapl: pd.DataFrame) -> None:
    aapl.loc[day("2017-12-22") :, "volume"] = np.nan  # 5 bars
    assert fails(aapl) == (
        "AAPL 1d: rule `volume is not NaN` fails on 5 bars, first at 2017-12-22, 2017-12-26, "
        "2017-12-27 (and 2 more); fill or drop those bars in the source"
    )


@pytest.mark.parametrize("column", ["high", "volume"])
def test_infinite_value(aapl: pd.DataFrame, column: str) -> None:
    aapl.loc[day("2017-11-15"), column] = np.inf
    assert fails(aapl, repair=True) == (
        f"AAPL 1d: rule `{column} is finite` fails on 1 bar, first at 2017-11-15; fix or "
        "drop those bars in the source"
    )


# -- rule 6: positive prices, non-negative volume -------------------------------------------


@pytest.mark.parametrize(("column", "value"), [("close", 0.0), ("open", -1.0), ("adj_close", 0)])
def test_price_not_positive(aapl: pd.DataFrame, column: str, value: float) -> None:
    aapl.loc[day("2017-12-05"), column] = value
    assert fails(aapl, repair=True) == (
        f"AAPL 1d: rule `{column} > 0` fails on 1 bar, first at 2017-12-05; prices must be "
        "positive; fix the source"
    )


def test_zero_volume_is_fine(aapl: pd.DataFrame) -> None:
    aapl.loc[day("2017-12-05"), "volume"] = 0.0
    pdt.assert_frame_equal(check(aapl).frame, aapl)


def test_negative_volume(aapl: pd.DataFrame) -> None:
    aapl.loc[day("2017-12-05"), "volume"] *= -1
    assert fails(aapl, repair=True) == (
        "AAPL 1d: rule `volume >= 0` fails on 1 bar, first at 2017-12-05; volume cannot be "
        "negative; fix the source"
    )


# -- rule 7: high and low enclose open and close --------------------------------------------


def test_high_below_body_by_a_lot_is_an_error_even_with_repair(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-12")
    aapl.loc[stamp, "high"] = top(aapl, stamp) * 0.99
    expected = (
        "AAPL 1d: rule `high >= max(open, close)` fails on 1 bar, first at 2017-12-12; worst "
        "relative violation 1.00e-02; fix the source"
    )
    assert fails(aapl) == expected
    assert fails(aapl, repair=True) == expected


def test_low_above_body_by_a_lot(aapl: pd.DataFrame) -> None:
    stamp = day("2017-11-20")
    aapl.loc[stamp, "low"] = bottom(aapl, stamp) * 1.02
    expected = (
        "AAPL 1d: rule `low <= min(open, close)` fails on 1 bar, first at 2017-11-20; worst "
        "relative violation 2.00e-02; fix the source"
    )
    assert fails(aapl) == expected
    assert fails(aapl, repair=True) == expected


def test_rounding_level_high_needs_repair(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-12")
    aapl.loc[stamp, "high"] = top(aapl, stamp) * (1 - 5e-5)
    assert fails(aapl) == (
        "AAPL 1d: rule `high >= max(open, close)` fails on 1 bar, first at 2017-12-12; worst "
        "relative violation 5.00e-05; fix the source, or pass --repair (repair=True) to clip "
        "rounding-level violations (<= 0.0001 relative)"
    )


def test_rounding_level_high_is_clipped_with_repair(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-12")
    original = aapl.copy()
    aapl.loc[stamp, "high"] = top(aapl, stamp) * (1 - 5e-5)
    checked = check(aapl, repair=True)
    expected = original.copy()
    expected.loc[stamp, "high"] = top(original, stamp)
    pdt.assert_frame_equal(checked.frame, expected)
    assert checked.repairs == (CLIP_NOTE,)


def test_rounding_level_low_is_clipped_with_repair(aapl: pd.DataFrame) -> None:
    stamp = day("2017-11-20")
    original = aapl.copy()
    aapl.loc[stamp, "low"] = bottom(aapl, stamp) * (1 + OHLC_REPAIR_RTOL / 2)
    assert "rule `low <= min(open, close)` fails on 1 bar, first at 2017-11-20;" in fails(aapl)
    checked = check(aapl, repair=True)
    expected = original.copy()
    expected.loc[stamp, "low"] = bottom(original, stamp)
    pdt.assert_frame_equal(checked.frame, expected)
    assert checked.repairs == (CLIP_NOTE,)


def test_rounding_level_high_and_low_on_intraday_bars(eurusd: pd.DataFrame) -> None:
    a, b = utc("2018-01-03 09:00"), utc("2018-01-04 17:00")
    bad = eurusd.copy()
    bad.loc[a, "high"] = top(eurusd, a) * (1 - 2e-5)
    bad.loc[b, "low"] = bottom(eurusd, b) * (1 + 3e-5)
    message = fails(bad, interval=HOURLY)
    assert message.startswith(
        "AAPL 1d: rule `high >= max(open, close)` fails on 1 bar, first at "
        "2018-01-03T09:00:00+00:00;"
    )
    checked = check(bad, repair=True, interval=HOURLY)
    expected = eurusd.copy()
    expected.loc[a, "high"] = top(eurusd, a)
    expected.loc[b, "low"] = bottom(eurusd, b)
    pdt.assert_frame_equal(checked.frame, expected)
    assert checked.repairs == (
        "clipped high/low on 2 bar(s) with rounding-level violations (<= 0.0001 relative)",
    )


def test_one_large_violation_blocks_the_clipping_of_small_ones(aapl: pd.DataFrame) -> None:
    small, large = day("2017-11-20"), day("2017-12-12")
    aapl.loc[small, "high"] = top(aapl, small) * (1 - 5e-5)
    aapl.loc[large, "high"] = top(aapl, large) * (1 - 3 * OHLC_REPAIR_RTOL)
    assert fails(aapl, repair=True) == (
        "AAPL 1d: rule `high >= max(open, close)` fails on 2 bars, first at 2017-11-20, "
        "2017-12-12; worst relative violation 3.00e-04; fix the source"
    )


def test_small_high_and_large_low_is_an_error_with_repair(aapl: pd.DataFrame) -> None:
    a, b = day("2017-11-20"), day("2017-12-12")
    aapl.loc[a, "high"] = top(aapl, a) * (1 - 5e-5)
    aapl.loc[b, "low"] = bottom(aapl, b) * 1.01
    assert fails(aapl, repair=True) == (
        "AAPL 1d: rule `low <= min(open, close)` fails on 1 bar, first at 2017-12-12; worst "
        "relative violation 1.00e-02; fix the source"
    )


# -- rule 8: arithmetic on the bars stays finite ---------------------------------------------

ABSURD = (
    "a price or volume of absurd size (a bad tick or a unit error); fix or drop those bars in "
    "the source"
)


def test_a_bar_of_1e308_overflows_the_sums_of_squares(aapl: pd.DataFrame) -> None:
    """1e308 is finite, but its square, and a mean or variance over it, is not."""
    aapl.loc[day("2017-12-05"), ["high", "close", "adj_close"]] = 1e308
    volume = aapl.loc[day("2017-12-05"), "volume"]
    assert fails(aapl, repair=True) == (
        "AAPL 1d: rule `the running sum of high² is finite` fails on 1 bar, first at "
        f"2017-12-05; high 1e+308, volume {volume:.6g} there; {ABSURD}"
    )


def test_a_running_sum_that_overflows_names_the_bar_where_it_does(aapl: pd.DataFrame) -> None:
    """Each volume is finite and so is each bar's high x volume; their sum is not."""
    aapl["volume"] = 1e306
    stamps = aapl.index
    with np.errstate(over="ignore"):
        sums = np.cumsum(aapl["high"].to_numpy() * 1e306)
    first = stamps[int(np.argmax(~np.isfinite(sums)))]
    assert np.isfinite(aapl["high"].to_numpy() * 1e306).all() and first != stamps[0]
    high = aapl.loc[first, "high"]
    assert fails(aapl) == (
        "AAPL 1d: rule `the running sum of high x volume is finite` fails on 1 bar, first at "
        f"{first:%Y-%m-%d}; high {high:.6g}, volume 1e+306 there; {ABSURD}"
    )


def test_a_ratio_between_bars_that_overflows(aapl: pd.DataFrame) -> None:
    """A subnormal price: positive, but the previous close divided by it is infinite."""
    aapl.loc[day("2017-12-05"), ["open", "low", "close", "adj_close"]] = 1e-320
    assert fails(aapl, repair=True) == (
        "AAPL 1d: rule `bar-to-bar price ratios are finite` fails on 2 bars, first at "
        f"2017-12-05, 2017-12-06; {ABSURD}"
    )


@pytest.mark.parametrize(
    ("adj_close", "rule"),
    [
        (1e-323, "adj_close / close is finite and > 0"),  # 1e-323 / 170 underflows to 0
        (1e306, "the running sum of adjusted high² is finite"),  # adjusted high ~1e306
    ],
)
def test_adjusted_prices_that_overflow_or_vanish(
    aapl: pd.DataFrame, adj_close: float, rule: str
) -> None:
    aapl.loc[day("2017-12-05"), "adj_close"] = adj_close
    message = fails(aapl, repair=True)
    assert message.startswith(f"AAPL 1d: rule `{rule}` fails on 1 bar, first at 2017-12-05; ")
    assert message.endswith(ABSURD)


def test_overflow_is_refused_whatever_max_jump_allows(aapl: pd.DataFrame) -> None:
    aapl.loc[day("2017-12-05"), ["high", "close", "adj_close"]] = 1e308
    with pytest.raises(ValidationError, match=r"running sum of high² is finite"):
        validate_ohlcv(aapl, name=NAME, interval=DAILY, max_jump=math.inf)


# -- rule 9: price jumps ----------------------------------------------------------------------


def jump_message(
    frame: pd.DataFrame, stamp: pd.Timestamp, factor: str = "10", label: str = ""
) -> str:
    i = frame.index.get_loc(stamp)
    before, low, high = frame["close"].iloc[i - 1], frame["low"].iloc[i], frame["high"].iloc[i]
    if label:
        scale = frame["adj_close"] / frame["close"]
        before, low, high = before * scale.iloc[i - 1], low * scale.iloc[i], high * scale.iloc[i]
    before = min(before, low)
    ratio = high / before
    return (
        f"AAPL 1d: rule `{label}prices within {factor}x of the previous close` fails on 1 bar, "
        f"first at {stamp:%Y-%m-%d}; largest {ratio:.3g}x on {stamp:%Y-%m-%d} (from "
        f"{before:.6g} to {high:.6g}); a typo or bad tick: fix or drop those bars in the "
        "source; a real move (a crash, prices not adjusted for a split): pass --max-jump above "
        f"{ratio:.3g} (max_jump=); --repair never changes prices"
    )


def test_a_price_100x_off_is_a_jump(aapl: pd.DataFrame) -> None:
    """A decimal slip in one high: every price stays positive and enclosed."""
    stamp = day("2017-12-05")
    aapl.loc[stamp, "high"] *= 100
    assert fails(aapl, repair=True) == jump_message(aapl, stamp)


def test_a_jump_down_counts_as_well(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-05")
    aapl.loc[stamp, ["open", "low", "close", "adj_close"]] /= 20  # high stays: 20x range
    message = fails(aapl)
    assert message.startswith(
        "AAPL 1d: rule `prices within 10x of the previous close` fails on 2 bars, first at "
        "2017-12-05"
    )  # and the bar after, which opens 20x above this close


def test_an_adj_close_typo_is_a_jump_of_the_adjusted_prices(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-05")
    aapl.loc[stamp, "adj_close"] *= 50  # the stored OHLC are fine
    message = fails(aapl)
    assert message.startswith(
        "AAPL 1d: rule `adjusted prices within 10x of the previous close` fails on 2 bars, "
        "first at 2017-12-05, 2017-12-06; largest "
    )


def test_max_jump_lets_a_real_move_through(aapl: pd.DataFrame) -> None:
    """An unadjusted 1:30 reverse split: refused at 10x and 25x, accepted at 40x or inf."""
    aapl.loc[day("2017-12-05") :, ["open", "high", "low", "close", "adj_close"]] *= 30
    with pytest.raises(ValidationError, match=r"prices within 25x of the previous close"):
        validate_ohlcv(aapl, name=NAME, interval=DAILY, max_jump=25)
    for factor in (40.0, math.inf):
        checked = validate_ohlcv(aapl, name=NAME, interval=DAILY, max_jump=factor)
        pdt.assert_frame_equal(checked.frame, aapl)


def test_the_first_bar_is_checked_against_itself(eurusd: pd.DataFrame) -> None:
    eurusd.iloc[0, eurusd.columns.get_loc("high")] *= 11
    message = fails(eurusd, interval=HOURLY)
    assert message.startswith(
        "AAPL 1d: rule `prices within 10x of the previous close` fails on 1 bar, first at "
        "2018-01-03T00:00:00+00:00; largest 11"
    )


@pytest.mark.parametrize("bad", [1.0, 0.5, -3, math.nan, "ten"])
def test_max_jump_must_be_a_factor_above_one(aapl: pd.DataFrame, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"max_jump \(--max-jump\) must be a factor above 1"):
        validate_ohlcv(aapl, name=NAME, max_jump=bad)  # type: ignore[arg-type]


def test_every_bundled_series_is_far_below_the_default_factor() -> None:
    """Real data, raw and adjusted, BTCUSD's 2020 crash included, passes with room to spare."""
    for entry in ivybt.data.sample_catalog():
        frame = pd.read_parquet(entry.path)
        validate_ohlcv(
            frame, name=entry.symbol, interval=parse_interval(entry.interval), max_jump=2
        )
    assert MAX_JUMP == 10


# -- the caller's frame ----------------------------------------------------------------------


def test_repairs_never_touch_the_input(aapl: pd.DataFrame) -> None:
    stamp = day("2017-12-12")
    messy = with_copy_of(swapped(aapl, 3), 30)
    messy.loc[stamp, "high"] = top(aapl, stamp) * (1 - 5e-5)
    before = messy.copy(deep=True)
    checked = validate_ohlcv(messy, name=NAME, interval=DAILY, repair=True)
    pdt.assert_frame_equal(messy, before)
    assert len(checked.frame) == len(aapl)
    assert checked.frame.index.is_monotonic_increasing
    assert checked.frame.index.is_unique
    assert len(checked.repairs) == 3
    # and the returned frame is no view of the input
    checked.frame.iloc[0, 0] = 1.0
    pdt.assert_frame_equal(messy, before)


@pytest.mark.parametrize("zone", ["Etc/UTC", "Zulu"])
def test_intraday_index_in_another_spelling_of_utc_is_accepted(eurusd, zone: str) -> None:
    checked = check(eurusd.tz_convert(zone), interval=HOURLY)
    assert str(checked.frame.index.tz) == "UTC"
    pdt.assert_frame_equal(checked.frame, eurusd)


def test_a_dataframe_given_to_the_api_takes_max_jump() -> None:
    """Bars passed as `data=` are validated like every load (a 20x jump is refused); a real
    one passes with `max_jump=`, as `--max-jump` does for imports and fetches."""
    import ivybt

    frame = ivybt.load("SPY", "1d", source="sample", start="2015-01-01", end="2016-01-01")
    frame.iloc[100:, :4] *= 20.0  # a jump of 20x between two bars, then real moves
    with pytest.raises(ValidationError, match=r"within 10x of the previous close"):
        ivybt.backtest("sma_cross", data=frame, params={"fast": 5, "slow": 20})
    result = ivybt.backtest("sma_cross", data=frame, params={"fast": 5, "slow": 20}, max_jump=50)
    assert result.config.data.max_jump == 50
