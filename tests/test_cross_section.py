"""Cross-sectional strategies (issue #15): the score and rank kernels against their twins,
momentum_rotation end to end, look-ahead, schedules and the errors a user meets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ivybt
from ivybt.cli import cli
from ivybt.data.panel import load_panel, panel_from_frames
from ivybt.engine.portfolio import cross_section_scores, panel_targets, rebalance_flags
from ivybt.kernels.cross_section import momentum_score_nb, rank_sides_nb
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.lookahead import check_lookahead
from ivybt.strategies import BUILTIN, CrossSectionalStrategy, Param
from ivybt.strategies.cross_sectional import SELECTIONS
from tests import reference_cross_section as twin

DEMO = ["SPY", "MSFT", "AAPL", "GOOG", "IBM"]
SAMPLE = {"source": "sample"}
MOMENTUM = BUILTIN["momentum_rotation"]

# -- 1. kernels against their twins ----------------------------------------------------------

closes = st.integers(1, 6).flatmap(
    lambda n: arrays(np.float64, st.tuples(st.integers(1, 40), st.just(n)),
                     elements=st.one_of(st.floats(1.0, 100.0), st.just(np.nan)))
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(closes, st.integers(1, 10), st.integers(0, 5))
def test_momentum_scores_equal_pandas(close, lookback, skip):
    out = np.full_like(close, 7.0)
    momentum_score_nb(close, np.array([lookback, skip, 1.0]), np.ones(len(close), np.int8), out)
    np.testing.assert_array_equal(out, twin.momentum_scores(close, lookback, skip))


@st.composite
def ranked_cases(draw):
    n_symbols = draw(st.integers(1, 7))
    n_bars = draw(st.integers(1, 30))
    # small whole numbers: ties on a good share of the bars; NaN: no score
    scores = draw(
        arrays(
            np.float64,
            (n_bars, n_symbols),
            elements=st.one_of(st.integers(-3, 3).map(float), st.just(np.nan)),
        )
    )
    at = draw(arrays(np.int8, n_bars, elements=st.integers(0, 1)))
    first = np.array([draw(st.integers(0, n_bars)) for _ in range(n_symbols)], np.int64)
    last = np.array([draw(st.integers(f - 1, n_bars)) for f in first], np.int64)
    mode = draw(st.sampled_from(list(SELECTIONS)))
    return scores, at, first, last, draw(st.integers(1, 8)), mode


@settings(max_examples=300, deadline=None)
@given(ranked_cases())
def test_rank_sides_equal_the_twin(case):
    scores, at, first, last, k, mode = case
    out = np.full(scores.shape, 7, dtype=np.int8)
    rank_sides_nb(scores, at, first, last, k, SELECTIONS[mode], out)
    np.testing.assert_array_equal(out, twin.rank_sides(scores, at, first, last, k, mode))


def test_ranks_break_ties_by_symbol_order_and_skip_the_unlisted():
    scores = np.array([[1.0, 2.0, 2.0, np.nan, 5.0]])
    first = np.array([0, 0, 0, 0, 1])  # the last symbol is not listed yet
    last = np.full(5, 9)
    out = np.empty((1, 5), np.int8)
    rank_sides_nb(scores, np.ones(1, np.int8), first, last, 2, SELECTIONS["long_short"], out)
    np.testing.assert_array_equal(out[0], [-1, 1, 1, 0, 0])


# -- 2. momentum_rotation end to end ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_panel():
    return load_panel(",".join(DEMO), source="sample")


@pytest.mark.parametrize(("rebalance", "direction"), [("signal", "long"), ("21bars", "both"),
                                                      ("weekly", "long")])  # fmt: skip
def test_momentum_rotation_sides_equal_the_twin_on_real_data(demo_panel, rebalance, direction):
    params = {"lookback": 63, "skip": 5, "k": 2}
    got = panel_targets(demo_panel, MOMENTUM, params, direction, rebalance)
    close = demo_panel.mark
    scores = twin.momentum_scores(close, 63, 5)
    got_scores = cross_section_scores(demo_panel, MOMENTUM, params, rebalance)
    np.testing.assert_array_equal(got_scores, scores)
    schedule = "monthly" if rebalance == "signal" else rebalance  # the strategy's own
    want = twin.rank_sides(scores, rebalance_flags(demo_panel.index, schedule),
                           demo_panel.first, demo_panel.last, 2, "top")  # fmt: skip
    np.testing.assert_array_equal(got, want)
    assert (got.sum(axis=1) <= 2).all() and (got[:, DEMO.index("GOOG")][: demo_panel.first[3]]
                                             == 0).all()  # fmt: skip


def _random_walks(n_symbols: int, n_bars: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-01", periods=n_bars)
    frames = {}
    for s in range(n_symbols):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n_bars)))
        frames[f"S{s}"] = pd.DataFrame(
            {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
             "volume": 1e6}, index=index)  # fmt: skip
    return frames


def test_k_equal_to_n_is_an_equal_weight_portfolio_rebalanced_monthly():
    """With k = N every symbol with a score is held at 1/N, restored at each month's first
    bar: computed here independently from the closes (no costs, fills at the close)."""
    frames = _random_walks(4, 300, seed=3)
    params = {"lookback": 20, "skip": 0, "k": 4}
    run = ivybt.backtest(MOMENTUM, data=frames, params=params, commission=0.0, slippage=0.0,
                         fill="close", portfolio={"rebalance": "monthly"})  # fmt: skip
    close = np.column_stack([frame["close"].to_numpy() for frame in frames.values()])
    index = next(iter(frames.values())).index
    months = rebalance_flags(index, "monthly").astype(bool)
    equity = np.empty(len(index))
    cash, units = 10_000.0, np.zeros(4)
    for t in range(len(index)):
        value = cash + units @ close[t]
        if months[t] and t >= 20:  # every symbol has its 20-bar return from bar 20
            units = value / 4 / close[t]
            cash = value - units @ close[t]
        equity[t] = cash + units @ close[t]
    np.testing.assert_allclose(run.equity["equity"].to_numpy(), equity, rtol=1e-12)
    assert (run.weights.iloc[25:].round(12) >= 0).all().all()


def test_grid_rows_equal_backtests_bit_for_bit():
    space = {"lookback": "21,63", "skip": "0,5", "k": "1,3"}
    result = ivybt.grid(MOMENTUM, symbols=DEMO, params=space, evidence=False, **SAMPLE,
                        portfolio={"rebalance": "21bars"})  # fmt: skip
    table = result.table
    assert len(table) == 8 and table["n_trades"].min() > 0
    for j in (0, 5, int(table["sharpe"].idxmax())):
        row = table.iloc[j]
        params = {name: int(row[f"param_{name}"]) for name in ("lookback", "skip", "k")}
        single = ivybt.backtest(MOMENTUM, symbols=DEMO, params=params, **SAMPLE,
                                portfolio={"rebalance": "21bars"})  # fmt: skip
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)


# -- 3. look-ahead --------------------------------------------------------------------------


def test_check_lookahead_passes_momentum_rotation_on_the_demo_universe():
    report = check_lookahead(MOMENTUM, symbols=DEMO, params={"lookback": 42, "skip": 5,
                                   "k": 2}, cuts=12, **SAMPLE)  # fmt: skip
    assert report.ok, report.message
    assert "score of SPY" in report.compared


PEEKING = """
    import numpy as np
    from numba import njit
    from ivybt.strategies import CrossSectionalStrategy, Param

    @njit(cache=True)
    def tomorrow_nb(close, params, at, out_scores):
        n = close.shape[0]
        for t in range(n):
            for s in range(close.shape[1]):
                out_scores[t, s] = close[t + 1, s] / close[t, s] if t + 1 < n else np.nan

    class Tomorrow(CrossSectionalStrategy):
        name = "tomorrow"
        summary = "Holds tomorrow's best symbol: a look-ahead the checker must catch."
        params = (Param("k", int, 1, 1, 3, minimum=1),)
        score_kernel = tomorrow_nb
        schedule = "5bars"
