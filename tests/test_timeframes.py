"""Higher-timeframe indicators (issue #16, section 3): periods, resampled bars against pandas,
each HTF value visible only from the first bar after its HTF bar closed, the look-ahead
checker catching a planted leaky resample, and bbkc_squeeze's HTF filter in every run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ivybt
import ivybt.engine.tables as tables
from ivybt.bars import timeframes
from ivybt.bars.timeframes import TIME, TIMEFRAMES, period_keys, resample
from ivybt.data.sample import load_sample
from ivybt.data.timestamps import time_column
from ivybt.engine.tables import bar_columns, indicator_table
from ivybt.errors import ConfigError
from ivybt.runs.lookahead import check_lookahead
from ivybt.strategies import Indicator
from tests.tolerances import same_metrics

PANDAS_PERIOD = {"1d": "D", "1w": "W-SUN", "1mo": "M"}
SAMPLE = {"symbol": "SPY", "source": "sample", "start": "2010-01-01"}
HTF = {"htf_ema": 10, "htf": 2}


def stamps(text: list[str]) -> np.ndarray:
    return time_column(pd.DatetimeIndex(text))


def test_periods_are_iso_weeks_calendar_days_months_and_hour_blocks():
    week = stamps(["2024-01-07", "2024-01-08", "2024-01-14 23:59", "2024-01-15"])  # Sun..Mon
    assert list(np.diff(period_keys(week, "1w"))) == [1, 0, 1]
    month = stamps(["2024-01-31 23:00", "2024-02-01", "2024-02-29", "2024-03-01"])
    assert list(np.diff(period_keys(month, "1mo"))) == [1, 0, 1]
    hours = stamps(["2024-01-01 03:00", "2024-01-01 03:59", "2024-01-01 04:00"])
    assert list(np.diff(period_keys(hours, "4h"))) == [0, 1]
    assert list(np.diff(period_keys(hours, "1d"))) == [0, 0]
    # tz-aware bars are read in UTC: 20:00 New York in January is 01:00 UTC the next day
    new_york = pd.DatetimeIndex(["2024-01-02 18:00", "2024-01-02 20:00"]).tz_localize(
        "America/New_York"
    )
    assert list(np.diff(period_keys(time_column(new_york), "1d"))) == [1]


def bars_from(draw_prices: list[float], gaps: list[int], missing: list[bool], start: str,
              step: str) -> dict[str, np.ndarray]:  # fmt: skip
    index = pd.Timestamp(start) + pd.to_timedelta(np.cumsum(gaps), unit=step)
    close = np.asarray(draw_prices, dtype=np.float64)
    open_ = np.roll(close, 1)
    open_[0] = close[0]
    columns = {"open": open_, "high": np.maximum(open_, close) + 1.0,
               "low": np.minimum(open_, close) - 1.0, "close": close}  # fmt: skip
    for values in columns.values():  # a missing bar: NaN prices, as validated bars have
        values[np.asarray(missing)] = np.nan
    return {
        **columns,
        "volume": np.full(len(close), 10.0),
        TIME: time_column(pd.DatetimeIndex(index)),
    }


@st.composite
def random_bars(draw):
    n = draw(st.integers(5, 120))
    prices = draw(st.lists(st.floats(10, 200), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    missing = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    missing[0] = False
    daily = draw(st.booleans())
    start = draw(st.sampled_from(["2023-12-27", "2024-02-26", "2024-03-29"]))
    return bars_from(prices, gaps, missing, start, "D" if daily else "h"), daily


def pandas_reference(columns, timeframe):
    """The HTF bars with pandas' own calendar periods and groupby, and per base bar the HTF
    close it may see: the previous existing period's."""
    index = pd.to_datetime(columns[TIME])
    frame = pd.DataFrame({k: columns[k] for k in ("open", "high", "low", "close", "volume")},
                         index=index)  # fmt: skip
    period = index.to_period(PANDAS_PERIOD[timeframe])
    kept = frame[np.isfinite(frame["close"].to_numpy())]
    grouped = kept.groupby(period[np.isfinite(frame["close"].to_numpy())])
    htf = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last",
                       "volume": "sum"})  # fmt: skip
    # each bar sees the last HTF bar of an earlier period (a period without bars has none)
    earlier = np.searchsorted(htf.index.asi8, period.asi8, side="left") - 1
    seen_values = np.where(earlier >= 0, htf["close"].to_numpy()[np.maximum(earlier, 0)], np.nan)
    return htf, np.asarray(seen_values, dtype=np.float64)


