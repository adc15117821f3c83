"""cluster_mean_reversion (issue #15): correlations against numpy, clusters against networkx,
the scores against a slow twin, planted correlated blocks found, look-ahead, grid rows."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ivybt
from ivybt.data.panel import panel_from_frames
from ivybt.engine.portfolio import cross_section_scores, panel_targets, rebalance_flags
from ivybt.kernels.clusters import correlation_nb, largest_cluster_nb
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.lookahead import check_lookahead
from ivybt.strategies import BUILTIN

CLUSTER = BUILTIN["cluster_mean_reversion"]


def networkx_largest(corr: np.ndarray, threshold: float) -> set[int]:
    """The largest connected component of the graph of pairs above `threshold`; equal sizes:
    the one holding the lowest node."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(corr)))
    graph.add_edges_from((a, b) for a in range(len(corr)) for b in range(a + 1, len(corr))
                         if corr[a, b] > threshold)  # fmt: skip
    return set(max(nx.connected_components(graph), key=lambda c: (len(c), -min(c))))


@st.composite
def graphs(draw):
    m = draw(st.integers(1, 9))
    upper = draw(arrays(np.float64, (m, m), elements=st.one_of(
        st.sampled_from([-0.9, -0.2, 0.1, 0.4, 0.5, 0.6, 0.95]), st.just(np.nan))))  # fmt: skip
    corr = np.triu(upper, 1)
    corr = corr + corr.T
    np.fill_diagonal(corr, 1.0)
    return corr, draw(st.sampled_from([0.0, 0.3, 0.5, 0.7]))


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_the_largest_cluster_is_networkxs(case):
    corr, threshold = case
    member = np.full(len(corr), 7, dtype=np.int8)
    size = largest_cluster_nb(corr, threshold, member)
    want = networkx_largest(corr, threshold)
    assert set(np.flatnonzero(member)) == want and size == len(want)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 30), st.integers(1, 6)),
              elements=st.integers(-100, 100).map(lambda i: i / 1000)))  # fmt: skip
