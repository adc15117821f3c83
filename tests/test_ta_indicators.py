"""pandas-ta indicators as indicator rows (issue #16, section 2): rows equal pandas-ta's own
calls, one call per distinct setting shared by a grid's combinations and cached for the run,
bad names in one line with "did you mean", the catalogue free of look-ahead, `ivybt
indicators`, and the built-in supertrend and adx_trend in every kind of run."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
import ivybt.indicators.ta as ta_module
from ivybt.cli import cli
from ivybt.data.sample import load_sample
from ivybt.engine.tables import bar_columns, indicator_table
from ivybt.errors import ConfigError
from ivybt.indicators.ta import LOOKS_AHEAD, WRONG, stem, ta_catalogue
from ivybt.strategies import Indicator
from ivybt.studies.grid import space_indicators
from ivybt.studies.space import build_space
from tests.tolerances import same_metrics

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandas_ta

SAMPLE = {"symbol": "SPY", "source": "sample", "start": "2012-01-01"}


@pytest.fixture(scope="module")
def spy():
    frame, _ = load_sample("SPY", "1d")
    return frame.iloc[-1200:]


@pytest.fixture(autouse=True)
def _fresh_cache():
    ta_module._cache.clear()
    ta_module._cache_bytes = 0


def own(function, frame, **settings):
    """pandas-ta called directly, as a user would, with pandas-ta's own implementation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(pandas_ta, function)(
            high=frame["high"], low=frame["low"], close=frame["close"], talib=False, **settings
        )


@pytest.mark.parametrize(
    ("function", "settings", "column"),
    [("supertrend", {"length": 7, "multiplier": 2.5}, "SUPERTd"),
     ("supertrend", {"length": 10, "multiplier": 3.0}, "SUPERT_10_3.0"),
     ("adx", {"length": 14}, "DMN"),
     ("rsi", {"length": 9}, ""),
     ("bbands", {"length": 20, "lower_std": 1.5}, "BBL"),
     ("kc", {"length": 20, "scalar": 2}, "KCUe"),
     ("squeeze", {}, "SQZ_ON")],
)  # fmt: skip
def test_a_row_is_pandas_tas_own_column(spy, function, settings, column):
    table, _ = indicator_table(
        bar_columns(spy), [Indicator.ta(function, column=column, **settings)]
    )
    if function == "rsi":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = pandas_ta.rsi(spy["close"], talib=False, **settings)
    else:
        frame = own(function, spy, **settings)
        picked = [c for c in frame.columns if column in (c, stem(c))]
        assert len(picked) == 1
        want = frame[picked[0]]
    np.testing.assert_array_equal(table[0], want.to_numpy(dtype=np.float64))


