"""Combinatorially symmetric cross-validation (CSCV) of a grid's returns, for the probability
of backtest overfitting (Bailey, Borwein, López de Prado and Zhu 2017).

`block_stats_nb` reduces the (n_periods, n_combinations) return matrix once to per-block
tables, `flat_masks_nb` encodes which blocks are flat at a common level, and `cscv_splits_nb`
scores every split from those tables alone: a split costs O(n_combinations), not
O(n_periods x n_combinations).

Conventions, shared by the kernels and by `ivybt.stats.pbo`:

- returns are simple fractions per period; NaN means "no position / undefined" and counts as a
  return of exactly 0.0 (a flat period), in the sums and in the flat test alike;
- Sharpe is per period, not annualised (annualising scales every column alike, so no rank
  changes): mean / std with ddof = 1 of the half's simple returns, risk-free rate 0; the
  variance comes from the half's sum and sum of squares, (q - s * s / n) / (n - 1);
- a combination whose returns are all equal in a half (zero variance, e.g. out of the market
  throughout) has a NaN Sharpe in that half. The test is exact (every return in the half equal,
  bit for bit), not a rounding threshold. A NaN Sharpe never wins in-sample, and out of sample
  it ranks below every number, NaNs tying with each other.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D, Int64Array2D


@njit(cache=True, parallel=True)
def block_stats_nb(
    returns: Float64Array2D, n_blocks: int
) -> tuple[Float64Array2D, Float64Array2D, Float64Array2D]:
    """Per-block sums, sums of squares and flat levels of every column of `returns`.

    Parameters
    ----------
    returns : float64, shape (n_periods, n_combinations), C-contiguous, read-only
        Simple returns per period, oldest first, one column per combination. NaN counts as
        0.0. n_periods must be a multiple of `n_blocks` (the wrapper drops the oldest rows).
    n_blocks : int
        Number of contiguous, equal blocks the rows are cut into, >= 1.

    Returns
    -------
    sums : float64, shape (n_blocks, n_combinations)
        sums[b, j] = sum of returns[t, j] over the rows t of block b, in row order
        (block b holds rows [b * rows_per_block, (b + 1) * rows_per_block)).
    squares : float64, shape (n_blocks, n_combinations)
        The same sum of returns[t, j] ** 2.
    levels : float64, shape (n_blocks, n_combinations)
        The common value of the rows of block b in column j when they are all equal (0.0 for
        an all-NaN block), else NaN: the input of `flat_masks_nb`.

    Notes
    -----
    One block per thread (`prange` over blocks); within a block, rows in order and columns
    innermost, so the row-major input streams once. Reference: tests/test_pbo.py::
    cscv_reference (Sharpe straight from the raw rows).
    """
    n_periods, n_columns = returns.shape
    rows_per_block = n_periods // n_blocks
    sums = np.zeros((n_blocks, n_columns), dtype=np.float64)
    squares = np.zeros((n_blocks, n_columns), dtype=np.float64)
    levels = np.empty((n_blocks, n_columns), dtype=np.float64)
    for b in prange(n_blocks):
        start = b * rows_per_block
        for j in range(n_columns):
            first = returns[start, j]
            levels[b, j] = 0.0 if math.isnan(first) else first
        for t in range(start, start + rows_per_block):
            for j in range(n_columns):
                value = returns[t, j]
                if math.isnan(value):
                    value = 0.0
                sums[b, j] += value
                squares[b, j] += value * value
                if value != levels[b, j]:  # also true once levels[b, j] is NaN: it stays NaN
                    levels[b, j] = np.nan
    return sums, squares, levels


@njit(cache=True)
def flat_masks_nb(levels: Float64Array2D) -> Int64Array2D:
    """Bit masks of the blocks that are flat at the same level, per block and column.

    Parameters
    ----------
    levels : float64, shape (n_blocks, n_combinations), read-only
        From `block_stats_nb`: a flat block's common value, NaN for a block that varies.
        n_blocks <= 62.

    Returns
    -------
    masks : int64, shape (n_blocks, n_combinations)
        Bit c of masks[b, j] is set when blocks b and c of column j are both flat at the same
        level (bit b itself included); masks[b, j] == 0 when block b varies. A set of blocks
        H containing block b is flat in column j (every return equal) exactly when
        H & ~masks[b, j] == 0: one integer test per column and half in `cscv_splits_nb`.
    """
    n_blocks, n_columns = levels.shape
    masks = np.zeros((n_blocks, n_columns), dtype=np.int64)
    for j in range(n_columns):
        for b in range(n_blocks):
            level = levels[b, j]
            if math.isnan(level):
                continue
            for c in range(n_blocks):
                if levels[c, j] == level:
                    masks[b, j] |= np.int64(1) << c
    return masks


@njit(cache=True, error_model="numpy")
def _half_sharpes_nb(
    sums: Float64Array2D, squares: Float64Array2D, masks: Int64Array2D, half: Int64Array1D,
    n_rows: int, out_sharpe: Float64Array1D, out_squares: Float64Array1D,
) -> None:  # fmt: skip
    """Write the per-period Sharpe of every column over the blocks in `half` (n_rows rows)
    into `out_sharpe`; NaN for a column flat there or whose rounded variance is <= 0.
    `out_squares` is scratch.

    Block sums are added one by one in the order of `half` (0.0 + b0 + b1 + ...), four blocks
    per sweep over the columns so the accumulators are loaded and stored a quarter as often;
    error_model="numpy" drops the division-by-zero checks so the sweeps vectorise.
    """
    n_columns = sums.shape[1]
    n_half = half.shape[0]
    out_sharpe[:] = 0.0
    out_squares[:] = 0.0
    k = 0
    while k + 4 <= n_half:
        b0, b1, b2, b3 = half[k], half[k + 1], half[k + 2], half[k + 3]
        for j in range(n_columns):
            out_sharpe[j] = out_sharpe[j] + sums[b0, j] + sums[b1, j] + sums[b2, j] + sums[b3, j]
            out_squares[j] = (
                out_squares[j] + squares[b0, j] + squares[b1, j] + squares[b2, j]
                + squares[b3, j]
            )  # fmt: skip
        k += 4
    for rest in range(k, n_half):
        block = half[rest]
        for j in range(n_columns):
            out_sharpe[j] += sums[block, j]
            out_squares[j] += squares[block, j]
    half_mask = np.int64(0)
    for k in range(n_half):
        half_mask |= np.int64(1) << half[k]
    first = half[0]
    rows = float(n_rows)
    dof = float(n_rows - 1)
    for j in range(n_columns):
        mean = out_sharpe[j] / rows
        variance = (out_squares[j] - out_sharpe[j] * mean) / dof
        varies = (half_mask & ~masks[first, j]) != 0
        sharpe = mean / math.sqrt(variance)  # NaN or inf when variance <= 0: replaced below
        out_sharpe[j] = sharpe if varies and variance > 0.0 else np.nan


@njit(cache=True)
def _argmax_first_nb(values: Float64Array1D) -> int:
    """Index of the largest value, the first one on ties, NaN skipped; -1 if all are NaN
    (Sharpe ratios here are finite or NaN, never -inf)."""
    best = -1
    best_value = -np.inf
    for j in range(values.shape[0]):
        if values[j] > best_value:  # strict: the first column keeps a tie; NaN never wins
            best = j
            best_value = values[j]
    return best


@njit(cache=True)
def _rank_logit_nb(values: Float64Array1D, target: float) -> float:
    """ln(omega / (1 - omega)) of `target`'s average rank among `values` (which hold it),
    omega = rank / (len(values) + 1), rank 1 = lowest, NaN below every number."""
    below = 0
    equal = 0
    if math.isnan(target):
        for j in range(values.shape[0]):
            equal += math.isnan(values[j])
    else:
        for j in range(values.shape[0]):
            value = values[j]
            below += math.isnan(value) or value < target
            equal += value == target
    rank = below + (equal + 1) / 2.0
    omega = rank / (values.shape[0] + 1)
    return math.log(omega / (1.0 - omega))


@njit(cache=True)
def _score_split_nb(
    in_sample: Float64Array1D, out_of_sample: Float64Array1D, split: int,
    out_logits: Float64Array1D, out_is: Float64Array1D, out_oos: Float64Array1D,
    out_winners: Int64Array1D,
) -> None:  # fmt: skip
    """Write split `split`'s winner, its two Sharpes and its logit from the half Sharpes."""
    best = _argmax_first_nb(in_sample)
    out_winners[split] = best
    if best < 0:
        out_logits[split] = np.nan
        out_is[split] = np.nan
        out_oos[split] = np.nan
    else:
        out_logits[split] = _rank_logit_nb(out_of_sample, out_of_sample[best])
        out_is[split] = in_sample[best]
        out_oos[split] = out_of_sample[best]


