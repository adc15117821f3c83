"""The incremental cache, driven through the fake Yahoo serving real AAPL and EURUSD bars."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from ivybt.data._update_steps import request_spans
from ivybt.data.cache import DataCache
from ivybt.data.intervals import parse_interval
from ivybt.data.store import read_meta, read_series
from ivybt.errors import (
    ConfigError,
    DataError,
    EmptyDataError,
    HistoryRevisedWarning,
    ValidationError,
)
from tests.conftest import day, utc
from tests.fakes import FakeYahoo

NOW = utc("2018-01-23 12:00")  # the AAPL sample ends on 2018-01-19


@pytest.fixture
def aapl(fake_yahoo: FakeYahoo) -> pd.DataFrame:
    return fake_yahoo.serve_sample("AAPL")


def expected(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return frame.loc[(frame.index >= day(start)) & (frame.index < day(end))]


def test_first_request_fetches_the_range(cache_dir: Path, fake_yahoo: FakeYahoo, aapl) -> None:
    report = DataCache(cache_dir).update(
        "AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW
    )
    assert fake_yahoo.ranges() == [(day("2015-01-01"), day("2016-01-01"))]
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, expected(aapl, "2015-01-01", "2016-01-01"))
    assert (meta.source, meta.covered_start, meta.covered_end) == (
        "yahoo",
        "2015-01-01T00:00:00",
        "2016-01-01T00:00:00",
    )
    assert meta.exchange_tz == "America/New_York"
    assert report.bars_added == report.bars_total == 252
    assert "1 request(s), +252 bars" in report.summary()


def test_identical_second_request_fetches_nothing(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    before = (cache_dir / "AAPL_1d.parquet").stat().st_mtime_ns
    report = cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    assert len(fake_yahoo.calls) == 1
    assert report.requests == ()
    assert "nothing fetched" in report.summary()
    assert (cache_dir / "AAPL_1d.parquet").stat().st_mtime_ns == before
    # a sub-range of what was requested is covered as well, even across non-trading days
    cache.update("AAPL", "1d", day("2015-07-04"), day("2015-07-06"), now=NOW)
    assert len(fake_yahoo.calls) == 1


def test_extending_start_fetches_only_the_gap(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    cache.update("AAPL", "1d", day("2013-06-01"), day("2016-01-01"), now=NOW)
    assert fake_yahoo.ranges()[1:] == [(day("2013-06-01"), day("2015-01-01"))]
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, expected(aapl, "2013-06-01", "2016-01-01"))
    assert meta.covered_start == "2013-06-01T00:00:00"


def test_extending_end_fetches_the_gap_plus_an_overlap(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir, overlap_bars=5)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    report = cache.update("AAPL", "1d", day("2015-01-01"), day("2016-07-01"), now=NOW)
    fifth_last = expected(aapl, "2015-01-01", "2016-01-01").index[-5]
    assert fake_yahoo.ranges()[1:] == [(fifth_last, day("2016-07-01"))]
    frame, _ = read_series(cache_dir / "AAPL_1d.parquet")
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    pdt.assert_frame_equal(frame, expected(aapl, "2015-01-01", "2016-07-01"))
    assert report.bars_added == len(frame) - 252


def test_both_sides_at_once_and_overlap_is_deduplicated(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    cache.update("AAPL", "1d", day("2014-01-01"), day("2017-01-01"), now=NOW)
    assert len(fake_yahoo.calls) == 3
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, expected(aapl, "2014-01-01", "2017-01-01"))
    assert meta.coverage() == (day("2014-01-01"), day("2017-01-01"))
    assert [e["action"] for e in meta.log] == ["fetch", "fetch"]


def test_end_beyond_now_is_clipped_to_complete_bars(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    now = utc("2018-01-19 15:00")  # the session of 2018-01-19 is still trading
    cache.update("AAPL", "1d", day("2018-01-01"), day("2030-01-01"), now=now)
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    assert frame.index[-1] == day("2018-01-18")
    assert meta.covered_end == "2018-01-19T00:00:00"
    cache.update("AAPL", "1d", day("2018-01-01"), None, now=now + pd.Timedelta(hours=3))
    assert len(fake_yahoo.calls) == 1  # same day: the forming bar is not asked for again
    cache.update("AAPL", "1d", day("2018-01-01"), None, now=utc("2018-01-20 01:00"))
    frame, _ = read_series(cache_dir / "AAPL_1d.parquet")
    assert frame.index[-1] == day("2018-01-19")


def test_revised_history_refetches_the_whole_series(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2017-01-01"), day("2017-11-01"), now=NOW)
    revised = aapl.copy()
    revised.loc[revised.index < day("2017-11-10"), "adj_close"] *= 0.995  # a new dividend
    fake_yahoo.serve("AAPL", "1d", revised)
    with pytest.warns(HistoryRevisedWarning, match=r"adj_close on 2017-10-25 changed"):
        report = cache.update("AAPL", "1d", day("2017-01-01"), day("2018-01-01"), now=NOW)
    assert fake_yahoo.ranges()[-1] == (day("2017-01-01"), day("2018-01-01"))
    assert report.revised is not None
    frame, meta = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, expected(revised, "2017-01-01", "2018-01-01"))
    assert meta.log[-1]["action"] == "refetch"


def test_backfilled_session_refetches_the_whole_series(cache_dir, fake_yahoo, aapl) -> None:
    missing = day("2017-10-27")
    fake_yahoo.serve("AAPL", "1d", aapl.drop(index=missing))
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2017-01-01"), day("2017-11-01"), now=NOW)
    fake_yahoo.serve("AAPL", "1d", aapl)  # Yahoo fills in the session it had missed
    with pytest.warns(HistoryRevisedWarning, match="appeared inside the cached range"):
        cache.update("AAPL", "1d", day("2017-01-01"), day("2017-12-01"), now=NOW)
    frame, _ = read_series(cache_dir / "AAPL_1d.parquet")
    assert missing in frame.index


def test_rounding_noise_in_the_overlap_is_not_a_revision(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2017-01-01"), day("2017-11-01"), now=NOW)
    noisy = aapl.copy()
    noisy[["open", "high", "low", "close", "adj_close"]] *= 1 + 1e-9  # float noise
    fake_yahoo.serve("AAPL", "1d", noisy)
    report = cache.update("AAPL", "1d", day("2017-01-01"), day("2017-12-01"), now=NOW)
    assert report.revised is None and len(fake_yahoo.calls) == 2


def test_first_request_with_empty_answer_caches_nothing(cache_dir, fake_yahoo) -> None:
    with pytest.raises(EmptyDataError, match=r"no bars for NOPE 1d.*Yahoo spelling"):
        DataCache(cache_dir).update("NOPE", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    assert not (cache_dir / "NOPE_1d.parquet").exists()


def test_empty_gap_extends_coverage_without_error(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2005-01-01"), day("2006-01-01"), now=NOW)
    cache.update("AAPL", "1d", day("2000-01-01"), day("2006-01-01"), now=NOW)  # before listing
    _, meta = read_series(cache_dir / "AAPL_1d.parquet")
    assert meta.covered_start == "2000-01-01T00:00:00"
    cache.update("AAPL", "1d", day("2001-01-01"), day("2006-01-01"), now=NOW)
    assert len(fake_yahoo.calls) == 2


def test_intraday_window_is_checked_before_any_call(cache_dir, fake_yahoo) -> None:
    now = utc("2018-12-31 23:00")
    with pytest.raises(DataError, match=r"Yahoo serves 5m bars only for the last 60 days"):
        DataCache(cache_dir).update("EURUSD=X", "5m", utc("2018-06-01"), None, now=now)
    with pytest.raises(DataError, match=r"only for the last 730 days"):
        DataCache(cache_dir).update("EURUSD=X", "1h", utc("2015-01-01"), None, now=now)
    assert fake_yahoo.calls == []


def test_intraday_bars_are_utc_and_the_forming_bar_is_dropped(cache_dir, fake_yahoo) -> None:
    eur = fake_yahoo.serve_sample("EURUSD", "1h", start="2018-12-01")
    fake_yahoo.exchange_tz = "Europe/London"
    fake_yahoo.serve("EURUSD=X", "1h", eur)
    now = utc("2018-12-31 21:30")  # the 21:00 bar is still forming
    DataCache(cache_dir).update("EURUSD=X", "1h", utc("2018-12-20"), None, now=now)
    frame, meta = read_series(cache_dir / "EURUSD=X_1h.parquet")
    assert str(frame.index.tz) == "UTC" and meta.exchange_tz == "Europe/London"
    assert frame.index[-1] == utc("2018-12-31 20:00")
    pdt.assert_frame_equal(frame, eur.loc[utc("2018-12-20") : utc("2018-12-31 20:00")])


def test_one_minute_requests_are_split_into_spans_yahoo_accepts(cache_dir, fake_yahoo) -> None:
    eur = fake_yahoo.serve_sample("EURUSD", "1h", start="2018-12-01")
    fake_yahoo.serve("EURUSD=X", "1m", eur)  # real bars; the cache does not resample
    now = utc("2018-12-31 22:00")
    DataCache(cache_dir).update("EURUSD=X", "1m", utc("2018-12-10"), utc("2018-12-30"), now=now)
    spans = fake_yahoo.ranges()
    assert spans[0][0] == utc("2018-12-10") and spans[-1][1] == utc("2018-12-30")
    assert all(b - a <= pd.Timedelta(days=7) for a, b in spans) and len(spans) == 3
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_spans_cover_the_range_exactly() -> None:
    iv = parse_interval("1m")
    spans = request_spans(iv, utc("2020-01-01"), utc("2020-01-20 05:00"))
    assert [b - a for a, b in spans][:-1] == [pd.Timedelta(days=7)] * 2
    assert spans[-1][1] == utc("2020-01-20 05:00")
    assert request_spans(parse_interval("1d"), day("2000-01-01"), day("2020-01-01")) == [
        (day("2000-01-01"), day("2020-01-01"))
    ]


def test_cached_file_is_revalidated_on_read(cache_dir, fake_yahoo, aapl) -> None:
    cache = DataCache(cache_dir)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    path = cache_dir / "AAPL_1d.parquet"
    frame, meta = read_series(path)
    frame.iloc[3, frame.columns.get_loc("high")] = 1.0  # corrupt one bar behind our back
    from ivybt.data.store import write_series

    write_series(path, frame, meta)
    with pytest.raises(
        DataError,
        match=r"high >= max\(open, close\)` fails on 1 bar, first "
        r"at 2015-01-07",
    ):
        cache.read("AAPL", "1d")


def test_symbols_are_normalised_and_checked(cache_dir) -> None:
    cache = DataCache(cache_dir)
    assert cache.path(" spy ", "1d").name == "SPY_1d.parquet"
    assert cache.path("brk-b", "60m").name == "BRK-B_1h.parquet"
    with pytest.raises(ConfigError, match="symbol must be a ticker"):
        cache.path("../etc/passwd", "1d")
    with pytest.raises(ConfigError, match=r"got 'BRK/B'; write a pair without '/'"):
        cache.path("BRK/B", "1d")  # once BRK_B_1d.parquet, the same file as BRK_B's


def test_rate_limited_fetch_backs_off_and_succeeds(cache_dir, fake_yahoo, aapl) -> None:
    fake_yahoo.script = deque(["rate_limit", "rate_limit"])
    DataCache(cache_dir).update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    assert len(fake_yahoo.calls) == 3
    assert len(fake_yahoo.sleeps) == 2 and fake_yahoo.sleeps[1] > fake_yahoo.sleeps[0] > 0
    assert len(read_series(cache_dir / "AAPL_1d.parquet")[0]) == 252


def test_multiindex_answer_is_normalised(cache_dir, fake_yahoo, aapl) -> None:
    fake_yahoo.script = deque(["multiindex"])
    DataCache(cache_dir).update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    frame, _ = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, expected(aapl, "2015-01-01", "2016-01-01"))
    assert np.array_equal(frame.columns, ["open", "high", "low", "close", "volume", "adj_close"])


def test_a_real_jump_needs_max_jump_which_is_stored_with_the_series(
    cache_dir: Path, fake_yahoo: FakeYahoo, aapl: pd.DataFrame
) -> None:
    """A 1:20 reverse split the source did not adjust for, on 2015-06-01."""
    split = aapl.copy()
    prices = ["open", "high", "low", "close", "adj_close"]
    split.loc[day("2015-06-01") :, prices] *= 20.0
    fake_yahoo.serve("AAPL", "1d", split)
    cache = DataCache(cache_dir)
    with pytest.raises(ValidationError, match=r"prices within 10x of the previous close"):
        cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW)
    assert not (cache_dir / "AAPL_1d.parquet").exists()
    with pytest.raises(ValidationError, match=r"prices within 15x of the previous close"):
        cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW, max_jump=15)
    cache.update("AAPL", "1d", day("2015-01-01"), day("2016-01-01"), now=NOW, max_jump=25)
    assert read_meta(cache_dir / "AAPL_1d.parquet").max_jump == 25.0  # type: ignore[union-attr]
    # later updates and reads use the stored factor
    cache.update("AAPL", "1d", day("2014-01-01"), day("2017-01-01"), now=NOW)
    frame, meta = cache.read("AAPL", "1d")  # type: ignore[misc]
    assert meta.max_jump == 25.0
    pdt.assert_frame_equal(frame, expected(split, "2014-01-01", "2017-01-01"))
