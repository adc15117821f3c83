"""`ivybt.data.panel`: a universe's bars aligned on the union of their timestamps, on the bundled
real daily equities (offline) and on small frames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ivybt
from ivybt.data import load_series
from ivybt.data.panel import Panel, infer_interval, load_panel, panel_from_frames
from ivybt.data.store import data_sha256
from ivybt.data.timestamps import TIME_COLUMN
from ivybt.engine.tables import bar_columns
from ivybt.errors import ConfigError, DataError, DataRangeWarning, ValidationError
from tests.conftest import day

DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")
FIELDS = ("open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def demo() -> Panel:
    return load_panel(",".join(DEMO), source="sample")


def bars(dates: list[str] | pd.DatetimeIndex, closes: list[float] | None = None) -> pd.DataFrame:
    """A valid OHLCV frame on `dates` (session dates unless the index says otherwise)."""
    index = pd.DatetimeIndex(dates).as_unit("ns").rename("date")
    close = np.asarray(closes if closes is not None else 100.0 + np.arange(len(index)), float)
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(len(index), 1000.0),
        },
        index=index,
    )


# -- the demo universe on real data ---------------------------------------------------------


def test_demo_universe_is_aligned_on_the_union_of_timestamps(demo: Panel) -> None:
    singles = {s: ivybt.load(s, source="sample") for s in DEMO}
    union = singles["SPY"].index
    for frame in singles.values():
        union = union.union(frame.index)
    pdt.assert_index_equal(demo.index, union.rename("date"))
    assert demo.symbols == DEMO
    assert demo.interval == "1d"
    assert (demo.n_bars, demo.n_symbols) == (len(union), 5)
    for name in FIELDS:
        values = getattr(demo, name)
        assert values.dtype == np.float64
        assert values.flags.c_contiguous
        assert values.shape == (demo.n_bars, 5)
    assert demo.first.dtype == demo.last.dtype == np.int64


def test_listing_bounds_on_real_data(demo: Panel) -> None:
    goog, ibm = DEMO.index("GOOG"), DEMO.index("IBM")
    assert demo.index[demo.first[goog]] == day("2004-08-19")
    assert demo.index[demo.last[ibm]] == day("2013-03-01")
    assert demo.index[demo.first[DEMO.index("MSFT")]] == demo.index[0]  # MSFT starts the union
    listed, has_bar = demo.listed, demo.has_bar
    assert not (has_bar & ~listed).any(), "a bar outside the listing"
    assert has_bar[demo.first, np.arange(5)].all()
    assert has_bar[demo.last, np.arange(5)].all()
    rows = np.arange(demo.n_bars)[:, None]
    np.testing.assert_array_equal(listed, (rows >= demo.first) & (rows <= demo.last))
    assert not listed[demo.last[ibm] + 1 :, ibm].any()
    assert not listed[: demo.first[goog], goog].any()
    # where there is no bar the whole row of fields is NaN
    for name in FIELDS:
        assert np.isnan(getattr(demo, name)[~has_bar]).all()
        assert np.isfinite(getattr(demo, name)[has_bar]).all()


def test_mark_is_the_close_or_the_last_close_inside_the_listing(demo: Panel) -> None:
    mark, close, listed, has_bar = demo.mark, demo.close, demo.listed, demo.has_bar
    np.testing.assert_array_equal(mark[has_bar], close[has_bar])
    assert np.isnan(mark[~listed]).all()
    expected = pd.DataFrame(close).ffill().to_numpy()
    np.testing.assert_array_equal(mark[listed], expected[listed])


def test_frame_round_trips_to_the_single_symbol_load(demo: Panel) -> None:
    for symbol in DEMO:
        single = ivybt.load(symbol, source="sample")
        mine = demo.frame(symbol)
        pdt.assert_frame_equal(mine, single)
        assert mine.attrs["ivybt"] == single.attrs["ivybt"]
        assert demo.records[DEMO.index(symbol)] == load_series(symbol, source="sample").record()
        assert demo.records[DEMO.index(symbol)]["sha256"] == data_sha256(single)
        columns = demo.columns(symbol)
        assert columns.keys() == bar_columns(single).keys() == {*FIELDS, TIME_COLUMN}
        for name in FIELDS:
            np.testing.assert_array_equal(columns[name], single[name].to_numpy())
            assert columns[name].flags.c_contiguous and columns[name].flags.writeable
        np.testing.assert_array_equal(columns[TIME_COLUMN], bar_columns(single)[TIME_COLUMN])
        np.testing.assert_array_equal(
            demo.bars_of(symbol), np.flatnonzero(demo.index.isin(single.index))
        )


def test_columns_and_frames_answer_to_names_and_column_numbers(demo: Panel) -> None:
    pdt.assert_frame_equal(demo.frame("ibm"), demo.frame(4))
    np.testing.assert_array_equal(demo.bars_of("GOOG"), demo.bars_of(3))
    with pytest.raises(ConfigError, match=r"^TSLA is not in the panel \(SPY, MSFT, AAPL"):
        demo.frame("tsla")
    with pytest.raises(ConfigError, match="column 5 is outside the panel's 5 symbols"):
        demo.bars_of(5)


def test_panel_hash_names_symbols_and_data_in_order(demo: Panel) -> None:
    again = load_panel(list(DEMO), source="sample")
    assert again.sha256 == demo.sha256
    assert len(demo.sha256) == 64
    reordered = load_panel(list(reversed(DEMO)), source="sample")
    assert reordered.sha256 != demo.sha256
    shorter = load_panel(list(DEMO[:4]), source="sample")
    assert shorter.sha256 != demo.sha256


def test_describe_and_repr(demo: Panel) -> None:
    assert demo.describe() == "SPY, MSFT, AAPL, GOOG, IBM (5 symbols) 1990-01-02..2022-03-10"
    assert repr(demo) == f"Panel({demo.describe()}, 1d, {demo.n_bars} bars)"
    many = panel_from_frames({f"S{i}": bars(["2020-01-02", "2020-01-03"]) for i in range(7)})
    assert many.describe() == "S0, S1, S2, S3, ... (7 symbols) 2020-01-02..2020-01-03"
    one = panel_from_frames({"SPY": bars(["2020-01-02"])})
    assert one.describe() == "SPY (1 symbol) 2020-01-02..2020-01-02"


def test_start_and_end_apply_to_every_symbol() -> None:
    panel = load_panel(DEMO, start="2010-01-01", end="2012-01-01", source="sample")
    assert panel.index[0] == day("2010-01-04")
    assert panel.index[-1] == day("2011-12-30")
    for symbol in DEMO:
        single = ivybt.load(symbol, "1d", "2010-01-01", "2012-01-01", source="sample")
        pdt.assert_frame_equal(panel.frame(symbol), single)
        assert panel.records[panel.column(symbol)]["sha256"] == data_sha256(single)


def test_a_symbol_delisted_inside_the_range_warns_only_when_the_whole_panel_falls_short() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = load_panel("SPY,IBM", start="2012-01-01", end="2014-01-01", source="sample")
    assert panel.index[panel.last[1]] == day("2013-03-01")
    with pytest.warns(DataRangeWarning, match=r"the universe IBM, GOOG \(2 symbols\) 20"):
        load_panel("IBM,GOOG", start="2012-01-01", end="2020-01-01", source="sample")


def test_unknown_symbol_is_named_and_keeps_the_loader_message() -> None:
    with pytest.raises(DataError, match=r"^NOPE: no bundled sample for NOPE 1d"):
        load_panel("SPY,NOPE", source="sample")
    with pytest.raises(DataError, match=r"^IBM: no IBM 1d bars in \[2015-01-01, 2016-01-01\)"):
        load_panel("SPY,IBM", start="2015-01-01", end="2016-01-01", source="sample")


def test_load_panel_refuses_bad_universes_and_arguments() -> None:
    with pytest.raises(ConfigError, match="symbols: SPY is listed twice"):
        load_panel("SPY,MSFT,spy", source="sample")
    with pytest.raises(ConfigError, match="symbols: SPY is listed twice"):
        load_panel(["SPY", " spy "], source="sample")
    with pytest.raises(ConfigError, match="at least one symbol"):
        load_panel([], source="sample")
    with pytest.raises(ConfigError, match="entry 1 of '' is empty"):
        load_panel("", source="sample")
    with pytest.raises(ConfigError, match="max_jump"):
        load_panel("SPY", source="sample", max_jump=0.5)
    with pytest.raises(ConfigError, match="start must be before end"):
        load_panel("SPY", start="2020-01-01", end="2019-01-01", source="sample")


def test_load_panel_is_public() -> None:
    assert ivybt.load_panel is load_panel
    assert "load_panel" in ivybt.__all__
    assert ivybt.data.load_panel is load_panel


# -- frames: missing bars, records ----------------------------------------------------------


def test_a_halt_mid_series_is_a_missing_bar_valued_at_the_last_close() -> None:
    dates = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08"]
    halted = bars(dates, [10.0, 11.0, 12.0, 13.0, 14.0])
    halted.iloc[2] = np.nan  # every field NaN on 2020-01-06
    panel = panel_from_frames({"HALT": halted, "SPY": bars(dates)})
    j = panel.column("HALT")
    assert panel.n_bars == 5
    assert not panel.has_bar[2, j]
    assert panel.listed[2, j]
    assert panel.mark[2, j] == 11.0
    np.testing.assert_array_equal(panel.mark[:, j], [10.0, 11.0, 11.0, 13.0, 14.0])
    np.testing.assert_array_equal(panel.bars_of("HALT"), [0, 1, 3, 4])
    record = panel.records[j]
    assert record["missing_rows"] == 1
    assert record["rows"] == 4
    assert record["source"] == "frame"
    assert record["sha256"] == data_sha256(halted.dropna())
    assert panel.records[panel.column("SPY")]["missing_rows"] == 0
    pdt.assert_frame_equal(panel.frame("HALT"), halted.dropna())


def test_a_missing_bar_no_other_symbol_has_is_not_a_row() -> None:
    frame = bars(["2020-01-02", "2020-01-03", "2020-01-06"])
    frame.iloc[1, :4] = np.nan  # volume may stay: the prices decide
    panel = panel_from_frames({"SPY": frame})
    expected = pd.DatetimeIndex([day("2020-01-02"), day("2020-01-06")], name="date")
    pdt.assert_index_equal(panel.index, expected)
    assert panel.records[0]["missing_rows"] == 1


def test_missing_bars_at_the_edges_do_not_extend_the_listing() -> None:
    dates = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]
    edged = bars(dates)
    edged.iloc[[0, 3]] = np.nan
    panel = panel_from_frames({"EDGE": edged, "SPY": bars(dates)})
    assert (panel.first[0], panel.last[0]) == (1, 2)
    assert panel.records[0]["missing_rows"] == 2
    assert np.isnan(panel.mark[[0, 3], 0]).all()


def test_a_row_with_some_prices_nan_stays_an_error() -> None:
    frame = bars(["2020-01-02", "2020-01-03", "2020-01-06"])
    frame.iloc[1, 0] = np.nan
    with pytest.raises(ValidationError, match=r"^SPY \(DataFrame\): rule `open is not NaN`"):
        panel_from_frames({"spy": frame})


def test_a_symbol_without_bars_is_refused_by_name() -> None:
    good = bars(["2020-01-02", "2020-01-03"])
    with pytest.raises(ConfigError, match=r"^EMPTY: no bars \(the frame is empty\)"):
        panel_from_frames({"SPY": good, "EMPTY": good.iloc[:0]})
    with pytest.raises(ConfigError, match=r"^GONE: no bars \(all 2 rows have NaN prices\)"):
        panel_from_frames({"SPY": good, "GONE": good * np.nan})
    with pytest.raises(ConfigError, match="at least one symbol"):
        panel_from_frames({})
    with pytest.raises(ConfigError, match=r"^X: expected a pandas DataFrame, got list"):
        panel_from_frames({"X": [1, 2]})  # type: ignore[dict-item]


def test_duplicate_symbols_after_normalising_are_refused() -> None:
    frame = bars(["2020-01-02", "2020-01-03"])
    with pytest.raises(ConfigError, match=r"frames: SPY is listed twice \(as 'SPY' and 'spy'\)"):
        panel_from_frames({"SPY": frame, "spy ": frame})


def test_frames_are_validated_with_max_jump() -> None:
    frame = bars(["2020-01-02", "2020-01-03", "2020-01-06"], [10.0, 200.0, 201.0])
    with pytest.raises(ValidationError, match="within 10x of the previous close"):
        panel_from_frames({"JUMP": frame})
    panel = panel_from_frames({"JUMP": frame}, max_jump=50)
    assert panel.close[1, 0] == 200.0


def test_given_records_override_the_built_ones() -> None:
    frame = bars(["2020-01-02", "2020-01-03"])
    panel = panel_from_frames({"SPY": frame}, records={"spy": {"source": "cache", "extra": 1}})
    record = panel.records[0]
    assert (record["source"], record["extra"], record["rows"]) == ("cache", 1, 2)
    assert record["sha256"] == data_sha256(frame)


def test_frames_keep_their_order_and_adj_close_is_not_a_panel_field() -> None:
    a = bars(["2020-01-02", "2020-01-03"])
    b = a.assign(adj_close=a["close"] * 0.5)
    panel = panel_from_frames({"B": b, "A": a})
    assert panel.symbols == ("B", "A")
    pdt.assert_frame_equal(panel.frame("B"), a)  # OHLCV only
    assert panel.records[0]["sha256"] == data_sha256(b)  # the record covers what was given


# -- intervals and time zones --------------------------------------------------------------


def test_mixed_intervals_are_refused_in_one_line() -> None:
    spy = ivybt.load("SPY", source="sample").iloc[-300:]
    weekly = spy.resample("W-MON", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    with pytest.raises(
        ConfigError,
        match=r"^a universe mixes intervals: SPY 1d, WEEKLY 1wk; use one interval for every",
    ):
        panel_from_frames({"SPY": spy, "WEEKLY": weekly.dropna()})


def test_mixed_time_zones_are_refused_in_one_line() -> None:
    spy = ivybt.load("SPY", source="sample").iloc[-50:]
    eurusd = ivybt.load("EURUSD", "1h", source="sample").iloc[-50:]
    with pytest.raises(
        ConfigError,
        match=r"^a universe mixes tz-naive and tz-aware timestamps: SPY naive, EURUSD UTC; ",
    ):
        panel_from_frames({"SPY": spy, "EURUSD": eurusd})
    with pytest.raises(ConfigError, match="mixes tz-naive and tz-aware"):
        panel_from_frames({"SPY": spy, "EURUSD": eurusd}, "1d")  # before any other check


def test_intraday_frames_in_other_zones_are_aligned_in_utc() -> None:
    eurusd = ivybt.load("EURUSD", "1h", source="sample").iloc[-48:]
    shifted = eurusd.iloc[10:].set_axis(eurusd.index[10:].tz_convert("America/New_York"))
    panel = panel_from_frames({"EURUSD": eurusd, "NY": shifted})
    assert panel.interval == "1h"
    assert str(panel.index.tz) == "UTC"
    pdt.assert_index_equal(panel.index, eurusd.index)
    assert panel.first.tolist() == [0, 10]


def test_a_given_interval_checks_the_kind_of_timestamps() -> None:
    hourly = bars(pd.date_range("2020-01-02 09:00", periods=5, freq="h"))
    assert panel_from_frames({"H": hourly}).interval == "1h"
    with pytest.raises(ValidationError, match=r"1h bars must be stamped in UTC"):
        panel_from_frames({"H": hourly}, "1h")
    with pytest.raises(ValidationError, match=r"1d timestamps are dates at midnight"):
        panel_from_frames({"H": hourly}, "1d")


def test_interval_inference() -> None:
    days = pd.bdate_range("2020-01-01", periods=60)
    assert infer_interval(days) == "1d"
    assert infer_interval(pd.date_range("2020-01-06", periods=20, freq="W-MON")) == "1wk"
    assert infer_interval(pd.date_range("2020-01-01", periods=20, freq="MS")) == "1mo"
    assert infer_interval(pd.date_range("2020-01-01", periods=20, freq="5min", tz="UTC")) == "5m"
    assert infer_interval(days[:1]) is None
    with pytest.raises(ConfigError, match="cannot tell the bar interval"):
        infer_interval(pd.date_range("2020-01-01", periods=20, freq="4h", tz="UTC"))
    with pytest.raises(ConfigError, match="cannot tell the bar interval"):
        infer_interval(pd.date_range("2020-01-01", periods=20, freq="QS"))
    one = panel_from_frames({"A": bars(["2020-01-02"]), "B": bars(["2020-01-03"])})
    assert one.interval == "1d"


# -- windows -------------------------------------------------------------------------------


def test_window_recomputes_listing_and_keeps_every_symbol(demo: Panel) -> None:
    lo = int(demo.index.searchsorted(day("2015-01-01")))
    hi = int(demo.index.searchsorted(day("2019-01-01")))
    part = demo.window(lo, hi)
    assert part.symbols == demo.symbols
    pdt.assert_index_equal(part.index, demo.index[lo:hi])
    ibm, goog = DEMO.index("IBM"), DEMO.index("GOOG")
    assert (part.first[ibm], part.last[ibm]) == (-1, -1)
    assert not part.listed[:, ibm].any()
    assert np.isnan(part.mark[:, ibm]).all()
    assert part.bars_of("IBM").size == 0
    assert part.frame("IBM").empty
    assert part.index[part.last[goog]] == day("2018-01-19")
    assert part.first[goog] == 0
    assert part.records == demo.records and part.sha256 == demo.sha256
    np.testing.assert_array_equal(part.close, demo.close[lo:hi])
    assert part.close.flags.c_contiguous
    with pytest.warns(DataRangeWarning, match="GOOG"):  # one symbol alone does warn
        single = ivybt.load("GOOG", "1d", "2015-01-01", "2019-01-01", source="sample")
    pdt.assert_frame_equal(part.frame("GOOG"), single)


def test_window_bounds_are_checked(demo: Panel) -> None:
    with pytest.raises(ConfigError, match=r"a window needs 0 <= lo < hi <= "):
        demo.window(10, 10)
    with pytest.raises(ConfigError, match=r"a window needs"):
        demo.window(0, demo.n_bars + 1)
    with pytest.raises(ConfigError, match="window bounds must be integers"):
        demo.window(0.0, 5)  # type: ignore[arg-type]


def test_window_listing_starts_at_the_first_bar_inside_it() -> None:
    dates = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]
    halted = bars(dates)
    halted.iloc[1:3] = np.nan
    panel = panel_from_frames({"H": halted, "SPY": bars(dates)}, "1d")
    part = panel.window(2, 4)
    assert (part.first[0], part.last[0]) == (1, 1)
    assert np.isnan(part.mark[0, 0]) and part.mark[1, 0] == panel.close[3, 0]


# -- property: alignment on random frames --------------------------------------------------

TIMELINE = pd.bdate_range("2021-01-01", periods=40).as_unit("ns")


@st.composite
def random_frames(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    count = draw(st.integers(1, 4))
    frames: dict[str, pd.DataFrame] = {}
    for j in range(count):
        rows = draw(
            st.lists(st.integers(0, len(TIMELINE) - 1), min_size=1, max_size=25, unique=True)
        )
        rows.sort()
        closes = draw(
            st.lists(st.floats(1.0, 5.0, allow_nan=False), min_size=len(rows), max_size=len(rows))
        )
        frame = bars(TIMELINE[rows], closes)
        halts = draw(st.lists(st.sampled_from(range(len(rows))), max_size=3, unique=True))
        if len(halts) < len(rows):
            frame.iloc[halts, :4] = np.nan
        frames[f"S{j}"] = frame
    return frames


@settings(max_examples=60, deadline=None)
@given(frames=random_frames())
def test_panel_aligns_random_frames_on_the_sorted_union(frames: dict[str, pd.DataFrame]) -> None:
    panel = panel_from_frames(frames, "1d")
    own = {s: f.dropna(subset=["close"]) for s, f in frames.items()}
    union = sorted(set().union(*(set(f.index) for f in own.values())))
    assert list(panel.index) == union
    mark = panel.mark
    for j, (symbol, frame) in enumerate(own.items()):
        rows = panel.bars_of(symbol)
        np.testing.assert_array_equal(panel.close[rows, j], frame["close"].to_numpy())
        np.testing.assert_array_equal(panel.index[rows], frame.index)
        assert panel.records[j]["missing_rows"] == len(frames[symbol]) - len(frame)
        assert (panel.first[j], panel.last[j]) == (rows[0], rows[-1])
        slow = pd.Series(panel.close[:, j]).ffill().to_numpy(copy=True)
        slow[: rows[0]] = np.nan
        slow[rows[-1] + 1 :] = np.nan
        np.testing.assert_array_equal(mark[:, j], slow)
        pdt.assert_frame_equal(panel.frame(symbol), frame, check_freq=False)
