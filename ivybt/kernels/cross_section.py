"""Cross-sectional strategies: scores of every symbol at each bar -> a selection -> sides.

A cross-sectional strategy compares the symbols of a universe with each other. Its score
kernel writes one score per symbol and bar (bars x symbols, the union bars of the panel):

    score_nb(close, params, at, out_scores) -> None

- `close` : float64, (n_bars, n_symbols): each symbol's close, carried over the bars where it
  has none inside its listing (`Panel.mark`), NaN outside its listing;
- `params` : float64, (n_params,): the strategy's parameters in declaration order;
- `at` : int8, (n_bars,): 1 at the selection bars, the only bars whose scores are ranked (a
  costly score, such as a correlation graph, may be computed there only);
- `out_scores` : float64, (n_bars, n_symbols), written: the score of each symbol after each
  bar's close, NaN where it has none (warm-up, not listed).

Causality: out_scores[t] depends on close[:t + 1] only (the look-ahead checker tests it).
At each selection bar (`at[t] != 0`: the rebalancing schedule) `rank_sides_nb` ranks the
symbols with a finite score and gives the top k side +1, the bottom k side -1, or both;
between selection bars every symbol keeps its side while listed. The account trades those
sides with the portfolio's weighting, leverage cap and bands (`ivybt.kernels.portfolio`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int8Array1D,
    Int8Array2D,
    Int64Array1D,
)
from ivybt.kernels.clusters import correlation_nb, largest_cluster_nb

TOP, BOTTOM, LONG_SHORT = 0, 1, 2
"""`rank_sides_nb` modes: long the top k, short the bottom k, or both (k each side)."""


@njit(cache=True)
def momentum_score_nb(close: Float64Array2D, params: Float64Array1D, at: Int8Array1D,
                      out_scores: Float64Array2D) -> None:  # fmt: skip
    """Trailing return skipping the latest bars: params (lookback, skip, ...).

    score[t, s] = close[t - skip, s] / close[t - skip - lookback, s] - 1, NaN while
    t - skip - lookback < 0 or either close is NaN (the classic 12-1 momentum: lookback 252,
    skip 21 on daily bars). Bars are union bars; a symbol's close is carried over its gaps.
    Written at every bar (`at` unused: it is cheap).
    """
    lookback = int(params[0])
    skip = int(params[1])
    n_bars, n_symbols = close.shape
    for t in range(n_bars):
        end = t - skip
        start = end - lookback
        for s in range(n_symbols):
            if start < 0:
                out_scores[t, s] = np.nan
            else:
                out_scores[t, s] = close[end, s] / close[start, s] - 1.0  # NaN when either is


@njit(cache=True)
def cluster_reversion_score_nb(close: Float64Array2D, params: Float64Array1D, at: Int8Array1D,
                               out_scores: Float64Array2D) -> None:  # fmt: skip
    """Mean reversion inside the largest correlation cluster: params (lookback, threshold,
    reversion, ...). At each selection bar t only (NaN elsewhere):

    1. the candidates are the symbols with a close at every bar of [t - lookback, t] and at
       t - reversion (a close carried over a gap counts);
    2. their returns close[i] / close[i - 1] - 1 over the last `lookback` bars, Pearson
       correlations (`correlation_nb`), the graph of the pairs above `threshold`, its largest
       connected component (`largest_cluster_nb`); fewer than 2 members: no scores;
    3. each member's return over `reversion` bars, r = close[t] / close[t - reversion] - 1,
       and its score the cluster's mean r minus its own: the furthest below the mean ranks
       first (long), the furthest above last (short).
    """
    lookback = int(params[0])
    threshold = params[1]
    reversion = int(params[2])
    n_bars, n_symbols = close.shape
    returns = np.empty((lookback, n_symbols))  # scratch, allocated once per call
    corr = np.empty((n_symbols, n_symbols))
    members = np.empty(n_symbols, dtype=np.int64)
    in_cluster = np.empty(n_symbols, dtype=np.int8)
    for t in range(n_bars):
        for s in range(n_symbols):
            out_scores[t, s] = np.nan
        if at[t] == 0 or t < lookback or t < reversion:
            continue
        m = _cluster_candidates_nb(close, t, lookback, reversion, members)
        if m < 2:
            continue
        _member_returns_nb(close, t, members[:m], returns[:, :m])
        correlation_nb(returns[:, :m], corr[:m, :m])
        _reversion_scores_nb(close, t, reversion, members[:m], corr[:m, :m], threshold,
                             in_cluster[:m], out_scores)  # fmt: skip


@njit(cache=True)
def lookback_correlations_nb(
    close: Float64Array2D, lookback: int, at: Int8Array1D, out_corr: Float64Array3D
) -> None:  # fmt: skip
    """The correlations `cluster_reversion_score_nb` computes for a `lookback`, once for
    every threshold and reversion of a grid: out_corr[q] (float64, (n_symbols, n_symbols))
    at the q-th selection bar t (at[t] != 0, t >= lookback) holds the Pearson correlation
    (`correlation_nb`) of the returns over [t - lookback, t] of each pair of symbols with a
    close at every bar of it, NaN for the others. A pair's value depends on its two columns
    only, so the candidates' submatrix equals what the score kernel computes, bit for bit."""
    n_bars, n_symbols = close.shape
    returns = np.empty((lookback, n_symbols))
    corr = np.empty((n_symbols, n_symbols))
    members = np.empty(n_symbols, dtype=np.int64)
    q = 0
    for t in range(n_bars):
        if at[t] == 0:
            continue
        out_corr[q] = np.nan
        if t >= lookback:
            m = _cluster_candidates_nb(close, t, lookback, 0, members)
            _member_returns_nb(close, t, members[:m], returns[:, :m])
            correlation_nb(returns[:, :m], corr[:m, :m])
            for a in range(m):
                for b in range(m):
                    out_corr[q, members[a], members[b]] = corr[a, b]
        q += 1


