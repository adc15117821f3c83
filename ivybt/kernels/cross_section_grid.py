"""Whole grids of a cross-sectional strategy in one parallel pass: combinations -> metrics.

Each combination runs the score kernel on the universe's closes, ranks the symbols at the
selection bars (`ivybt.kernels.cross_section.rank_sides_nb`), applies the direction and
simulates the account (`ivybt.kernels.portfolio.portfolio_nb`) on each window, keeping only
the metrics. A thread owns one scores and one sides buffer (bars x symbols) and the
account's scratch, so memory does not grow with the number of combinations, and row j
equals the portfolio backtest of combination j bit for bit (same kernels, same order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array2D, Float64Array3D, Int8Array1D, Int8Array2D, RecordArray1D
from ivybt.kernels.cross_section import (
    cluster_reversion_score_nb,
    cluster_reversion_shared_nb,
    momentum_score_nb,
    rank_sides_nb,
    relative_strength_score_nb,
    score_strength_nb,
)
from ivybt.kernels.grid import GridPlan
from ivybt.kernels.metrics import N_METRICS
from ivybt.kernels.portfolio import SCORE, PortfolioRules, Records, Universe, portfolio_nb
from ivybt.kernels.portfolio_grid import combination_rules_nb, thread_books_nb

SCORE_CODES = {momentum_score_nb: 0, cluster_reversion_score_nb: 1,
               relative_strength_score_nb: 2}  # fmt: skip
"""Built-in score kernels by code (`builtin_score_nb`); a user's kernel gets a compiled
grid kernel of its own (`make_cross_section_grid_kernel`)."""


class Selection(NamedTuple):
    """How a combination's scores become sides.

    code : `SCORE_CODES` value of a built-in score kernel (unused for a user's).
    k_column : the column of `k` (symbols held on a side) in the combinations' parameters.
    mode : `ivybt.kernels.cross_section` TOP, BOTTOM or LONG_SHORT.
    at : int8, (n_bars,): 1 at the selection bars.
    corr : float64, (n_selection_bars, n_symbols, n_symbols): the correlations every
        combination of a call shares (`lookback_correlations_nb` of their one lookback:
        `cluster_mean_reversion`'s grid, `ivybt.studies.grid`), or (0, 0, 0): none.
    """

    code: int
    k_column: int
    mode: int
    at: Int8Array1D
    corr: Float64Array3D


@njit(cache=True)
def builtin_score_nb(
    selection: Selection, close: Float64Array2D, params: Any, out: Float64Array2D
) -> None:
    """Run the built-in score kernel with `SCORE_CODES` value `selection.code` (the cluster
    kernel on `selection.corr` when the call shares them: the same scores, bit for bit)."""
    code = selection.code
    if code == 0:
        momentum_score_nb(close, params, selection.at, out)
    elif code == 1:
        if selection.corr.shape[0] > 0:
            cluster_reversion_shared_nb(close, params, selection.at, selection.corr, out)
        else:
            cluster_reversion_score_nb(close, params, selection.at, out)
    elif code == 2:
        relative_strength_score_nb(close, params, selection.at, out)


@njit(cache=True)
def sides_in_direction_nb(target: Int8Array2D, direction: int) -> None:
    """Zero, in place, the sides `direction` forbids (+1 long-only, -1 short-only, 0 none)."""
    if direction != 0:
        flat = target.reshape(-1)
        for i in range(flat.shape[0]):
            side = flat[i]
            flat[i] = 0 if side == -direction else side


@njit(cache=True)
def weighted_account_nb(
    universe: Universe, rules: PortfolioRules, scores: Float64Array2D, at: Int8Array1D,
    target: Int8Array2D, out_strength: Float64Array2D,
) -> Universe:  # fmt: skip
    """The account a combination trades: `universe` itself, or with "score" weights
    (`rules.weighting` SCORE) the universe with the combination's score strength
    (`score_strength_nb`, written into `out_strength`) as the weights' basis."""
    if rules.weighting != SCORE:
        return universe
    score_strength_nb(scores, at, target, universe.first, universe.last, out_strength)
    return Universe(universe.prices, universe.first, universe.last, universe.fee, universe.slip,
                    universe.lot, universe.fixed, out_strength, universe.rebalance_at)  # fmt: skip


@njit(cache=True, parallel=True)
def cross_section_grid_builtin_nb(
    universe: Universe,
    close: Float64Array2D,
    params: Float64Array2D,
    selection: Selection,
    plan: GridPlan,
    rules: PortfolioRules,
    periods_per_year: float,
    no_trades: RecordArray1D,
) -> Float64Array3D:
    """Metrics of every combination of a built-in cross-sectional strategy traded as one
    portfolio, on each window of union bars: float64, (n_combos, n_windows, N_METRICS).

    `close` is the panel's mark (float64, (n_bars, n_symbols), NaN outside a listing);
    `params[j]` combination j's parameters (and its exits from `plan.exit_column`,
    `ivybt.kernels.portfolio_grid.combination_rules_nb`); `no_trades` an empty
    `PORTFOLIO_TRADE_DTYPE` array. out[j, w] equals the portfolio backtest of combination j
    on window w, bit for bit.
    """
    n_combos = params.shape[0]
    n_bars, n_symbols = close.shape
    windows = plan.windows
    out = np.empty((n_combos, windows.shape[0], N_METRICS), dtype=np.float64)
    weighted = rules.weighting == SCORE
    for block in prange(plan.n_blocks):
        scores = np.empty((n_bars, n_symbols), dtype=np.float64)
        target = np.empty((n_bars, n_symbols), dtype=np.int8)
        strength = np.empty((n_bars, n_symbols) if weighted else (0, 0), dtype=np.float64)
        books = thread_books_nb(n_symbols)
        none1 = np.empty(0, dtype=np.float64)
        none2 = np.empty((0, n_symbols), dtype=np.float64)
        for j in range(block, n_combos, plan.n_blocks):  # interleaved: even work per thread
            scores[:] = np.nan
            builtin_score_nb(selection, close, params[j], scores)
            rank_sides_nb(scores, selection.at, universe.first, universe.last,
                          int(params[j, selection.k_column]), selection.mode, target)  # fmt: skip
            sides_in_direction_nb(target, plan.direction)
            account = weighted_account_nb(universe, rules, scores, selection.at, target,
                                          strength)  # fmt: skip
            traded_with = combination_rules_nb(rules, params[j], plan.exit_column)
            for w in range(windows.shape[0]):
                out_j = Records(out[j, w], none1, none2, none1, no_trades)
                portfolio_nb(account, target, traded_with, windows[w, 0], windows[w, 1],
                             periods_per_year, books, out_j)  # fmt: skip
    return out


def make_cross_section_grid_kernel(score_kernel: Callable[..., None]) -> Callable[..., Any]:
    """`cross_section_grid_builtin_nb` for a user's score kernel (pass a bounds-checked one,
    `ivybt.engine.user_kernels.checked_kernel`), compiled once per process."""

    @njit(parallel=True)
    def cross_section_grid_custom_nb(
        universe: Universe,
        close: Float64Array2D,
        params: Float64Array2D,
        selection: Selection,
        plan: GridPlan,
        rules: PortfolioRules,
        periods_per_year: float,
        no_trades: RecordArray1D,
    ) -> Float64Array3D:
        n_combos = params.shape[0]
        n_bars, n_symbols = close.shape
        windows = plan.windows
        out = np.empty((n_combos, windows.shape[0], N_METRICS), dtype=np.float64)
        weighted = rules.weighting == SCORE
        for block in prange(plan.n_blocks):
            scores = np.empty((n_bars, n_symbols), dtype=np.float64)
            target = np.empty((n_bars, n_symbols), dtype=np.int8)
            strength = np.empty((n_bars, n_symbols) if weighted else (0, 0), dtype=np.float64)
            books = thread_books_nb(n_symbols)
            none1 = np.empty(0, dtype=np.float64)
            none2 = np.empty((0, n_symbols), dtype=np.float64)
            for j in range(block, n_combos, plan.n_blocks):
                scores[:] = np.nan
                score_kernel(close, params[j], selection.at, scores)
                k = int(params[j, selection.k_column])
                rank_sides_nb(scores, selection.at, universe.first, universe.last, k,
                              selection.mode, target)  # fmt: skip
                sides_in_direction_nb(target, plan.direction)
                account = weighted_account_nb(universe, rules, scores, selection.at, target,
                                              strength)  # fmt: skip
                traded_with = combination_rules_nb(rules, params[j], plan.exit_column)
                for w in range(windows.shape[0]):
                    out_j = Records(out[j, w], none1, none2, none1, no_trades)
                    portfolio_nb(account, target, traded_with, windows[w, 0], windows[w, 1],
                                 periods_per_year, books, out_j)  # fmt: skip
        return out

    return cross_section_grid_custom_nb