@njit(cache=True, parallel=True)
def cscv_splits_nb(
    sums: Float64Array2D, squares: Float64Array2D, masks: Int64Array2D, halves: Int64Array2D,
    rows_per_block: int, first_pair: int, out_scores: Float64Array2D, out_winners: Int64Array1D,
) -> None:  # fmt: skip
    """Score CSCV splits: the in-sample winner, its Sharpe in and out of sample, and the
    logit of its out-of-sample relative rank; one call scores some pairs of splits, so a
    caller can report progress and stop between calls.

    Parameters
    ----------
    sums, squares : float64, shape (n_blocks, n_combinations), read-only
        From `block_stats_nb`.
    masks : int64, shape (n_blocks, n_combinations), read-only
        From `flat_masks_nb`.
    halves : int64, shape (n_call_pairs, n_blocks), read-only
        Rows first_pair .. first_pair + n_call_pairs - 1 of the table of all pairs of
        complementary halves (`ivybt.stats.pbo._halves`), each half in increasing block
        order: for pair p, halves[p, :n_blocks // 2] is the in-sample half of split p and
        halves[p, n_blocks // 2:] that of split n_splits - 1 - p (in
        `itertools.combinations` order of the in-sample halves, the complement of
        combination p is combination n_splits - 1 - p).
    rows_per_block : int
        Rows in each block; a half has rows_per_block * n_blocks // 2 >= 2 rows.
    first_pair : int
        The pair number of halves' first row.
    out_scores : float64, shape (3, n_splits), written for this call's splits
        Row 0, logits: ln(omega / (1 - omega)), omega = rank / (n_combinations + 1), where
        rank is the winner's out-of-sample rank among all combinations, 1 = worst, ties
        averaged (k tied values sharing ranks r..r+k-1 all get r + (k - 1) / 2) and NaN
        Sharpes lowest; NaN when no combination has a finite in-sample Sharpe (every column
        flat in-sample). Rows 1 and 2: the winner's per-period Sharpe in and out of sample
        (out of sample NaN if it is flat there).
    out_winners : int64, shape (n_splits,), written for this call's splits
        Column of the in-sample winner: the highest in-sample Sharpe, the first column on
        ties; -1 when there is none.

    Notes
    -----
    One pair of complementary splits per iteration (`prange` over pairs): both halves'
    Sharpes are computed once and serve both splits (each half is one split's in-sample and
    the other's out-of-sample). Pairs go in fixed chunks of 32, one chunk per task with its
    own scratch buffer (4, n_combinations) allocated once per chunk; pair p writes only
    splits p and n_splits - 1 - p, so results depend neither on the thread count nor on how
    the pairs are cut into calls. Reference: tests/test_pbo.py::cscv_reference.
    """
    n_pairs, n_blocks = halves.shape
    n_columns = sums.shape[1]
    n_splits = out_winners.shape[0]
    half_blocks = n_blocks // 2
    n_rows = rows_per_block * half_blocks
    logits = out_scores[0]
    is_sharpe = out_scores[1]
    oos_sharpe = out_scores[2]
    chunk_pairs = 32  # pairs sharing one scratch buffer
    n_chunks = (n_pairs + chunk_pairs - 1) // chunk_pairs
    for chunk in prange(n_chunks):
        buffer = np.empty((4, n_columns), dtype=np.float64)  # once per chunk of pairs
        first, second = buffer[0], buffer[1]
        for local in range(chunk * chunk_pairs, min((chunk + 1) * chunk_pairs, n_pairs)):
            in_first, in_second = halves[local, :half_blocks], halves[local, half_blocks:]
            _half_sharpes_nb(sums, squares, masks, in_first, n_rows, first, buffer[2])
            _half_sharpes_nb(sums, squares, masks, in_second, n_rows, second, buffer[3])
            p = first_pair + local
            _score_split_nb(first, second, p, logits, is_sharpe, oos_sharpe, out_winners)
            other = n_splits - 1 - p
            _score_split_nb(second, first, other, logits, is_sharpe, oos_sharpe, out_winners)