@njit(cache=True)
def cluster_reversion_shared_nb(
    close: Float64Array2D, params: Float64Array1D, at: Int8Array1D, corr_at: Float64Array3D,
    out_scores: Float64Array2D,
) -> None:  # fmt: skip
    """`cluster_reversion_score_nb` with its correlations given: `corr_at` from
    `lookback_correlations_nb` for this combination's lookback. The same scores, bit for bit,
    without computing a correlation matrix per combination."""
    lookback = int(params[0])
    threshold = params[1]
    reversion = int(params[2])
    n_bars, n_symbols = close.shape
    corr = np.empty((n_symbols, n_symbols))
    members = np.empty(n_symbols, dtype=np.int64)
    in_cluster = np.empty(n_symbols, dtype=np.int8)
    q = -1
    for t in range(n_bars):
        for s in range(n_symbols):
            out_scores[t, s] = np.nan
        if at[t] == 0:
            continue
        q += 1
        if t < lookback or t < reversion:
            continue
        m = _cluster_candidates_nb(close, t, lookback, reversion, members)
        if m < 2:
            continue
        for a in range(m):
            for b in range(m):
                corr[a, b] = corr_at[q, members[a], members[b]]
        _reversion_scores_nb(close, t, reversion, members[:m], corr[:m, :m], threshold,
                             in_cluster[:m], out_scores)  # fmt: skip


@njit(cache=True)
def _cluster_candidates_nb(
    close: Float64Array2D, t: int, lookback: int, reversion: int, out_members: Int64Array1D
) -> int:  # fmt: skip
    """Write the symbols with a close at every bar of [t - lookback, t] and at t - reversion
    into `out_members`, in symbol order; return how many."""
    m = 0
    for s in range(close.shape[1]):
        whole = np.isfinite(close[t - reversion, s])
        for i in range(t - lookback, t + 1):
            whole = whole and np.isfinite(close[i, s])
        if whole:
            out_members[m] = s
            m += 1
    return m


