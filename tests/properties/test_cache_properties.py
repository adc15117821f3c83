"""Properties of the cache over random request sequences on real AAPL bars."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivybt.data.cache import DataCache
from ivybt.data.loader import load_series
from ivybt.data.store import SeriesMeta, data_sha256, read_series, write_series
from ivybt.errors import EmptyDataError
from tests.fakes import FakeYahoo

AAPL = load_series("AAPL", "1d", source="sample", adjusted=False).frame
DAYS = pd.date_range("2004-01-01", "2018-01-22", freq="D", unit="ns")
NOW = pd.Timestamp("2018-01-23 12:00", tz="UTC")


@st.composite
def request_ranges(draw: st.DrawFn) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo = draw(st.integers(0, len(DAYS) - 2))
    hi = draw(st.integers(lo + 1, min(lo + 2000, len(DAYS) - 1)))
    return DAYS[lo], DAYS[hi]


@given(requests=st.lists(request_ranges(), min_size=1, max_size=5))
def test_cache_equals_the_source_over_the_hull_of_requests(
    requests: list[tuple[pd.Timestamp, pd.Timestamp]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeYahoo().serve("AAPL", "1d", AAPL)
    with tempfile.TemporaryDirectory() as folder, monkeypatch.context() as patch:
        patch.setattr("ivybt.data.yahoo.download", fake)
        cache = DataCache(Path(folder))
        for start, end in requests:
            try:
                cache.update("AAPL", "1d", start, end, now=NOW)
            except EmptyDataError:  # only a first request before AAPL's listing may fail
                assert not (Path(folder) / "AAPL_1d.parquet").exists()
        path = Path(folder) / "AAPL_1d.parquet"
        if not path.exists():
            return
        frame, meta = read_series(path)
        lo, hi = meta.coverage()
        pdt.assert_frame_equal(frame, AAPL.loc[(AAPL.index >= lo) & (AAPL.index < hi)])
        calls = len(fake.calls)
        cache.update("AAPL", "1d", *requests[-1], now=NOW)  # a repeat fetches nothing
        assert len(fake.calls) == calls


@given(request=request_ranges())
def test_parquet_round_trip_preserves_frame_meta_and_hash(
    request: tuple[pd.Timestamp, pd.Timestamp],
) -> None:
    part = AAPL.loc[(AAPL.index >= request[0]) & (AAPL.index < request[1])]
    if part.empty:
        return
    meta = SeriesMeta(
        symbol="AAPL",
        interval="1d",
        source="yahoo",
        price_basis="raw",
        covered_start=request[0].isoformat(),
        covered_end=request[1].isoformat(),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "AAPL_1d.parquet"
        write_series(path, part, meta)
        back, back_meta = read_series(path)
    pdt.assert_frame_equal(back, part)
    assert back_meta == meta
    assert data_sha256(back) == data_sha256(part)