@settings(max_examples=150, deadline=None)
@given(random_bars(), st.sampled_from(["1d", "1w", "1mo"]))
def test_resampled_bars_and_visibility_equal_pandas(drawn, timeframe):
    columns, daily = drawn
    if daily and timeframe == "1d":
        timeframe = "1w"
    keys = period_keys(columns[TIME], timeframe)[np.isfinite(columns["close"])]
    if len(keys) > 1 and len(np.unique(keys)) == len(keys):  # every period one bar: refused
        with pytest.raises(ConfigError, match="not above the bars' own interval"):
            resample(columns, timeframe)
        return
    htf, _ = resample(columns, timeframe)
    want, seen = pandas_reference(columns, timeframe)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(htf[name], want[name].to_numpy(), err_msg=name)
    table, _ = indicator_table(columns, [Indicator("price", timeframe=timeframe)])
    np.testing.assert_array_equal(table[0], seen)


@settings(max_examples=100, deadline=None)
@given(random_bars(), st.sampled_from(["1w", "1mo"]), st.integers(0, 119), st.floats(0.5, 2))
def test_changing_bars_after_t_leaves_every_htf_value_up_to_t(drawn, timeframe, t, factor):
    columns, _ = drawn
    n = len(columns["close"])
    t = t % n
    changed = {k: v.copy() for k, v in columns.items()}
    for name in ("open", "high", "low", "close"):
        changed[name][t + 1 :] *= factor
    wanted = [Indicator("price", timeframe=timeframe), Indicator("ema", (2,), timeframe=timeframe),
              Indicator("rolling_max", (2,), "high", timeframe=timeframe)]  # fmt: skip
    try:
        before, _ = indicator_table(columns, wanted)
    except ConfigError:
        return
    after, _ = indicator_table(changed, wanted)
    np.testing.assert_array_equal(before[:, : t + 1], after[:, : t + 1])


def test_bad_timeframes_are_refused_in_one_line():
    spy, _ = load_sample("SPY", "1d")
    columns = bar_columns(spy.iloc[-300:])
    with pytest.raises(ConfigError, match=r"timeframe '1d' is not above the bars' own interval"):
        indicator_table(columns, [Indicator("ema", (5,), timeframe="1d")])
    no_time = {k: v for k, v in columns.items() if k != TIME}
    with pytest.raises(ConfigError, match="needs timestamped bars"):
        indicator_table(no_time, [Indicator("ema", (5,), timeframe="1w")])
    with pytest.raises(ConfigError, match="needs timestamped bars"):  # Renko bricks
        ivybt.backtest("bbkc_squeeze", **SAMPLE, params=HTF, bars="renko", renko={"box": 5.0})
    assert set(TIMEFRAMES) >= {"1d", "1w", "1mo", "4h"}


def test_hourly_bars_see_the_previous_utc_day():
    frame, _ = load_sample("EURUSD", "1h")
    frame = frame.iloc[:500]
    table, _ = indicator_table(bar_columns(frame), [Indicator("price", timeframe="1d")])
    days = frame.index.tz_convert("UTC").normalize()
    last_close = frame["close"].groupby(days).last()
    want = last_close.shift(1).reindex(days).to_numpy()
    np.testing.assert_array_equal(table[0], want)