@njit(cache=True)
def _member_returns_nb(
    close: Float64Array2D, t: int, members: Int64Array1D, out_returns: Float64Array2D
) -> None:  # fmt: skip
    """Column c of `out_returns` ((lookback, m)): symbol members[c]'s returns
    close[i] / close[i - 1] - 1 over the `lookback` bars ending at t."""
    lookback = out_returns.shape[0]
    for c in range(members.shape[0]):
        s = members[c]
        for i in range(lookback):
            bar = t - lookback + 1 + i
            out_returns[i, c] = close[bar, s] / close[bar - 1, s] - 1.0


@njit(cache=True)
def _reversion_scores_nb(
    close: Float64Array2D, t: int, reversion: int, members: Int64Array1D,
    corr: Float64Array2D, threshold: float, in_cluster: Int8Array1D, out_scores: Float64Array2D,
) -> None:  # fmt: skip
    """Steps 2-3 of `cluster_reversion_score_nb` at bar t given the candidates' correlations:
    the largest cluster above `threshold`, each member's score its mean reversion return
    minus its own."""
    size = largest_cluster_nb(corr, threshold, in_cluster)
    if size < 2:
        return
    total = 0.0
    for c in range(members.shape[0]):
        if in_cluster[c] != 0:
            s = members[c]
            total += close[t, s] / close[t - reversion, s] - 1.0
    mean = total / size
    for c in range(members.shape[0]):
        if in_cluster[c] != 0:
            s = members[c]
            out_scores[t, s] = mean - (close[t, s] / close[t - reversion, s] - 1.0)


@njit(cache=True)
def relative_strength_score_nb(close: Float64Array2D, params: Float64Array1D, at: Int8Array1D,
                               out_scores: Float64Array2D) -> None:  # fmt: skip
    """Relative strength against a benchmark symbol: params (lookback, benchmark, ...).

    score[t, s] = the least-squares slope, per bar, of log(close[i, s] / close[i, b]) over
    the bars i = t - lookback + 1 .. t, with b = int(benchmark) the benchmark's column (0:
    the universe's first symbol); NaN for the benchmark itself, before `lookback` bars, and
    where either close is NaN in the window. Scored at the selection bars only (`at`).
    """
    lookback = int(params[0])
    b = int(params[1])
    n_bars, n_symbols = close.shape
    mean_x = (lookback - 1) / 2.0  # x = 0 .. lookback - 1
    sxx = 0.0
    for i in range(lookback):
        sxx += (i - mean_x) * (i - mean_x)
    for t in range(n_bars):
        for s in range(n_symbols):
            out_scores[t, s] = np.nan
        if at[t] == 0 or t < lookback - 1 or lookback < 2 or b < 0 or b >= n_symbols:
            continue
        for s in range(n_symbols):
            if s == b:
                continue
            mean_y = 0.0
            for i in range(lookback):
                bar = t - lookback + 1 + i
                mean_y += math.log(close[bar, s] / close[bar, b])  # NaN propagates
            mean_y /= lookback
            sxy = 0.0
            for i in range(lookback):
                bar = t - lookback + 1 + i
                sxy += (i - mean_x) * (math.log(close[bar, s] / close[bar, b]) - mean_y)
            out_scores[t, s] = sxy / sxx


