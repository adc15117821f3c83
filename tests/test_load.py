"""`ivybt.load` and friends: sources, fallback, adjusted vs raw, Yahoo error handling."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

import ivybt
from ivybt.data import list_series, load_series
from ivybt.data.cache import DataCache
from ivybt.data.store import SeriesMeta, data_sha256, write_series
from ivybt.data.yahoo import RetryPolicy, _classify, fetch_yahoo
from ivybt.errors import (
    ConfigError,
    DataError,
    DataRangeWarning,
    EmptyDataError,
    NetworkUnavailableError,
    RateLimitError,
    SampleFallbackWarning,
)
from tests.conftest import day
from tests.fakes import FakeYahoo


def test_sample_load_is_canonical_and_carries_provenance() -> None:
    spy = ivybt.load("SPY", "1d", "2019-01-01", "2020-01-01", source="sample")
    assert (len(spy), spy.index[0], spy.index[-1]) == (252, day("2019-01-02"), day("2019-12-31"))
    assert str(spy.index.dtype) == "datetime64[ns]"
    assert spy.index.name == "date"
    assert list(spy.columns) == ["open", "high", "low", "close", "volume"]
    assert all(spy.dtypes == np.float64)
    record = spy.attrs["ivybt"]
    assert record["source"] == "sample"
    assert record["license"] == "MIT"
    assert record["sha256"] == data_sha256(spy)


def test_every_bundled_series_loads_and_validates() -> None:
    for entry in ivybt.data.sample_catalog():
        frame = ivybt.load(entry.symbol, entry.interval, source="sample", adjusted=False)
        assert len(frame) > 1000, entry.symbol
        assert (str(frame.index.tz) == "UTC") == (entry.interval == "1h")


def test_yahoo_style_aliases_find_the_sample() -> None:
    spx = load_series("^GSPC", source="sample")
    assert spx.provenance["sample_file"] == "SPX_1d.parquet"
    assert load_series("EURUSD=X", "1h", source="sample").frame.index.tz is not None


def test_missing_sample_suggests_names_and_intervals() -> None:
    with pytest.raises(DataError, match=r"no bundled sample for SPYY 1d; did you mean 'SPY'\?"):
        ivybt.load("SPYY", source="sample")
    with pytest.raises(DataError, match=r"bundled for that symbol: EURUSD 1h \(set --interval\)"):
        ivybt.load("EURUSD", "1d", source="sample")


def test_adjusted_view_scales_ohlc_by_adj_close() -> None:
    raw = ivybt.load("AAPL", "1d", "2012-01-01", "2013-01-01", source="sample", adjusted=False)
    adj = ivybt.load("AAPL", "1d", "2012-01-01", "2013-01-01", source="sample")
    assert "adj_close" in raw.columns
    assert "adj_close" not in adj.columns
    assert adj.attrs["ivybt"]["adjusted"] is True
    npt_factor = raw["adj_close"] / raw["close"]
    pdt.assert_series_equal(adj["close"], raw["adj_close"], check_names=False)
    pdt.assert_series_equal(adj["high"], raw["high"] * npt_factor, check_names=False)
    pdt.assert_series_equal(adj["volume"], raw["volume"])
    # SPY has no adj_close: the default gives stored prices; demanding adjustment is an error
    assert ivybt.load("SPY", source="sample").attrs["ivybt"]["adjusted"] is False
    with pytest.raises(DataError, match=r"SPY 1d .* has no adj_close.*use --raw"):
        ivybt.load("SPY", source="sample", adjusted=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "2d"}, r"interval must be one of .* got '2d'"),
        ({"interval": "1H"}, r"did you mean '1h'\?"),
        ({"start": "2020-01-01", "end": "2019-01-01"}, "start must be before end"),
        ({"start": "yesterday-ish"}, "start must be a date like 2020-01-31"),
        ({"source": "google"}, "source must be one of auto, yahoo, cache, sample"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ivybt.load("SPY", **{"source": "sample", **kwargs})


def test_sample_range_beyond_the_data_warns() -> None:
    with pytest.warns(DataRangeWarning, match="spans 1999-11-01 .* less than the requested"):
        frame = ivybt.load("SPY", start="2019-01-01", end="2024-01-01", source="sample")
    assert frame.index[-1] == day("2020-08-28")


def test_no_bars_in_range_is_an_error() -> None:
    with pytest.raises(DataError, match=r"no EURUSD 1h bars in \[2018-01-01, 2018-01-02\)"):
        ivybt.load("EURUSD", "1h", "2018-01-01", "2018-01-02", source="sample")


def test_auto_falls_back_to_sample_when_offline_and_nothing_cached(fake_yahoo, cache_dir):
    fake_yahoo.script = deque(["network"])
    with pytest.warns(SampleFallbackWarning, match="cannot reach Yahoo.*bundled sample SPY 1d"):
        frame = ivybt.load("SPY", cache_dir=cache_dir)
    assert frame.attrs["ivybt"]["source"] == "sample"
    assert len(frame) == 5241


def test_auto_does_not_fall_back_when_a_cache_exists(fake_yahoo, cache_dir) -> None:
    fake_yahoo.serve_sample("SPY")
    ivybt.load("SPY", start="2015-01-01", end="2016-01-01", cache_dir=cache_dir)
    fake_yahoo.script = deque(["network"])
    with pytest.raises(NetworkUnavailableError, match="use --source cache / --source sample"):
        ivybt.load("SPY", start="2010-01-01", end="2016-01-01", cache_dir=cache_dir)
    cached = ivybt.load(
        "SPY", start="2015-01-01", end="2016-01-01", cache_dir=cache_dir, source="cache"
    )
    assert len(cached) == 252


def test_yahoo_source_updates_the_cache_once(fake_yahoo, cache_dir) -> None:
    aapl = fake_yahoo.serve_sample("AAPL")
    first = ivybt.load(
        "AAPL",
        start="2015-01-01",
        end="2016-01-01",
        source="yahoo",
        cache_dir=cache_dir,
        adjusted=False,
    )
    again = ivybt.load(
        "AAPL",
        start="2015-03-01",
        end="2015-06-01",
        source="yahoo",
        cache_dir=cache_dir,
        adjusted=False,
    )
    assert len(fake_yahoo.calls) == 1
    assert first.attrs["ivybt"]["source"] == "yahoo"
    pdt.assert_frame_equal(again, aapl.loc["2015-03-01":"2015-05-31"], check_freq=False)


def test_yahoo_source_offline_raises(fake_yahoo, cache_dir) -> None:
    fake_yahoo.script = deque(["network"])
    with pytest.raises(NetworkUnavailableError, match="cannot reach Yahoo Finance for SPY 1d"):
        ivybt.load("SPY", source="yahoo", cache_dir=cache_dir)


def test_cache_source_never_fetches(fake_yahoo, cache_dir) -> None:
    with pytest.raises(DataError, match=r"not cached in .*`ivybt data fetch AAPL --interval 1d`"):
        ivybt.load("AAPL", source="cache", cache_dir=cache_dir)
    fake_yahoo.serve_sample("AAPL")
    ivybt.load("AAPL", start="2015-01-01", end="2016-01-01", source="yahoo", cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"the cache holds AAPL 1d for \[2015-01-01 .* only"):
        ivybt.load(
            "AAPL", start="2014-01-01", end="2016-01-01", source="cache", cache_dir=cache_dir
        )
    assert len(fake_yahoo.calls) == 1


def test_imported_series_are_read_from_cache_not_yahoo(fake_yahoo, cache_dir) -> None:
    spy = ivybt.load("SPY", source="sample")
    spy.attrs = {}
    DataCache(cache_dir).store_import("SPY", "1d", spy, origin="vendor.csv", price_basis="x")
    frame = ivybt.load("SPY", cache_dir=cache_dir)
    assert frame.attrs["ivybt"]["source"] == "cache"
    assert fake_yahoo.calls == []
    with pytest.raises(DataError, match="was imported from a vendor file"):
        ivybt.load("SPY", source="yahoo", cache_dir=cache_dir)


def test_list_series_shows_cache_and_sample(fake_yahoo, cache_dir) -> None:
    fake_yahoo.serve_sample("AAPL")
    ivybt.data.fetch("AAPL", start="2015-01-01", end="2016-01-01", cache_dir=cache_dir)
    (cache_dir / "BROKEN_1d.parquet").write_bytes(b"not parquet")
    table = list_series(cache_dir)
    cached = table[table["location"] == "cache"].set_index("symbol")
    assert cached.loc["AAPL", "rows"] == 252
    assert cached.loc["AAPL", "first"] == day("2015-01-02")
    assert cached.loc["BROKEN_1d", "source"] == "unreadable"
    assert set(table[table["location"] == "sample"]["symbol"]) == {
        "SPY",
        "SPX",
        "MSFT",
        "BTCUSD",
        "IXIC",
        "IBM",
        "AAPL",
        "GOOG",
        "EURUSD",
    }


def test_file_without_provenance_is_refused(cache_dir) -> None:
    spy = load_series("SPY", source="sample").frame
    spy.to_parquet(cache_dir.mkdir() or cache_dir / "SPY_1d.parquet")
    with pytest.raises(DataError, match="no IvyBT provenance metadata; delete it"):
        DataCache(cache_dir).update("SPY", "1d", day("2015-01-01"), day("2016-01-01"))


def test_rate_limit_that_never_ends_is_a_typed_error(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.serve_sample("AAPL")
    fake_yahoo.script = deque(["rate_limit"] * 3)
    with pytest.raises(RateLimitError, match=r"rate-limited AAPL 1d .* 3 times in a row"):
        fetch_yahoo(
            "AAPL", "1d", day("2015-01-01"), day("2016-01-01"), retry=RetryPolicy(attempts=3)
        )
    assert len(fake_yahoo.sleeps) == 2


def test_empty_answer_is_a_typed_error(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.script = deque(["empty"])
    with pytest.raises(EmptyDataError, match="Yahoo returned no bars for ZZZZ 1d"):
        fetch_yahoo("ZZZZ", "1d", day("2015-01-01"), day("2016-01-01"))


def test_yfinance_errors_are_classified() -> None:
    import yfinance.exceptions as yf_errors

    def named(name: str, base: type[Exception] = Exception) -> Exception:
        return type(name, (base,), {})("boom")

    assert _classify(yf_errors.YFRateLimitError()) == "rate_limit"
    assert _classify(named("YFPricesMissingError")) == "empty"
    assert _classify(named("DNSError", OSError)) == "network"
    assert _classify(named("ConnectionError")) == "network"
    assert _classify(ValueError("odd")) == "other"


def test_sidecar_meta_round_trips(cache_dir) -> None:
    spy = load_series("SPY", source="sample").frame
    meta = SeriesMeta(
        symbol="SPY",
        interval="1d",
        source="import",
        price_basis="raw",
        covered_start="1999-11-01T00:00:00",
        covered_end="2020-08-29T00:00:00",
    )
    meta = meta.with_event({"action": "import", "bars": len(spy)})
    write_series(cache_dir / "SPY_1d.parquet", spy, meta)
    frame, back = DataCache(cache_dir).read("SPY", "1d")
    assert back == meta
    pdt.assert_frame_equal(frame, spy)
    assert data_sha256(frame) == data_sha256(spy)
    assert pd.Timestamp(back.covered_end) == day("2020-08-29")