def test_check_lookahead_passes_the_htf_filter_and_catches_a_planted_leak(monkeypatch):
    for symbol, interval, htf in (("SPY", "1d", 2), ("SPY", "1d", 3), ("EURUSD", "1h", 1)):
        report = check_lookahead("bbkc_squeeze", symbol=symbol, interval=interval,
                                 source="sample", params={"htf_ema": 5, "htf": htf}, cuts=30,
                                 seed=1)  # fmt: skip
        assert report.ok, (symbol, htf, report.first_difference)

    real = timeframes.resample

    def leaky(columns, timeframe):
        """Sees the HTF bar still forming (the period bar t belongs to): a look-ahead."""
        htf, visible = real(columns, timeframe)
        return htf, np.minimum(visible + 1, len(htf["close"]) - 1)

    monkeypatch.setattr(tables, "resample", leaky)
    report = check_lookahead("bbkc_squeeze", **SAMPLE, params=HTF, cuts=30, seed=1)
    assert not report.ok
    assert report.first_difference.kind == "indicator"
    assert report.first_difference.name in ("close on 1w", "ema(10) of close on 1w")
    universe = check_lookahead("bbkc_squeeze", symbols=["SPY", "MSFT"], source="sample",
                               start="2010-01-01", params=HTF, cuts=20, seed=1)  # fmt: skip
    assert not universe.ok and universe.first_difference.kind == "indicator"
    assert universe.first_difference.name.endswith("on 1w of SPY")


def test_htf_filter_grid_rows_equal_backtests_bit_for_bit(tmp_path):
    space = {"htf_ema": "0,5,10", "htf": "2,3", "momentum_window": "6,12"}
    result = ivybt.grid("bbkc_squeeze", **SAMPLE, params=space, out=tmp_path / "g")
    assert len(result.table) == 12
    returns = set()
    for _, row in result.table.iterrows():
        params = {k.removeprefix("param_"): int(row[k]) for k in
                  ("param_htf_ema", "param_htf", "param_momentum_window")}  # fmt: skip
        single = ivybt.backtest("bbkc_squeeze", **SAMPLE, params=params)
        for metric, value in single.metrics.items():
            assert row[metric] == value or (np.isnan(row[metric]) and np.isnan(value)), metric
        returns.add(single.metrics["total_return"])
    assert len(returns) > 4  # the filter changes the trades


def test_htf_filter_in_a_search_a_walk_forward_and_a_universe(tmp_path):
    searched = ivybt.optimize("bbkc_squeeze", **SAMPLE, params={"htf_ema": "0:20:5",
                              "momentum_window": "6:18:6"}, trials=8, seed=4,
                              results_dir=tmp_path)  # fmt: skip
    best = searched.best_trials()[0]
    single = ivybt.backtest("bbkc_squeeze", **SAMPLE, params=best.params)
    assert best.value == pytest.approx(single.metrics["sharpe"], abs=1e-12)
    walked = ivybt.walk_forward("bbkc_squeeze", **SAMPLE, params={"htf_ema": "0,10",
                                "htf": "2,3"}, in_sample=750, out_of_sample=250,
                                out=tmp_path / "wf")  # fmt: skip
    folds = pd.read_parquet(walked.folder / "folds.parquet")
    assert len(folds) >= 3 and folds["param_htf_ema"].isin([0, 10]).all()
    universe = ivybt.backtest("bbkc_squeeze", symbols=["SPY", "MSFT", "AAPL"],
                              source="sample", start="2010-01-01", params=HTF)  # fmt: skip
    alone = ivybt.backtest("bbkc_squeeze", symbols=["SPY"], source="sample",
                           start="2010-01-01", params=HTF)  # fmt: skip
    spy = ivybt.backtest("bbkc_squeeze", **SAMPLE, params=HTF)
    assert same_metrics(alone.metrics, spy.metrics) and universe.metrics["n_trades"] > 0