def test_correlations_equal_numpys(returns):
    out = np.empty((returns.shape[1],) * 2)
    correlation_nb(returns, out)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.corrcoef(returns.T).reshape(out.shape)
    constant = returns.std(axis=0) == 0
    np.testing.assert_allclose(out[~constant][:, ~constant], want[~constant][:, ~constant],
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    assert np.isnan(out[constant]).all()


def planted(seed: int = 0, n_bars: int = 400) -> dict[str, pd.DataFrame]:
    """Block A (A0..A5: one common factor each day plus a little noise), block B (B0..B3,
    another factor), and two independent symbols."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2018-01-01", periods=n_bars)
    factor_a, factor_b = rng.normal(0, 0.01, n_bars), rng.normal(0, 0.01, n_bars)
    returns = {f"A{i}": factor_a + rng.normal(0, 0.004, n_bars) for i in range(6)}
    returns |= {f"B{i}": factor_b + rng.normal(0, 0.004, n_bars) for i in range(4)}
    returns |= {f"X{i}": rng.normal(0, 0.01, n_bars) for i in range(2)}
    frames = {}
    for name, r in returns.items():
        close = 30.0 * np.exp(np.cumsum(r))
        frames[name] = pd.DataFrame({"open": close, "high": close * 1.005, "low": close * 0.995,
                                     "close": close, "volume": 1e6}, index=index)  # fmt: skip
    return frames


def test_two_planted_correlated_blocks_are_found():
    panel = panel_from_frames(planted(), "1d")
    params = {"lookback": 60, "threshold": 0.5, "reversion": 5, "k": 2}
    scores = cross_section_scores(panel, CLUSTER, params, "weekly")
    selected = rebalance_flags(panel.index, "weekly").astype(bool)
    selected[:60] = False
    scored = np.isfinite(scores[selected])
    block_a = [s.startswith("A") for s in panel.symbols]
    assert selected.sum() > 50
    assert (scored == np.array(block_a)).all()  # the larger block, and only it, every week
    np.testing.assert_allclose(np.nansum(scores[selected], axis=1), 0.0, atol=1e-12)
    # the smaller block is the largest cluster once the larger one is left out
    without_a = {name: f for name, f in planted().items() if not name.startswith("A")}
    panel_b = panel_from_frames(without_a, "1d")
    scores_b = cross_section_scores(panel_b, CLUSTER, params, "weekly")
    assert (np.isfinite(scores_b[selected]) == np.array(
        [s.startswith("B") for s in panel_b.symbols])).all()  # fmt: skip


def twin_scores(close: np.ndarray, at: np.ndarray, lookback: int, threshold: float,
                reversion: int) -> np.ndarray:  # fmt: skip
    """The score rule written plainly: numpy's corrcoef, networkx's components."""
    out = np.full(close.shape, np.nan)
    for t in np.flatnonzero(at):
        if t < max(lookback, reversion):
            continue
        window = close[t - lookback : t + 1]
        members = [
            s
            for s in range(close.shape[1])
            if np.isfinite(window[:, s]).all() and np.isfinite(close[t - reversion, s])
        ]
        if len(members) < 2:
            continue
        returns = window[1:, members] / window[:-1, members] - 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(returns.T)
        corr[:, returns.std(axis=0) == 0] = np.nan
        corr[returns.std(axis=0) == 0, :] = np.nan
        near = np.abs(corr - threshold) < 1e-9
        assert not near[np.triu_indices(len(members), 1)].any(), "a pair on the threshold"
        cluster = sorted(networkx_largest(corr, threshold))
        if len(cluster) < 2:
            continue
        symbols = [members[c] for c in cluster]
        r = close[t, symbols] / close[t - reversion, symbols] - 1.0
        out[t, symbols] = r.mean() - r
    return out


@pytest.mark.parametrize("seed", range(4))
def test_scores_equal_the_twin_on_random_universes_with_listing_gaps(seed):
    rng = np.random.default_rng(seed)
    frames = planted(seed, n_bars=300)
    late = rng.choice(list(frames), size=2, replace=False)
    for name in late:  # listed late, or delisted early
        frames[name] = frames[name].iloc[rng.integers(30, 120):] if rng.random() < 0.5 \
            else frames[name].iloc[: rng.integers(150, 280)]  # fmt: skip
    panel = panel_from_frames(frames, "1d")
    params = {"lookback": 40, "threshold": 0.45, "reversion": 7, "k": 2}
    got = cross_section_scores(panel, CLUSTER, params, "10bars")
    want = twin_scores(panel.mark, rebalance_flags(panel.index, "10bars"), 40, 0.45, 7)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    sides = panel_targets(panel, CLUSTER, params, "both", "10bars")
    assert (sides == 1).sum() > 0 and (sides == -1).sum() > 0


def test_check_lookahead_passes_cluster_mean_reversion():
    params = {"lookback": 40, "reversion": 5}
    report = check_lookahead(CLUSTER, data=planted(1, 250), cuts=10, params=params,
                             direction="both")  # fmt: skip
    assert report.ok, report.message


def test_grid_rows_equal_backtests_bit_for_bit():
    frames = planted(2, 300)
    space = {"lookback": "20,40", "threshold": "0.3,0.6", "k": "1,2"}
    result = ivybt.grid(CLUSTER, data=frames, params=space, evidence=False, direction="both")
    table = result.table
    assert len(table) == 8 and table["n_trades"].min() > 0
    for j in (0, 3, 7):
        row = table.iloc[j]
        params = {"lookback": int(row["param_lookback"]), "threshold": float(
            row["param_threshold"]), "k": int(row["param_k"])}  # fmt: skip
        single = ivybt.backtest(CLUSTER, data=frames, params=params, direction="both")
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)


def test_tiny_returns_do_not_underflow_into_a_division_by_zero():
    """Found by hypothesis: var_a x var_b underflowed to 0 for returns near 1e-91."""
    out = np.empty((2, 2))
    correlation_nb(np.array([[2.9e-91, 1e-91], [0.0, 0.0], [0.0, 3e-91]]), out)
    assert out[0, 0] == pytest.approx(1.0) and np.isfinite(out).all()


def _gapped(seed: int, n_bars: int = 300) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frames = planted(seed, n_bars=n_bars)
    for name in rng.choice(list(frames), size=3, replace=False):  # late, early, or a hole
        kind = rng.integers(3)
        frame = frames[name]
        frames[name] = (frame.iloc[rng.integers(30, 120):] if kind == 0 else
                        frame.iloc[: rng.integers(150, 280)] if kind == 1 else
                        frame.drop(frame.index[100:110]))  # fmt: skip
    return frames


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("lookback", "reversion"), [(20, 5), (40, 60), (3, 1)])
def test_shared_correlations_give_the_same_scores_bit_for_bit(seed, lookback, reversion):
    """A grid computes one lookback's matrices once (`lookback_correlations_nb`) and every
    threshold and reversion reads them: the scores equal the score kernel's exactly, with
    listing gaps, reversion beyond the lookback, and every threshold."""
    from ivybt.kernels.cross_section import (
        cluster_reversion_score_nb,
        cluster_reversion_shared_nb,
        lookback_correlations_nb,
    )

    panel = panel_from_frames(_gapped(seed), "1d")
    close = np.ascontiguousarray(panel.mark)
    at = rebalance_flags(panel.index, "7bars")
    corr = np.empty((int(at.sum()), panel.n_symbols, panel.n_symbols))
    lookback_correlations_nb(close, lookback, at, corr)
    for threshold in (-0.2, 0.3, 0.6, 0.9):
        params = np.array([lookback, threshold, reversion, 2.0])
        want = np.empty_like(close)
        got = np.empty_like(close)
        cluster_reversion_score_nb(close, params, at, want)
        cluster_reversion_shared_nb(close, params, at, corr, got)
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(want).any()


def test_a_grid_sharing_matrices_equals_backtests_and_a_grid_that_does_not(monkeypatch):
    """Every row of a grid over lookback x threshold x reversion x k equals its backtest bit
    for bit, and the grid without sharing (a budget too small for the matrices) too."""
    import ivybt.kernels.cross_section as kernels
    import ivybt.studies.grid as grid_module

    computed = []
    compute = kernels.lookback_correlations_nb
    monkeypatch.setattr(kernels, "lookback_correlations_nb",
                        lambda close, lookback, *rest: computed.append(lookback) or
                        compute(close, lookback, *rest))  # fmt: skip
    frames = _gapped(5, 320)
    space = {"lookback": "20,40", "threshold": "0.3,0.6", "reversion": "5,30", "k": "1,2"}
    shared = ivybt.grid(CLUSTER, data=frames, params=space, evidence=False, direction="both")
    assert computed == [20, 40]  # once per lookback, for its 8 combinations
    table = shared.table
    assert len(table) == 16 and table["n_trades"].min() > 0
    calls = []
    original = grid_module._cross_section_windows

    def spy(*args, **kwargs):
        calls.append(kwargs["budget"])
        kwargs["budget"] = 0  # no room for the matrices: each combination computes its own
        return original(*args, **kwargs)

    monkeypatch.setattr(grid_module, "_cross_section_windows", spy)
    alone = ivybt.grid(CLUSTER, data=frames, params=space, evidence=False, direction="both")
    assert calls and calls[0] > 0 and computed == [20, 40]  # no matrices without room
    pd.testing.assert_frame_equal(alone.table, table)
    for j in range(len(table)):
        row = table.iloc[j]
        params = {name: row[f"param_{name}"] for name in ("lookback", "threshold",
                                                          "reversion", "k")}  # fmt: skip
        single = ivybt.backtest(CLUSTER, data=frames, params=params, direction="both")
        for metric in METRIC_NAMES:
            a, b = float(row[metric]), single.metrics[metric]
            assert a == b or (np.isnan(a) and np.isnan(b)), (j, metric, a, b)
