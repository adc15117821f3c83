"""`ivybt signals` (#17): what a preset holds now equals what its backtest held, bar by bar.

For every bar D of a 40-bar window, `signals(as_of=D)` (data cut at D's 00:00 UTC: the bars
up to the session before) must report the side the backtest held on day D (after D's open
fill), the target weight it traded to and the stop levels its kernel used: for one symbol, a
universe, and stops. Offline, on bundled data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.runs.presets import save_preset
from ivybt.runs.signals import SIGNAL_COLUMNS, default_max_age, signals

START, END = "2012-01-01", "2014-01-01"
WINDOW = slice(200, 240)  # 40 bars of the backtest, well after the indicators' warm-up
SIDE = {"long": 1, "short": -1, "flat": 0}
INTRABAR = ("stop_loss", "take_profit", "trailing")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """Backtests on bundled data saved as presets in one presets folder."""
    root = tmp_path_factory.mktemp("signal-runs")
    presets = root / "presets"
    common = {"source": "sample", "start": START, "end": END, "params": {"fast": 5, "slow": 20}}
    settings = {
        "single": {"symbol": "SPY"},
        "stops": {"symbol": "SPY", "direction": "both", "sl": 0.02, "trail": 0.03,
                  "max_bars": 6},
        "universe": {"symbols": "SPY,MSFT,AAPL", "direction": "both"},
        "universe-stops": {"symbols": "SPY,MSFT,AAPL", "sl": 0.02, "tp": 0.03,
                           "max_bars": 10},
        "weights": {"symbols": "SPY,MSFT,AAPL", "fill": "close", "commission": 0.0,
                    "slippage": 0.0, "portfolio": {"weights": "inverse_vol", "vol_window": 20,
                    "rebalance": "daily", "max_weight": 0.4}},
        "renko": {"symbol": "SPY", "bars": "renko", "renko": {"atr": 14},
                  "params": {"fast": 3, "slow": 10}},
        "short-half": {"symbol": "SPY", "direction": "short", "size": 0.5},
        "close-fills": {"symbol": "SPY", "fill": "close", "sl": 0.02, "max_bars": 5},
        "monthly": {"symbols": "SPY,MSFT,AAPL", "portfolio": {"rebalance": "monthly",
                    "band": 0.02}},
        "ranked": {"strategy": "momentum_rotation", "symbols": "SPY,MSFT,AAPL,GOOG",
                   "params": {"lookback": 40, "skip": 5, "k": 2},
                   "portfolio": {"weights": "score"}},
    }  # fmt: skip
    results = {}
    for name, extra in settings.items():
        options = {**common, **extra}
        strategy = options.pop("strategy", "sma_cross")
        results[name] = ivybt.backtest(strategy, out=root / name, **options)
        save_preset(root / name, name, presets_dir=presets)
    return presets, results


def _held_after_open(trades: pd.DataFrame, day: pd.Timestamp) -> tuple[int, pd.Series | None]:
    """The side held on `day` after its open fills (next-open fills), and that trade."""
    for row in trades.itertuples(index=False):
        if row.entry_time <= day and (
            row.is_open or row.exit_time > day
            or (row.exit_time == day and row.exit_reason in INTRABAR)
        ):  # fmt: skip
            return SIDE[row.side], pd.Series(row._asdict())
    return 0, None


def _replay(presets: Path, name: str, days: pd.DatetimeIndex) -> list[pd.DataFrame]:
    return [signals(name, as_of=day, source="sample", presets_dir=presets) for day in days]


def _check_changes(tables: list[pd.DataFrame], days: pd.DatetimeIndex) -> None:
    """`change` and `since` agree with the sides of consecutive days."""
    for i in range(1, len(tables)):
        before, now = tables[i - 1], tables[i]
        for (_, a), (_, b) in zip(before.iterrows(), now.iterrows(), strict=True):
            old, new = SIDE[a["side"]], SIDE[b["side"]]
            expected = ("hold" if old == new else "enter" if old == 0 else
                        "exit" if new == 0 else "flip")  # fmt: skip
            assert b["change"] == expected, (days[i], b["symbol"])
            if expected != "hold":  # the last complete bar decided (or stopped) it
                assert b["since"] == days[i - 1], (days[i], b["symbol"])
            elif pd.notna(b["since"]):
                assert b["since"] <= days[i - 1]


def test_single_symbol_as_of_equals_the_backtest_on_every_bar(runs: tuple) -> None:
    presets, results = runs
    result = results["single"]
    days = result.equity.index[WINDOW]
    tables = _replay(presets, "single", days)
    sides = []
    for day, table in zip(days, tables, strict=True):
        assert len(table) == 1 and list(table.columns) == list(SIGNAL_COLUMNS)
        row = table.iloc[0]
        expected, _ = _held_after_open(result.trades, day)
        assert SIDE[row["side"]] == expected, day
        assert row["weight"] == expected * 1.0  # size 1: the one symbol's weight
        previous = result.prices.index[result.prices.index.get_loc(day) - 1]
        assert row["last_bar"] == previous  # the last complete bar before day's 00:00 UTC
        assert row["price"] == result.prices.loc[previous, "close"]
        ended = previous + pd.Timedelta(days=1)  # a daily bar ends at 24:00 UTC of its date
        assert not row["stale"] and row["age_days"] == (day - ended) / pd.Timedelta(days=1)
        held_units = result.equity.loc[day, "units"]
        assert np.sign(held_units) == expected  # no stops: the day's close holds it too
        sides.append(expected)
    assert len(set(sides)) > 1  # the window holds changes
    _check_changes(tables, days)


def test_stops_as_of_equal_the_backtest_and_its_levels(runs: tuple) -> None:
    presets, results = runs
    result = results["stops"]
    execution = result.config.execution
    days = result.equity.index[WINDOW]
    tables = _replay(presets, "stops", days)
    opens = result.prices["open"]
    checked = {"entry": 0, "stop": 0, "time": 0}
    for i, (day, table) in enumerate(zip(days, tables, strict=True)):
        row = table.iloc[0]
        expected, trade = _held_after_open(result.trades, day)
        assert SIDE[row["side"]] == expected, day
        if trade is None:
            assert np.isnan(row["stop_loss"]) and pd.isna(row["time_stop_bars"])
            continue
        side = SIDE[trade["side"]]
        if trade["entry_time"] < day:  # levels of a fill already made: the kernel's
            assert row["stop_loss"] == trade["entry_price"] * (1.0 - side * execution.sl)
            checked["entry"] += 1
        else:  # entered at day's open, not known at 00:00: levels of a fill at the last close
            close = result.prices["close"].iloc[result.prices.index.get_loc(day) - 1]
            fill = close * (1.0 + side * execution.slippage)
            assert row["stop_loss"] == pytest.approx(fill * (1.0 - side * execution.sl))
            assert row["trailing_stop"] == pytest.approx(close * (1.0 - side * execution.trail))
            row = row.copy()  # the levels the kernel used come from the real fill
            row["stop_loss"] = trade["entry_price"] * (1.0 - side * execution.sl)
        entry = result.prices.index.get_loc(trade["entry_time"])
        bars_left = entry + execution.max_bars - (result.prices.index.get_loc(day) - 1)
        assert row["time_stop_bars"] == max(bars_left, 0)
        if trade["exit_time"] == day and trade["exit_reason"] in ("stop_loss", "trailing"):
            level = row["stop_loss"] if trade["exit_reason"] == "stop_loss" else (
                row["trailing_stop"])  # fmt: skip
            at_level = level * (1.0 - side * execution.slippage)
            gapped = opens[day] * (1.0 - side * execution.slippage)
            assert trade["exit_price"] in (pytest.approx(at_level, rel=1e-12),
                                           pytest.approx(gapped, rel=1e-12)), day  # fmt: skip
            if trade["exit_price"] == pytest.approx(gapped, rel=1e-12):
                assert side * (opens[day] - level) <= 0  # opened beyond the level
            checked["stop"] += 1
        if i + 1 < len(days) and trade["exit_time"] == days[i + 1] and (
                trade["exit_reason"] == "time"):  # fmt: skip
            assert row["time_stop_bars"] == 1  # decided at the close of day i
            assert tables[i + 1].iloc[0]["reason"] == "time"
            checked["time"] += 1
    assert all(count > 0 for count in checked.values()), checked
    _check_changes(tables, days)


@pytest.mark.parametrize("name", ["universe", "universe-stops"])
def test_universe_as_of_equals_the_backtest_on_every_bar(runs: tuple, name: str) -> None:
    presets, results = runs
    result = results[name]
    days = result.equity.index[WINDOW]
    tables = _replay(presets, name, days)
    changes = 0
    for day, table in zip(days, tables, strict=True):
        assert list(table["symbol"]) == ["SPY", "MSFT", "AAPL"]
        sides = {}
        for row in table.itertuples(index=False):
            expected, _ = _held_after_open(result.trades[result.trades["symbol"] == row.symbol],
                                           day)  # fmt: skip
            assert SIDE[row.side] == expected, (day, row.symbol)
            sides[row.symbol] = expected
            changes += row.change != "hold"
        if name == "universe":  # equal weights among the sides of the last rebalance
            count = sum(1 for side in sides.values() if side != 0)
            for row in table.itertuples(index=False):
                assert row.weight == pytest.approx(sides[row.symbol] / count if count else 0.0)
        assert table["weight"].abs().sum() <= 1.0 + 1e-12
    assert changes > 0
    _check_changes(tables, days)


@pytest.mark.parametrize("name", ["renko", "short-half", "close-fills", "monthly", "ranked"])
def test_other_settings_as_of_equal_the_backtest(runs: tuple, name: str) -> None:
    """Renko bricks, a short-only half size, close fills with stops, a monthly schedule with
    a band, a cross-sectional strategy with score weights: the side held every day."""
    presets, results = runs
    result = results[name]
    close_fills = result.config.execution.fill == "close"
    trades = result.trades
    index = result.equity.index
    for i in range(WINDOW.start, WINDOW.stop):
        day = index[i]
        table = signals(name, as_of=day, source="sample", presets_dir=presets)
        for row in table.itertuples(index=False):
            own = trades[trades["symbol"] == row.symbol] if "symbol" in trades else trades
            if close_fills:  # held since the close before (the position taken there)
                held = own[(own["entry_time"] <= index[i - 1])
                           & (own["is_open"] | (own["exit_time"] > index[i - 1]))]  # fmt: skip
                expected = SIDE[held["side"].iloc[0]] if len(held) else 0
            else:
                expected, _ = _held_after_open(own, day)
            assert SIDE[row.side] == expected, (day, row.symbol)
            assert np.sign(row.weight) == expected
            if "symbol" not in trades:
                assert row.weight == expected * result.config.execution.size


def test_weights_are_the_targets_after_normalisation_and_cap(runs: tuple) -> None:
    """Inverse-volatility weights capped at 0.4, rebalanced every day at the close without
    costs: the backtest holds its target weights at each close, and signals report them."""
    presets, results = runs
    result = results["weights"]
    days = result.equity.index[WINDOW]
    capped = 0
    for day, table in zip(days, _replay(presets, "weights", days), strict=True):
        previous = result.weights.index[result.weights.index.get_loc(day) - 1]
        held = result.weights.loc[previous]
        for row in table.itertuples(index=False):
            assert row.weight == pytest.approx(held[row.symbol], rel=1e-8, abs=1e-12)
            assert abs(row.weight) <= 0.4 + 1e-12
            capped += abs(row.weight) == pytest.approx(0.4)
    assert capped > 0  # the cap acted


def test_stale_data_exit_3_and_max_age(runs: tuple) -> None:
    presets, _ = runs
    runner = CliRunner()
    args = ["signals", "single", "--source", "sample", "--presets-dir", str(presets)]
    stale = runner.invoke(cli, args)  # now: the bundled SPY ended in 2020
    assert stale.exit_code == 3, stale.output
    assert "SPY (preset single): its last bar, 2020-08-28, ended" in stale.output
    assert "2020-08-28*" in stale.output
    fine = runner.invoke(cli, [*args, "--max-age", "100000d"])
    assert fine.exit_code == 0, fine.output
    late = runner.invoke(cli, [*args, "--as-of", "2020-09-10"])  # 13 days after the last bar
    assert late.exit_code == 3
    assert runner.invoke(cli, [*args, "--as-of", "2020-09-01"]).exit_code == 0  # 3 days
    table = signals("single", as_of="2020-09-10", source="sample", presets_dir=presets,
                    max_age="14d")  # fmt: skip
    assert not table["stale"].any() and table["age_days"].iloc[0] == pytest.approx(12.0)
    assert default_max_age("1d") == pd.Timedelta(days=4)
    assert default_max_age("1h") == pd.Timedelta(days=4)
    assert default_max_age("1wk") == pd.Timedelta(days=10)
    bad = runner.invoke(cli, [*args, "--max-age", "soon"])
    assert bad.exit_code == 2 and "positive duration" in bad.output


def test_the_last_complete_bar(runs: tuple) -> None:
    """A daily bar is complete once its UTC date is over: at any time of 2020-06-01 the last
    complete bar is Friday 2020-05-29; from 2020-06-02 00:00 it is 2020-06-01."""
    presets, _ = runs

    def last_bar(moment: str) -> pd.Timestamp:
        table = signals("single", as_of=moment, source="sample", presets_dir=presets)
        return table["last_bar"].iloc[0]

    assert last_bar("2020-06-01") == pd.Timestamp("2020-05-29")
    assert last_bar("2020-06-01 20:30") == pd.Timestamp("2020-05-29")
    assert last_bar("2020-06-01T23:59:59+00:00") == pd.Timestamp("2020-05-29")
    assert last_bar("2020-06-02") == pd.Timestamp("2020-06-01")
    assert last_bar("2020-06-02T01:00:00+02:00") == pd.Timestamp("2020-05-29")  # 23:00 UTC
    with pytest.raises(ConfigError, match="after its last complete bar"):
        signals("single", as_of="2011-06-01", source="sample", presets_dir=presets)


def test_json_csv_and_the_python_api_give_the_cli_table(runs: tuple) -> None:
    presets, _ = runs
    args = ["signals", "stops", "universe", "--as-of", "2013-03-12", "--source", "sample",
            "--presets-dir", str(presets), "--json", "out.json", "--csv", "out.csv"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "wrote out.json" in result.output and "wrote out.csv" in result.output
    table = ivybt.signals(["stops", "universe"], as_of="2013-03-12", source="sample",
                          presets_dir=presets)  # fmt: skip
    assert list(table["preset"]) == ["stops", "universe", "universe", "universe"]
    assert table.attrs["as_of"] == "2013-03-12T00:00:00+00:00"
    rows = json.loads(Path("out.json").read_text())
    assert [list(row) for row in rows] == [list(SIGNAL_COLUMNS)] * len(table)
    from_json = pd.DataFrame(rows)
    from_csv = pd.read_csv("out.csv", keep_default_na=False, na_values=[""])
    for frame in (from_json, from_csv):
        for column in ("since", "last_bar"):
            frame[column] = pd.to_datetime(frame[column])
        frame["reason"] = ["" if pd.isna(v) else v for v in frame["reason"]]
        frame["time_stop_bars"] = frame["time_stop_bars"].astype("Int64")
        for column in ("weight", "stop_loss", "take_profit", "trailing_stop", "price"):
            frame[column] = frame[column].astype(float)  # a column of nulls in the JSON
        pd.testing.assert_frame_equal(frame, table, check_dtype=False)
    for line in table["symbol"]:  # the terminal table names every symbol
        assert f" {line} " in result.output


def test_unknown_preset_and_arguments(runs: tuple) -> None:
    presets, _ = runs
    runner = CliRunner()
    missing = runner.invoke(cli, ["signals", "nope", "--presets-dir", str(presets)])
    assert missing.exit_code == 2 and "no preset named 'nope'" in missing.output
    bad = runner.invoke(cli, ["signals", "single", "--as-of", "someday", "--presets-dir",
                              str(presets)])  # fmt: skip
    assert bad.exit_code == 2 and "as_of must be a date" in bad.output
    none = runner.invoke(cli, ["signals"])
    assert none.exit_code == 2


def test_auto_source_fetches_only_what_is_missing_and_falls_back_offline(
    tmp_path: Path, fake_yahoo: object
) -> None:
    from ivybt.errors import SampleFallbackWarning

    fake_yahoo.serve_sample("AAPL")  # type: ignore[attr-defined]
    ivybt.backtest("sma_cross", symbol="AAPL", source="sample", start="2016-01-01",
                   params={"fast": 5, "slow": 20}, out=tmp_path / "aapl")  # fmt: skip
    save_preset(tmp_path / "aapl", "aapl")
    cache = tmp_path / "cache"
    first = signals("aapl", as_of="2017-06-01", cache_dir=cache)  # source auto: Yahoo
    assert first["last_bar"].iloc[0] == pd.Timestamp("2017-05-31")
    calls = len(fake_yahoo.calls)  # type: ignore[attr-defined]
    again = signals("aapl", as_of="2017-06-01", cache_dir=cache)
    assert len(fake_yahoo.calls) == calls  # type: ignore[attr-defined]  # all cached
    later = signals("aapl", as_of="2017-06-06", cache_dir=cache)
    fetched = fake_yahoo.calls[calls:]  # type: ignore[attr-defined]
    assert len(fetched) == 1 and fetched[0][2] >= pd.Timestamp("2017-05-20")
    assert later["last_bar"].iloc[0] == pd.Timestamp("2017-06-05")
    pd.testing.assert_frame_equal(first, again)
    sample = signals("aapl", as_of="2017-06-06", source="sample")
    pd.testing.assert_frame_equal(later.drop(columns="price"), sample.drop(columns="price"))
    assert later["price"].iloc[0] == pytest.approx(sample["price"].iloc[0], rel=1e-12)
    fake_yahoo.script.append("network")  # type: ignore[attr-defined]
    with pytest.warns(SampleFallbackWarning, match="using the bundled sample"):
        offline = signals("aapl", as_of="2017-06-06", cache_dir=tmp_path / "empty-cache")
    pd.testing.assert_frame_equal(offline, sample)
