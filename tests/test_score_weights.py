"""Score-proportional weights (`--weights score`): a cross-sectional strategy's held symbols
weighted by how far their score lies beyond the cross-sectional mean, re-weighted at every
selection bar (issue #15, section 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ivybt
from ivybt.cli import cli
from ivybt.data.panel import panel_from_frames
from ivybt.engine.portfolio import cross_section_scores, panel_targets, rebalance_flags
from ivybt.kernels.cross_section import score_strength_nb
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.lookahead import check_lookahead

DEMO = ["SPY", "MSFT", "AAPL", "GOOG", "IBM"]
SAMPLE = {"source": "sample"}
SCORE = {"weights": "score"}


def reference_strength(scores, at, target, first, last):
    """The rule of `score_strength_nb`, a loop over plain Python numbers."""
    n_bars, n_symbols = scores.shape
    out = np.zeros((n_bars, n_symbols))
    for t in range(n_bars):
        if not at[t]:
            out[t] = out[t - 1] if t > 0 else 0.0
            continue
        ranked = [float(scores[t, s]) for s in range(n_symbols)
                  if first[s] <= t <= last[s] and np.isfinite(scores[t, s])]  # fmt: skip
        mean = sum(ranked) / len(ranked) if ranked else 0.0
        for s in range(n_symbols):
            side = int(target[t, s])
            out[t, s] = max(side * (float(scores[t, s]) - mean), 0.0) if side else 0.0
        if out[t].sum() == 0.0:
            out[t] = [1.0 if target[t, s] else 0.0 for s in range(n_symbols)]
    return out


@st.composite
def cases(draw):
    n_symbols = draw(st.integers(1, 6))
    n_bars = draw(st.integers(1, 30))
    scores = draw(arrays(np.float64, (n_bars, n_symbols),
                         elements=st.one_of(st.floats(-5, 5), st.just(np.nan))))  # fmt: skip
    at = draw(arrays(np.int8, n_bars, elements=st.integers(0, 1)))
    first = np.array(draw(st.lists(st.integers(0, n_bars), min_size=n_symbols,
                                   max_size=n_symbols)), dtype=np.int64)  # fmt: skip
    last = np.array([draw(st.integers(int(f), n_bars)) for f in first], dtype=np.int64)
    side = draw(arrays(np.int8, (n_bars, n_symbols), elements=st.integers(-1, 1)))
    side[~np.isfinite(scores)] = 0  # a held symbol was ranked: it has a score
    return scores, at, side, first, last


@settings(max_examples=200, deadline=None)
@given(cases())
def test_strength_equals_the_python_rule(case):
    scores, at, target, first, last = case
    out = np.full(scores.shape, -1.0)
    score_strength_nb(scores, at, target, first, last, out)
    np.testing.assert_allclose(out, reference_strength(scores, at, target, first, last),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    assert (out >= 0.0).all()


def _walks(n_symbols: int, n_bars: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2016-01-01", periods=n_bars)
    frames = {}
    for s in range(n_symbols):
        close = 40.0 * np.exp(np.cumsum(rng.normal(0.0002 * s, 0.02, n_bars)))
        frames[f"W{s}"] = pd.DataFrame(
            {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
             "volume": 1e6}, index=index)  # fmt: skip
    return frames


@pytest.mark.parametrize("strategy", ["momentum_rotation", "cluster_mean_reversion"])
def test_weights_at_each_selection_are_the_strengths_normalised(strategy):
    """Fills at the close, no costs: right after each selection bar's trades the held weights
    are side x strength / sum of strengths, computed here from the scores independently."""
    frames = _walks(6, 400, seed=4)
    params = ({"lookback": 30, "skip": 0, "k": 2} if strategy == "momentum_rotation" else
              {"lookback": 40, "threshold": 0.0, "reversion": 10, "k": 2})  # fmt: skip
    run = ivybt.backtest(strategy, data=frames, symbols=list(frames), params=params,
                         commission=0.0, slippage=0.0, fill="close", direction="both",
                         portfolio=SCORE)  # fmt: skip
    panel = panel_from_frames(frames)
    resolved = ivybt.strategies.get_strategy(strategy).resolve_params(params)
    schedule = ivybt.strategies.get_strategy(strategy).schedule
    scores = cross_section_scores(panel, ivybt.strategies.get_strategy(strategy), resolved,
                                  schedule)  # fmt: skip
    target = panel_targets(panel, ivybt.strategies.get_strategy(strategy), resolved, "both",
                           schedule)  # fmt: skip
    at = rebalance_flags(panel.index, schedule)
    strength = reference_strength(scores, at, target, panel.first, panel.last)
    checked = 0
    for t in np.flatnonzero(at):
        if not target[t].any():
            continue
        want = target[t] * strength[t] / strength[t].sum()
        got = run.weights.iloc[t].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert np.abs(got).sum() == pytest.approx(1.0)  # gross 1 (size 1, leverage cap 1)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("strategy", ["momentum_rotation", "cluster_mean_reversion"])
def test_grid_rows_equal_backtests_bit_for_bit(strategy):
    momentum = {"lookback": "21,63", "skip": "0,5", "k": "1,3"}
    cluster = {"lookback": "40,60", "threshold": "0.2,0.4", "reversion": "10", "k": "1,2"}
    space = momentum if strategy == "momentum_rotation" else cluster
    result = ivybt.grid(strategy, symbols=DEMO, params=space, evidence=False, portfolio=SCORE,
                        direction="both", **SAMPLE)  # fmt: skip
    table = result.table
    assert table["n_trades"].min() > 0
    for j in range(len(table)):
        row = table.iloc[j]
        params = {name.removeprefix("param_"): row[name] for name in table.columns
                  if name.startswith("param_")}  # fmt: skip
        single = ivybt.backtest(strategy, symbols=DEMO, params=params, portfolio=SCORE,
                                direction="both", **SAMPLE)  # fmt: skip
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)


def test_score_weights_differ_from_equal_weights_and_pass_the_lookahead_check():
    params = {"lookback": 42, "skip": 5, "k": 3}
    score = ivybt.backtest("momentum_rotation", symbols=DEMO, params=params, portfolio=SCORE,
                           **SAMPLE)  # fmt: skip
    equal = ivybt.backtest("momentum_rotation", symbols=DEMO, params=params, **SAMPLE)
    assert score.metrics["total_return"] != equal.metrics["total_return"]
    assert score.metrics["exposure"] == pytest.approx(equal.metrics["exposure"], abs=0.02)
    report = check_lookahead("momentum_rotation", symbols=DEMO, params=params, cuts=10,
                             portfolio=SCORE, **SAMPLE)  # fmt: skip
    assert report.ok, report.message


def test_score_weights_on_a_per_symbol_strategy_is_one_line_exit_2():
    result = CliRunner().invoke(cli, ["backtest", "sma_cross", "--symbols", "SPY,MSFT",
                                      "--source", "sample", "--weights", "score"])  # fmt: skip
    assert result.exit_code == 2
    assert "--weights score weighs symbols by a cross-sectional strategy's scores" in result.output
    assert "Traceback" not in result.output