"""


def test_check_lookahead_catches_a_score_that_reads_the_next_bar(tmp_path, monkeypatch):
    (tmp_path / "peek_cs.py").write_text(textwrap.dedent(PEEKING))
    monkeypatch.syspath_prepend(str(tmp_path))
    report = check_lookahead("peek_cs:Tomorrow", symbols=DEMO[:3], cuts=8, **SAMPLE)
    assert not report.ok
    assert report.first_difference.name.startswith("score of ")


# -- 4. what a user meets ---------------------------------------------------------------------


def test_a_cross_sectional_strategy_on_one_symbol_is_one_line_exit_2(tmp_path: Path):
    args = ["backtest", "momentum_rotation", "--symbol", "SPY", "--source", "sample", "--out",
            str(tmp_path / "x")]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "cross-sectional strategy" in result.output and "--symbols" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bad", ["0bars", "fortnightly", "21"])
def test_a_schedule_that_is_not_one_is_a_usage_error(bad):
    args = ["backtest", "momentum_rotation", "--symbols", ",".join(DEMO), "--source", "sample",
            "--rebalance", bad]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "21bars" in result.output


def test_every_n_bars_flags_every_nth_bar_from_the_first():
    index = pd.bdate_range("2020-01-01", periods=10)
    np.testing.assert_array_equal(rebalance_flags(index, "4bars"), [1, 0, 0, 0, 1, 0, 0, 0, 1, 0])


def test_a_cross_sectional_class_without_k_or_a_score_kernel_fails_at_definition():
    with pytest.raises(TypeError, match="parameter named k"):

        class NoK(CrossSectionalStrategy):
            name = "no_k"
            summary = "x"
            params = (Param("lookback", int, 5, 1, 9),)
            score_kernel = momentum_score_nb

    with pytest.raises(TypeError, match="score_kernel must be a Numba function"):

        class NoKernel(CrossSectionalStrategy):
            name = "no_kernel"
            summary = "x"
            params = (Param("k", int, 1, 1, 3),)
            score_kernel = staticmethod(lambda close, params, out: None)


def test_panel_from_frames_runs_momentum_rotation_in_python():
    frames = _random_walks(5, 260, seed=1)
    panel = panel_from_frames(frames, "1d")
    sides = panel_targets(panel, MOMENTUM, {"lookback": 21, "skip": 0, "k": 2}, "long", "signal")
    assert sides.shape == (260, 5) and set(np.unique(sides)) <= {0, 1}


REVERSAL = """
    import numpy as np
    from numba import njit
    from ivybt.strategies import CrossSectionalStrategy, Param

    @njit(cache=True)
    def loser_nb(close, params, at, out_scores):
        window = int(params[0])
        for t in range(window, close.shape[0]):
            for s in range(close.shape[1]):
                out_scores[t, s] = close[t - window, s] / close[t, s]  # the biggest loser first

    class Losers(CrossSectionalStrategy):
        name = "losers"
        summary = "Short-term reversal: hold the k worst performers of the last window bars."
        params = (Param("window", int, 5, 2, 20, minimum=1), Param("k", int, 1, 1, 3, minimum=1))
        score_kernel = loser_nb
        schedule = "5bars"
