"""Monte Carlo resampling of a finished run's returns: trade and circular block bootstraps.

Conventions (repeated in each kernel's docstring):

- returns are simple fractions (0.01 = 1 %): per bar for the block bootstrap, per closed trade
  (net PnL / account equity at entry) for the trade bootstrap;
- a path compounds its returns from equity 1.0: equity *= 1 + r. Dollar PnL is never resampled:
  a -500 loss drawn after the account has shrunk to 300 would take it below zero, so dollar
  resampling produces impossible drawdowns beyond -100 % (Jesse issue #607). Returns scale with
  the account, as the real run did;
- a path whose equity reaches 0 or below is ruined: its equity stays 0 (total_return = -1,
  max_drawdown = -1); its Sharpe still uses every return drawn;
- max_drawdown = min(equity / running peak - 1) <= 0, the peak starting at 1.0 (the initial
  equity); sharpe = mean / std (ddof = 1) x sqrt(periods_per_year), NaN for zero variance or
  fewer than 2 returns (periods_per_year = 1 gives the raw per-trade ratio);
- randomness: one splitmix64 stream per path, started from (seed, path index) only, so a path
  does not depend on which thread runs it or how many threads there are. numba's np.random
  keeps one generator per thread, so its draws inside `prange` follow the thread schedule and
  are not reproducible; splitmix64 is also tiny and easy to twin in pure Python.

Reference twins: tests/test_montecarlo.py (`splitmix_draws`, `reference_bootstrap`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D

N_STATS = 3
"""Columns of the per-path statistics: total_return, max_drawdown, sharpe."""

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 increment (golden ratio x 2^64)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SHIFT1 = np.uint64(30)
_SHIFT2 = np.uint64(27)
_SHIFT3 = np.uint64(31)

PathState = tuple[float, float, float, float, float, float]
"""(equity, peak, worst drawdown, returns seen, their running mean, running sum of squared
deviations) along one path."""


@njit(cache=True)
def mix64_nb(z: np.uint64) -> np.uint64:
    """The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection of uint64, wrapping.

    `z` is cast to uint64 first: mixing it with the uint64 constants as int64 would promote
    to float64 (numba's rule for signed with unsigned operands).
    """
    x = np.uint64(z)
    x = (x ^ (x >> _SHIFT1)) * _MIX1
    x = (x ^ (x >> _SHIFT2)) * _MIX2
    return x ^ (x >> _SHIFT3)


@njit(cache=True)
def stream_start_nb(seed: np.uint64, path: int) -> np.uint64:
    """The generator state of path `path` (>= 0): mix64(mix64(seed) ^ (path x gamma))."""
    return mix64_nb(mix64_nb(seed) ^ (np.uint64(path) * _GAMMA))  # uint64 throughout


@njit(cache=True)
def draw_index_nb(state: np.uint64, n: int) -> tuple[np.uint64, np.int64]:
    """Advance `state` by one splitmix64 step; return it and an index in [0, n), n >= 1.

    index = mix64(state + gamma) mod n: the modulo bias is at most n / 2^64, far below any
    Monte Carlo error.
    """
    advanced = np.uint64(state) + _GAMMA
    return advanced, np.int64(mix64_nb(advanced) % np.uint64(n))


@njit(cache=True)
def path_start_nb() -> PathState:
    """The path accumulators before the first return (equity and peak at 1.0)."""
    return 1.0, 1.0, 0.0, 0.0, 0.0, 0.0


@njit(cache=True)
def path_step_nb(state: PathState, ret: float) -> PathState:
    """Compound one return: equity *= 1 + ret (0 once ruined), peak, worst drawdown, and
    Welford's running mean and squared deviations of the returns.

    Welford, not plain sums of r and r^2: a path that draws one trade n times has exactly
    zero variance this way (its Sharpe is NaN), where the sums leave a rounding residue and
    an absurd ratio; with few trades such paths are common.
    """
    equity, peak, worst, count, mean, squares = state
    count += 1.0
    delta = ret - mean
    mean += delta / count
    squares += delta * (ret - mean)
    if equity > 0.0:
        equity *= 1.0 + ret
        if equity <= 0.0:
            equity = 0.0
        if equity > peak:
            peak = equity
        else:
            drawdown = equity / peak - 1.0
            if drawdown < worst:
                worst = drawdown
    return equity, peak, worst, count, mean, squares


@njit(cache=True)
def path_result_nb(state: PathState, periods_per_year: float) -> tuple[float, float, float]:
    """(total_return, max_drawdown, sharpe) of a finished path."""
    equity, _, worst, count, mean, squares = state
    sharpe = np.nan
    if count > 1.0:
        std = math.sqrt(squares / (count - 1.0))
        if std > 0.0:
            sharpe = mean / std * math.sqrt(periods_per_year)
    return equity - 1.0, worst, sharpe


@njit(cache=True)
def resampled_path_nb(
    returns: Float64Array1D, block_size: int, state: np.uint64, periods_per_year: float,
    grid_steps: Int64Array1D, out_fan: Float64Array2D, row: int,
) -> tuple[float, float, float]:  # fmt: skip
    """One resampled path of len(returns) returns, built from circular blocks.

    Each block starts at index draw_index_nb(state, n) and takes `block_size` consecutive
    returns, wrapping from the last back to the first; blocks are concatenated and the last one
    cut where the path reaches n returns. Writes the equity after grid_steps[g] returns into
    out_fan[row, g] when row < out_fan.shape[0] (nothing otherwise).
    """
    n_returns = returns.shape[0]
    path = path_start_nb()
    record = row < out_fan.shape[0]
    n_grid = grid_steps.shape[0]
    g = 0
    position = 0
    left = 0
    for t in range(n_returns):
        if left == 0:
            state, position = draw_index_nb(state, n_returns)
            left = block_size
        path = path_step_nb(path, returns[position])
        position += 1
        if position == n_returns:
            position = 0
        left -= 1
        if record and g < n_grid and grid_steps[g] == t + 1:
            out_fan[row, g] = path[0]
            g += 1
    return path_result_nb(path, periods_per_year)


@njit(cache=True, parallel=True)
def block_bootstrap_nb(
    bar_returns: Float64Array1D, block_size: int, n_paths: int, seed: np.uint64,
    periods_per_year: float, grid_steps: Int64Array1D, n_fan: int,
) -> tuple[Float64Array2D, Float64Array2D]:  # fmt: skip
    """Circular block bootstrap of per-bar returns: `n_paths` paths as long as the run.

    Parameters
    ----------
    bar_returns : float64, shape (n_bars,)
        The run's simple returns per bar (0.01 = 1 %), oldest first, no NaN; n_bars >= 1.
    block_size : int
        Consecutive bars per block, 1 <= block_size <= n_bars (checked by the wrapper).
    n_paths : int
        Paths to draw, >= 1.
    seed : uint64
        Path i uses the splitmix64 stream stream_start_nb(seed, i) and nothing else.
    periods_per_year : float
        Bars per year, to annualise the Sharpe ratio (252 for daily stock bars).
    grid_steps : int64, shape (n_grid,)
        Strictly increasing step counts in [1, n_bars] at which the fan equity is recorded.
    n_fan : int
        Record the fan equity of paths 0 .. n_fan - 1 only (0 <= n_fan <= n_paths), which
        bounds memory at n_fan x n_grid whatever n_paths and n_bars are.

    Returns
    -------
    stats : float64, shape (n_paths, N_STATS)
        Per path: total_return (final equity - 1), max_drawdown (<= 0, >= -1) and sharpe
        (mean / std, ddof = 1, x sqrt(periods_per_year); NaN for zero variance).
    fan : float64, shape (n_fan, n_grid)
        fan[i, g] = equity of path i after grid_steps[g] returns, from 1.0.

    Notes
    -----
    Blocks start uniformly over all n_bars positions and wrap around the end (the circular
    bootstrap of Politis and Romano 1992), so every bar is equally likely to be drawn and the
    first and last bars are not under-sampled as in the moving-block bootstrap. With
    block_size = n_bars each path is a rotation of the run: same total return and Sharpe,
    another drawdown. Inputs are read-only; `prange` over paths, path i writes row i only,
    so results do not depend on the thread count. Reference:
    tests/test_montecarlo.py::reference_bootstrap.
    """
    stats = np.empty((n_paths, N_STATS), dtype=np.float64)
    fan = np.full((n_fan, grid_steps.shape[0]), np.nan)  # NaN: a step beyond the path
    for i in prange(n_paths):
        state = stream_start_nb(seed, i)
        total, worst, sharpe = resampled_path_nb(
            bar_returns, block_size, state, periods_per_year, grid_steps, fan, i
        )
        stats[i, 0] = total
        stats[i, 1] = worst
        stats[i, 2] = sharpe
    return stats, fan


@njit(cache=True, parallel=True)
def trade_bootstrap_nb(
    trade_returns: Float64Array1D, n_paths: int, seed: np.uint64, grid_steps: Int64Array1D,
    n_fan: int,
) -> tuple[Float64Array2D, Float64Array2D]:  # fmt: skip
    """Trade bootstrap: each path draws n_trades trade returns with replacement and compounds
    them.

    Parameters
    ----------
    trade_returns : float64, shape (n_trades,)
        Closed trades' returns as fractions of the account equity at entry (net PnL / equity),
        in trade order, no NaN; n_trades >= 1.
    n_paths, seed, grid_steps, n_fan :
        As in `block_bootstrap_nb`, steps counted in trades.

    Returns
    -------
    stats : float64, shape (n_paths, N_STATS)
        Per path: total_return, max_drawdown (<= 0, >= -1: compounding can reach -100 % only
        through a trade losing all of the equity, never beyond) and the per-trade ratio
        mean / std (ddof = 1) of the drawn returns, not annualised (trades are not evenly
        spaced in time); NaN for zero variance.
    fan : float64, shape (n_fan, n_grid)
        Equity of paths 0 .. n_fan - 1 after grid_steps[g] trades, from 1.0.

    Notes
    -----
    Equity *= 1 + r, never equity += PnL: resampled dollar PnL ignores that a trade's PnL
    scales with the account, so a big early loss drawn late can push a small account below
    zero, a drawdown worse than -100 % that no real run can have (Jesse issue #607). This is
    the block bootstrap with blocks of one trade and periods_per_year = 1, and the same
    stream per path. Reference: tests/test_montecarlo.py::reference_bootstrap.
    """
    stats = np.empty((n_paths, N_STATS), dtype=np.float64)
    fan = np.full((n_fan, grid_steps.shape[0]), np.nan)  # NaN: a step beyond the path
    for i in prange(n_paths):
        state = stream_start_nb(seed, i)
        total, worst, ratio = resampled_path_nb(trade_returns, 1, state, 1.0, grid_steps, fan, i)
        stats[i, 0] = total
        stats[i, 1] = worst
        stats[i, 2] = ratio
    return stats, fan


@njit(cache=True)
def path_stats_nb(
    returns: Float64Array1D, periods_per_year: float, grid_steps: Int64Array1D
) -> tuple[Float64Array1D, Float64Array1D]:  # fmt: skip
    """The statistics of the returns in their own order: the observed run, for comparison.

    Returns
    -------
    stats : float64, shape (N_STATS,)
        total_return, max_drawdown, sharpe with the same definitions as the bootstraps.
    equity : float64, shape (n_grid,)
        Equity after grid_steps[g] returns, from 1.0.
    """
    stats = np.empty(N_STATS, dtype=np.float64)
    equity = np.full(grid_steps.shape[0], np.nan)
    path = path_start_nb()
    g = 0
    for t in range(returns.shape[0]):
        path = path_step_nb(path, returns[t])
        if g < grid_steps.shape[0] and grid_steps[g] == t + 1:
            equity[g] = path[0]
            g += 1
    stats[0], stats[1], stats[2] = path_result_nb(path, periods_per_year)
    return stats, equity