@njit(cache=True)
def rank_sides_nb(
    scores: Float64Array2D, at: Int8Array1D, first: Int64Array1D, last: Int64Array1D,
    k: int, mode: int, out_target: Int8Array2D,
) -> None:  # fmt: skip
    """Sides (int8, (n_bars, n_symbols)) from the scores' ranks at the selection bars.

    At a bar t with at[t] != 0 the symbols listed at t (first <= t <= last) with a finite
    score are ranked by score, highest first, ties by symbol order; TOP gives the first k
    side +1, BOTTOM the last k side -1, LONG_SHORT both (the short side from the symbols
    left after the long one, so fewer than 2k candidates short fewer), every other symbol 0.
    Between selection bars a symbol keeps its side while listed, 0 outside its listing; flat
    before the first selection bar. `out_target` is written at every bar.
    """
    n_bars, n_symbols = scores.shape
    side = np.zeros(n_symbols, dtype=np.int8)  # scratch, allocated once per call
    ranked = np.empty(n_symbols, dtype=np.int64)
    for t in range(n_bars):
        if at[t] != 0:
            n = _rank_nb(scores[t], first, last, t, side, ranked)
            longs = min(k, n) if mode != BOTTOM else 0
            shorts = min(k, n - longs) if mode != TOP else 0
            for i in range(longs):
                side[ranked[i]] = 1
            for i in range(shorts):
                side[ranked[n - 1 - i]] = -1
        for s in range(n_symbols):
            listed = first[s] <= t <= last[s]
            out_target[t, s] = side[s] if listed else 0


@njit(cache=True)
def _rank_nb(
    score: Float64Array1D, first: Int64Array1D, last: Int64Array1D, t: int,
    out_side: Int8Array1D, out_ranked: Int64Array1D,
) -> int:  # fmt: skip
    """Zero `out_side`; write into `out_ranked` the symbols listed at t with a finite score,
    highest score first, equal scores in symbol order (a stable insertion sort: universes
    are small, and nothing is allocated); return how many."""
    n = 0
    for s in range(score.shape[0]):
        out_side[s] = 0
        value = score[s]
        if first[s] <= t <= last[s] and np.isfinite(value):
            i = n
            while i > 0 and score[out_ranked[i - 1]] < value:
                out_ranked[i] = out_ranked[i - 1]
                i -= 1
            out_ranked[i] = s
            n += 1
    return n


@njit(cache=True)
def score_strength_nb(
    scores: Float64Array2D, at: Int8Array1D, target: Int8Array2D, first: Int64Array1D,
    last: Int64Array1D, out_strength: Float64Array2D,
) -> None:  # fmt: skip
    """Score-proportional weights' basis (float64, (n_bars, n_symbols)): how far each held
    symbol's score lies beyond the cross-sectional mean, in the direction of its side.

    At a selection bar t (at[t] != 0): m = the mean score of the symbols listed at t with a
    finite score (those `rank_sides_nb` ranks); a symbol with side `target[t, s]` != 0 gets
    max(side x (score - m), 0), every other 0. Between selection bars the values of the last
    one carry forward; 0 before the first. When every held symbol gets 0 (one symbol listed,
    or equal scores: nothing to tilt by) each held symbol gets 1 instead, i.e. equal weights.
    The portfolio weighs held symbols in proportion to it (`SCORE` weighting): alphalens's
    demeaned factor weights, kept to the held sides.
    """
    n_bars, n_symbols = scores.shape
    for t in range(n_bars):
        if at[t] == 0:
            for s in range(n_symbols):
                out_strength[t, s] = out_strength[t - 1, s] if t > 0 else 0.0
            continue
        total = 0.0
        count = 0
        for s in range(n_symbols):
            if first[s] <= t <= last[s] and np.isfinite(scores[t, s]):
                total += scores[t, s]
                count += 1
        mean = total / count if count > 0 else 0.0
        held = 0.0
        for s in range(n_symbols):
            side = target[t, s]
            value = side * (scores[t, s] - mean) if side != 0 else 0.0
            out_strength[t, s] = value if value > 0.0 else 0.0
            held += out_strength[t, s]
        if held == 0.0:  # no dispersion to tilt by (one symbol listed, equal scores): equal
            for s in range(n_symbols):
                out_strength[t, s] = 1.0 if target[t, s] != 0 else 0.0


@njit(cache=True)
def no_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """The signal kernel of a cross-sectional strategy, which has none: its sides come from
    its score kernel and `rank_sides_nb`. Raises if called (a code path that forgot it)."""
    raise ValueError("a cross-sectional strategy has no per-symbol signal kernel")