def test_talib_is_never_used_even_where_it_is_installed(spy):
    """pandas-ta switches to TA-Lib when it can import it; IvyBT asks for pandas-ta's own
    arithmetic, so a row does not depend on what else is installed."""
    pytest.importorskip("talib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_talib = pandas_ta.rsi(spy["close"], length=14, talib=True).to_numpy()
        without = pandas_ta.rsi(spy["close"], length=14, talib=False).to_numpy()
    assert not np.allclose(with_talib, without, equal_nan=True, rtol=0, atol=1e-12)
    table, _ = indicator_table(bar_columns(spy), [Indicator.ta("rsi", length=14)])
    np.testing.assert_array_equal(table[0], without)


def test_source_replaces_close_and_missing_bars_are_left_out(spy):
    columns = bar_columns(spy)
    table, _ = indicator_table(columns, [Indicator.ta("ema", length=10, source="high")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pandas_ta.ema(spy["high"], length=10, talib=False).to_numpy()
    np.testing.assert_array_equal(table[0], want)
    gappy = {name: values.copy() for name, values in columns.items()}
    gappy["close"][[50, 51, 300]] = np.nan
    table, _ = indicator_table(gappy, [Indicator.ta("rsi", length=5)])
    kept = np.isfinite(gappy["close"])
    assert np.isnan(table[0][~kept]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pandas_ta.rsi(pd.Series(gappy["close"][kept]), length=5, talib=False)
    np.testing.assert_array_equal(table[0][kept], want.to_numpy())


@pytest.mark.parametrize(
    ("declare", "message"),
    [(lambda: Indicator.ta("supertrnd"),
      r"unknown pandas-ta indicator 'supertrnd' \(did you mean 'supertrend'\?\)"),
     (lambda: Indicator.ta("supertrend", lenght=3),
      r"no setting 'lenght' \(did you mean 'length'"),
     (lambda: Indicator.ta("dpo", length=20), r"dpo looks ahead: .* pass centered=False"),
     (lambda: Indicator.ta("ichimoku", column="ICS"), r"ichimoku looks ahead"),
     (lambda: Indicator.ta("zigzag"), r"zigzag looks ahead"),
     (lambda: Indicator.ta("ema", length=5, offset=-2), r"offset -2 < 0 moves later values"),
     (lambda: Indicator.ta("ema", length=[5]), r"must be a number, a bool or a string"),
     (lambda: Indicator.ta("ema", length=5, timeframe="1wk"),
      r"unknown timeframe '1wk' \(did you mean '1w'\?\)"),
     (lambda: Indicator("emaa", (5,)), r"unknown indicator kind 'emaa' \(did you mean 'ema'")],
)  # fmt: skip
def test_bad_declarations_are_one_line_with_a_suggestion(declare, message):
    with pytest.raises(ConfigError, match=message) as info:
        declare()
    assert "\n" not in str(info.value)


def test_bad_columns_are_one_line_with_a_suggestion(spy):
    columns = bar_columns(spy)
    with pytest.raises(ConfigError, match=r"no column 'SUPERd' \(did you mean 'SUPERTd'\?\)"):
        indicator_table(columns, [Indicator.ta("supertrend", column="SUPERd")])
    with pytest.raises(ConfigError, match="gives several columns; choose one with column="):
        indicator_table(columns, [Indicator.ta("adx")])
    with pytest.raises(ConfigError, match="gives one column, 'EMA_5', not 'X'"):
        indicator_table(columns, [Indicator.ta("ema", length=5, column="X")])
    accepted = Indicator.ta("dpo", length=20, centered=False)  # the setting that avoids it
    assert indicator_table(columns, [accepted])[0].shape == (1, len(spy))


def test_equal_settings_share_one_call_and_the_run_reuses_it(spy, monkeypatch):
    calls = []
    real = ta_module.ta_frame

    def counting(name, columns, keywords, source):
        calls.append((name, tuple(sorted(keywords.items()))))
        return real(name, columns, keywords, source)

    monkeypatch.setattr(ta_module, "ta_frame", counting)
    space = build_space(ivybt.strategies.get_strategy("adx_trend"),
                        {"length": "7:21:7", "threshold": "15:40:5"})  # fmt: skip
    distinct, slot_ids = space_indicators(space)
    assert len(space) == 18 and len(distinct) == 9  # 3 lengths x 3 columns
    assert slot_ids.shape == (18, 3)
    columns = bar_columns(spy)
    first, _ = indicator_table(columns, distinct)
    assert sorted(set(calls)) == sorted(calls) and len(calls) == 3  # one per length
    again, _ = indicator_table(columns, distinct)
    assert len(calls) == 3  # the run cache
    np.testing.assert_array_equal(first, again)
    changed = {**columns, "close": columns["close"] * 1.01}
    indicator_table(changed, distinct)
    assert len(calls) == 6  # other bars: computed again


def test_worker_processes_give_the_same_rows(spy, monkeypatch):
    distinct = [Indicator.ta("supertrend", length=n, multiplier=2.0, column="SUPERTd")
                for n in range(5, 9)]  # fmt: skip
    serial, _ = indicator_table(bar_columns(spy), distinct)
    ta_module._cache.clear()
    monkeypatch.setattr(ta_module, "PARALLEL_CALLS", 2)
    monkeypatch.setattr(ta_module.os, "cpu_count", lambda: 2)
    parallel, _ = indicator_table(bar_columns(spy), distinct)
    np.testing.assert_array_equal(serial, parallel)


def _call(function, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = ta_module.ta_frame(function, bar_columns(frame), {}, "close")
        except ConfigError:
            return None
    if isinstance(out, pd.Series):
        out = out.to_frame()
    return None if out is None else out.select_dtypes("number").to_numpy(dtype=np.float64)


def test_no_catalogue_function_looks_ahead_and_the_refused_ones_do():
    """Every function of the catalogue with its defaults, on 900 bars and cut after bars 650
    and 800 (vhm needs 610): the cut history's rows equal the full history's up to the cut,
    except for `LOOKS_AHEAD`'s functions, which differ (so the list is not stale)."""
    frame, _ = load_sample("SPY", "1d")
    frame = frame.iloc[-900:]
    leaking = set()
    for function in ta_catalogue():
        full = _call(function, frame)
        if full is None:
            continue
        for cut in (650, 800):
            part = _call(function, frame.iloc[: cut + 1])
            if part is None or part.shape != full[: cut + 1].shape:
                continue
            same = (part == full[: cut + 1]) | (np.isnan(part) & np.isnan(full[: cut + 1]))
            same |= np.isclose(part, full[: cut + 1], rtol=1e-9, atol=0.0)
            if not same.all():
                leaking.add(function)
    assert leaking - set(WRONG) == set(LOOKS_AHEAD)


def test_ivybt_indicators_lists_and_describes(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(cli, ["indicators"])
    assert listed.exit_code == 0, listed.output
    assert "pandas-ta 0.4.71b0" in listed.output and "supertrend" in listed.output
    assert "dpo*" in listed.output and "sma " in listed.output
    described = runner.invoke(cli, ["indicators", "supertrend"])
    assert described.exit_code == 0, described.output
    assert "SUPERTd_7_3.0" in described.output and "multiplier" in described.output
    unknown = runner.invoke(cli, ["indicators", "supertrnd"])
    assert unknown.exit_code != 0
    assert "did you mean 'supertrend'?" in unknown.output and "Traceback" not in unknown.output


@pytest.mark.parametrize("name", ["supertrend", "adx_trend"])
def test_grid_rows_equal_backtests_bit_for_bit(name, tmp_path):
    space = {"supertrend": {"length": "7,10", "multiplier": "2,3.5"},
             "adx_trend": {"length": "7,14", "threshold": "20,30"}}[name]  # fmt: skip
    result = ivybt.grid(name, **SAMPLE, params=space, out=tmp_path / "g")
    for _, row in result.table.iterrows():
        params = {key.removeprefix("param_"): row[key] for key in result.table.columns
                  if key.startswith("param_")}  # fmt: skip
        params["length"] = int(params["length"])
        single = ivybt.backtest(name, **SAMPLE, params=params)
        for metric, value in single.metrics.items():
            assert row[metric] == value or (np.isnan(row[metric]) and np.isnan(value)), metric


def test_supertrend_in_a_search_a_walk_forward_and_a_universe(tmp_path):
    searched = ivybt.optimize("supertrend", **SAMPLE, params={"length": "5:20:5",
                              "multiplier": "2:4:1"}, trials=8, seed=3,
                              results_dir=tmp_path)  # fmt: skip
    best = searched.best_trials()[0]
    single = ivybt.backtest("supertrend", **SAMPLE, params=best.params)
    assert best.value == pytest.approx(single.metrics["sharpe"], abs=1e-12)
    walked = ivybt.walk_forward("adx_trend", **SAMPLE, params={"length": "7,14",
                                "threshold": "20,30"}, in_sample=500, out_of_sample=250,
                                out=tmp_path / "wf")  # fmt: skip
    folds = pd.read_parquet(walked.folder / "folds.parquet")
    assert len(folds) >= 3 and folds["param_length"].isin([7, 14]).all()
    universe = ivybt.backtest("supertrend", symbols=["SPY", "AAPL", "MSFT"], source="sample",
                              start="2015-01-01")  # fmt: skip
    assert universe.metrics["n_trades"] > 0
    alone = ivybt.backtest("supertrend", symbols=["SPY"], source="sample", start="2015-01-01")
    spy = ivybt.backtest("supertrend", symbol="SPY", source="sample", start="2015-01-01")
    assert same_metrics(alone.metrics, spy.metrics)  # a one-symbol universe: the single run


def test_the_wrong_functions_are_refused_and_still_wrong(spy):
    """pandas-ta 0.4.71b0's own cci and wcp disagree with TA-Lib's CCI and WCLPRICE by far
    more than a convention: refused with the reason, and still wrong (so the list is not
    stale once pandas-ta fixes them)."""
    talib = pytest.importorskip("talib")
    for name in ("cci", "wcp"):
        with pytest.raises(ConfigError, match=f"pandas-ta {name} is refused: pandas-ta 0.4.71b0"):
            Indicator.ta(name)
    high, low, close = (spy[c] for c in ("high", "low", "close"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cci = pandas_ta.cci(high, low, close, length=20, talib=False).to_numpy()[-100:]
        wcp = pandas_ta.wcp(high, low, close, talib=False).to_numpy()[-100:]
    want_cci = talib.CCI(high.to_numpy(), low.to_numpy(), close.to_numpy(), 20)[-100:]
    want_wcp = talib.WCLPRICE(high.to_numpy(), low.to_numpy(), close.to_numpy())[-100:]
    assert np.max(np.abs(cci)) > 10 * np.max(np.abs(want_cci))
    np.testing.assert_allclose(wcp, 4 * want_wcp, rtol=1e-12)