"""


def test_a_plugins_grid_rows_equal_its_backtests(tmp_path, monkeypatch):
    (tmp_path / "reversal_cs.py").write_text(textwrap.dedent(REVERSAL))
    monkeypatch.syspath_prepend(str(tmp_path))
    space = {"window": "3,10", "k": "1,2"}
    result = ivybt.grid("reversal_cs:Losers", symbols=DEMO, params=space, evidence=False,
                        start="2010-01-01", **SAMPLE)  # fmt: skip
    table = result.table
    assert len(table) == 4 and table["n_trades"].min() > 0
    for j in range(4):
        row = table.iloc[j]
        params = {name: int(row[f"param_{name}"]) for name in ("window", "k")}
        single = ivybt.backtest("reversal_cs:Losers", symbols=DEMO, params=params,
                                start="2010-01-01", **SAMPLE)  # fmt: skip
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)


# -- 5. relative_strength ---------------------------------------------------------------------

RELATIVE = BUILTIN["relative_strength"]


@pytest.mark.parametrize("benchmark", [0, 2])
def test_relative_strength_scores_are_the_slope_of_the_log_ratio(demo_panel, benchmark):
    params = {"lookback": 42, "benchmark": benchmark, "k": 2}
    got = cross_section_scores(demo_panel, RELATIVE, params, "monthly")
    at = rebalance_flags(demo_panel.index, "monthly")
    close = demo_panel.mark
    want = np.full(close.shape, np.nan)
    for t in np.flatnonzero(at):
        if t < 41:
            continue
        for s in range(close.shape[1]):
            ratio = close[t - 41 : t + 1, s] / close[t - 41 : t + 1, benchmark]
            if s != benchmark and np.isfinite(ratio).all():
                want[t, s] = np.polyfit(np.arange(42.0), np.log(ratio), 1)[0]
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-15)
    sides = panel_targets(demo_panel, RELATIVE, params, "long", "signal")
    assert (sides[:, benchmark] == 0).all() and sides.sum(axis=1).max() == 2


@pytest.mark.parametrize("seed", range(3))
def test_relative_strength_equals_the_twin_on_random_universes_with_gaps(seed):
    rng = np.random.default_rng(seed)
    frames = _random_walks(5, 260, seed=seed)
    for name in rng.choice(list(frames)[1:], size=2, replace=False):  # late, early, a hole
        frame = frames[name]
        kind = rng.integers(3)
        frames[name] = (frame.iloc[rng.integers(20, 90):] if kind == 0 else
                        frame.iloc[: rng.integers(120, 240)] if kind == 1 else
                        frame.drop(frame.index[60:70]))  # fmt: skip
    panel = panel_from_frames(frames)
    lookback, benchmark = int(rng.integers(5, 40)), int(rng.integers(0, 5))
    params = {"lookback": lookback, "benchmark": benchmark, "k": 2}
    got = cross_section_scores(panel, RELATIVE, params, "7bars")
    at = rebalance_flags(panel.index, "7bars")
    close = panel.mark
    want = np.full(close.shape, np.nan)
    for t in np.flatnonzero(at):
        if t < lookback - 1:
            continue
        window = slice(t - lookback + 1, t + 1)
        for s in range(close.shape[1]):
            ratio = close[window, s] / close[window, benchmark]
            if s != benchmark and np.isfinite(ratio).all():
                want[t, s] = np.polyfit(np.arange(float(lookback)), np.log(ratio), 1)[0]
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-15)
    assert np.isfinite(got).sum() > 10


def test_relative_strength_passes_the_lookahead_check():
    report = check_lookahead(RELATIVE, symbols=DEMO, params={"lookback": 21, "k": 1}, cuts=8,
                             **SAMPLE)  # fmt: skip
    assert report.ok, report.message


def test_a_benchmark_outside_the_universe_is_one_line_exit_2():
    args = ["grid", "relative_strength", "--symbols", "SPY,MSFT", "--source", "sample", "-p",
            "benchmark=0,5", "-p", "lookback=21"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "benchmark=5" in result.output and "SPY is 0" in result.output
    assert "Traceback" not in result.output
