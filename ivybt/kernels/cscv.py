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

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int64Array1D,
    Int64Array2D,
)

type Tables = tuple[Float64Array2D, Float64Array2D, Int64Array2D]
"""(sums, squares, masks) of `block_stats_nb` and `flat_masks_nb`."""

FLAT_KEY = -1.7976931348623157e308  # the lowest float64: the key of a column flat in a half
KEY_LIMIT = 2.0**16  # a regular column's |key| (s^2 / (n q - s^2), the variance's condition)
KEY_BAND = 2.0**-20  # keys this close (relative) to the top or the winner's: exact Sharpes
KEY_FLOOR = 2.0**-200  # ... or this close (absolute): keys of tiny sums lose precision
SQUARES_MIN = 2.0**-800  # a regular column's sum of squares in a half: far from underflow
SQUARES_MAX = 2.0**800  # ... and from overflow
TILE_COLUMNS = 128  # columns whose prefix sums go through a chunk of pairs in cache
CHUNK_PAIRS = 8  # pairs of splits whose keys are computed tile by tile together
_MAGNITUDE_BITS = np.int64(0x7FFFFFFFFFFFFFFF)


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
    return _logit_nb(below, equal, values.shape[0])


@njit(cache=True)
def _logit_nb(below: int, equal: int, n_values: int) -> float:
    """ln(omega / (1 - omega)) of a value with `below` values under it and `equal` values
    equal to it (itself included) among n_values: omega = rank / (n_values + 1), rank =
    below + (equal + 1) / 2 (ties averaged)."""
    rank = below + (equal + 1) / 2.0
    omega = rank / (n_values + 1)
    return math.log(omega / (1.0 - omega))


@njit(cache=True, error_model="numpy")
def _half_mask_nb(half: Int64Array1D) -> int:
    """Bit mask of the blocks in `half`."""
    half_mask = np.int64(0)
    for k in range(half.shape[0]):
        half_mask |= np.int64(1) << half[k]
    return half_mask


@njit(cache=True, error_model="numpy")
def _exact_sharpe_nb(tables: Tables, half: Int64Array1D, n_rows: int, column: int) -> float:
    """The Sharpe of one column over the blocks in `half`, bit for bit what
    `_half_sharpes_nb` gives it: block sums added in the order of `half` from 0.0."""
    sums, squares, masks = tables
    total = 0.0
    square = 0.0
    for k in range(half.shape[0]):
        total += sums[half[k], column]
        square += squares[half[k], column]
    mean = total / float(n_rows)
    variance = (square - total * mean) / float(n_rows - 1)
    varies = (_half_mask_nb(half) & ~masks[half[0], column]) != 0
    sharpe = mean / math.sqrt(variance)  # NaN or inf when variance <= 0: replaced below
    return sharpe if varies and variance > 0.0 else np.nan


@njit(cache=True, error_model="numpy")
def _tile_keys_nb(
    tables: Tables, half: Int64Array1D, start: int, n_rows: int, prefix: Float64Array3D,
    keys: Float64Array1D, lo: int, hi: int,
) -> int:  # fmt: skip
    """Bring the prefix sums of columns lo..hi-1 to `half` from level `start` on, write those
    columns' keys; return how many of them are irregular (not flat, key not trusted).

    prefix[0, d] and prefix[1, d] hold the sums and sums of squares of the first d blocks of
    the half (level 0 is 0.0); levels below `start` are those of the previous half, which
    shares its first start - 1 blocks. The key of a column is s|s| / (n q - s^2) from the
    half's sum s and sum of squares q over n rows: sign(Sharpe) x Sharpe^2 x n / (n - 1),
    so it orders the columns as their Sharpes do, with one division instead of three and a
    square root; FLAT_KEY for a column flat in the half. A column is regular when
    n q - s^2 > 0, |key| <= KEY_LIMIT (the variance is well conditioned) and SQUARES_MIN <=
    q <= SQUARES_MAX (no underflow or overflow).
    """
    sums, squares, masks = tables
    n_half = half.shape[0]
    for level in range(start, n_half):  # slices, so that the loops vectorise
        block = half[level - 1]
        parent_sums, parent_squares = prefix[0, level - 1, lo:hi], prefix[1, level - 1, lo:hi]
        level_sums, level_squares = prefix[0, level, lo:hi], prefix[1, level, lo:hi]
        block_sums, block_squares = sums[block, lo:hi], squares[block, lo:hi]
        for j in range(hi - lo):
            level_sums[j] = parent_sums[j] + block_sums[j]
            level_squares[j] = parent_squares[j] + block_squares[j]
    last = half[n_half - 1]
    parent_sums, parent_squares = prefix[0, n_half - 1, lo:hi], prefix[1, n_half - 1, lo:hi]
    block_sums, block_squares = sums[last, lo:hi], squares[last, lo:hi]
    first_masks = masks[half[0], lo:hi]
    out = keys[lo:hi]
    half_mask = _half_mask_nb(half)
    rows = float(n_rows)
    irregular = 0
    for j in range(hi - lo):
        total = parent_sums[j] + block_sums[j]
        square = parent_squares[j] + block_squares[j]
        spread = rows * square - total * total
        key = total * abs(total) / spread
        varies = (half_mask & ~first_masks[j]) != 0
        regular = (
            spread > 0.0 and abs(key) <= KEY_LIMIT and square >= SQUARES_MIN
            and square <= SQUARES_MAX
        )  # fmt: skip
        irregular += varies and not regular
        out[j] = key if varies else FLAT_KEY
    return irregular


@njit(cache=True, error_model="numpy")
def _max_key_nb(keys: Float64Array1D) -> float:
    """The largest key (no NaN among them): an integer maximum of the keys' bits mapped to
    integers in the same order (negative floats' magnitude bits flipped), which vectorises."""
    bits = keys.view(np.int64)
    best = np.int64(-(2**63))
    for j in range(bits.shape[0]):
        value = bits[j]
        best = max(best, value ^ ((value >> 63) & _MAGNITUDE_BITS))
    box = np.empty(1, dtype=np.int64)
    box[0] = best ^ ((best >> 63) & _MAGNITUDE_BITS)
    return box.view(np.float64)[0]


@njit(cache=True, error_model="numpy")
def _next_at_least_nb(keys: Float64Array1D, bound: float, start: int) -> int:
    """The first j >= start with keys[j] >= bound, len(keys) if none; 64 keys are counted at
    a time (a vectorised test) until a group holds one."""
    n_columns = keys.shape[0]
    j = start
    while j < n_columns and j % 64 != 0:
        if keys[j] >= bound:
            return j
        j += 1
    while j + 64 <= n_columns:
        found = 0
        for k in range(j, j + 64):
            found += keys[k] >= bound
        if found:
            break
        j += 64
    while j < n_columns and not keys[j] >= bound:
        j += 1
    return j


@njit(cache=True, error_model="numpy")
def _winner_nb(
    tables: Tables, half: Int64Array1D, n_rows: int, keys: Float64Array1D, exact: bool
) -> int:
    """In-sample winner of `half`: the first column of the highest Sharpe, -1 if all are NaN.

    `keys` holds the half's exact Sharpes when `exact` (an irregular half), else its keys:
    the columns whose key is within the band of the top key are the only candidates, and
    their exact Sharpes decide (ties to the first)."""
    if exact:
        return _argmax_first_nb(keys)
    top = _max_key_nb(keys)
    if top == FLAT_KEY:
        return -1
    bound = top - (KEY_BAND * abs(top) + KEY_FLOOR)
    best = -1
    best_value = -np.inf
    j = _next_at_least_nb(keys, bound, 0)
    while j < keys.shape[0]:
        value = _exact_sharpe_nb(tables, half, n_rows, j)
        if value > best_value:  # strict: the first column keeps a tie
            best = j
            best_value = value
        j = _next_at_least_nb(keys, bound, j + 1)
    return best


@njit(cache=True, error_model="numpy")
def _outside_band_nb(keys: Float64Array1D, lo: float, hi: float) -> tuple[int, int]:
    """(number of keys < lo, number of keys > hi), in one vectorised pass."""
    below = 0
    above = 0
    for j in range(keys.shape[0]):
        below += keys[j] < lo
        above += keys[j] > hi
    return below, above


@njit(cache=True, error_model="numpy")
def _oos_logit_nb(
    tables: Tables, half: Int64Array1D, n_rows: int, keys: Float64Array1D, column: int,
    exact: bool,
) -> tuple[float, float]:  # fmt: skip
    """(logit of column's rank, column's Sharpe) among the Sharpes of `half`, as
    `_rank_logit_nb` ranks them. `keys` as in `_winner_nb`: keys outside the band around the
    column's key are surely below or above it; the exact Sharpes of those inside decide."""
    if exact:
        target = keys[column]
        return _rank_logit_nb(keys, target), target
    target = _exact_sharpe_nb(tables, half, n_rows, column)
    n_columns = keys.shape[0]
    if math.isnan(target):  # in a regular half a Sharpe is NaN exactly where the key is flat
        below = 0
        equal = 0
        for j in range(n_columns):
            equal += keys[j] == FLAT_KEY
    else:
        own = keys[column]
        margin = KEY_BAND * abs(own) + KEY_FLOOR
        lo, hi = own - margin, own + margin
        below, above = _outside_band_nb(keys, lo, hi)
        equal = n_columns - below - above  # the column itself at least
        if equal > 1:
            equal = 0
            for j in range(n_columns):
                if keys[j] >= lo and keys[j] <= hi:
                    value = _exact_sharpe_nb(tables, half, n_rows, j)
                    below += math.isnan(value) or value < target
                    equal += value == target
    return _logit_nb(below, equal, n_columns), target


@njit(cache=True, error_model="numpy")
def _score_pair_nb(
    tables: Tables, row: Int64Array1D, pair: int, n_rows: int, keys: Float64Array2D,
    irregular: Int64Array1D, out_scores: Float64Array2D, out_winners: Int64Array1D,
) -> None:  # fmt: skip
    """Score the splits `pair` and n_splits - 1 - `pair` from their halves' keys: `row` is
    the pair's row of `halves`, keys[0] and keys[1] its halves' keys (exact Sharpes where
    irregular[side] > 0)."""
    n_splits = out_winners.shape[0]
    half_blocks = row.shape[0] // 2
    for side in range(2):
        split = pair if side == 0 else n_splits - 1 - pair
        in_sample = row[side * half_blocks : (side + 1) * half_blocks]
        out_of_sample = row[(1 - side) * half_blocks : (2 - side) * half_blocks]
        winner = _winner_nb(tables, in_sample, n_rows, keys[side], irregular[side] > 0)
        out_winners[split] = winner
        if winner < 0:
            out_scores[0, split] = np.nan
            out_scores[1, split] = np.nan
            out_scores[2, split] = np.nan
            continue
        logit, oos = _oos_logit_nb(tables, out_of_sample, n_rows, keys[1 - side], winner,
                                   irregular[1 - side] > 0)  # fmt: skip
        out_scores[0, split] = logit
        out_scores[1, split] = _exact_sharpe_nb(tables, in_sample, n_rows, winner)
        out_scores[2, split] = oos


@njit(cache=True, error_model="numpy")
def _new_level_nb(halves: Int64Array2D, pair: int, side: int) -> int:
    """The first prefix level of pair's `side` half that differs from the previous pair's
    (1 for the first pair: every level is new)."""
    half_blocks = halves.shape[1] // 2
    if pair == 0:
        return 1
    current = halves[pair, side * half_blocks : (side + 1) * half_blocks]
    previous = halves[pair - 1, side * half_blocks : (side + 1) * half_blocks]
    same = 0
    while same < half_blocks - 1 and current[same] == previous[same]:
        same += 1
    return same + 1


@njit(cache=True, error_model="numpy")
def _score_slice_nb(
    tables: Tables, halves: Int64Array2D, n_rows: int, first_pair: int,
    out_scores: Float64Array2D, out_winners: Int64Array1D,
) -> None:  # fmt: skip
    """Score the pairs of splits of `halves` (rows first_pair, first_pair + 1, ...) in
    order: CHUNK_PAIRS pairs at a time, their keys tile by tile of TILE_COLUMNS columns
    (each tile's prefix sums stay in cache across the chunk's halves), then each pair."""
    sums, squares, masks = tables
    n_pairs, n_blocks = halves.shape
    n_columns = sums.shape[1]
    half_blocks = n_blocks // 2
    prefix = np.empty((2, 2, half_blocks, n_columns), dtype=np.float64)  # side, sum/square
    prefix[:, :, 0] = 0.0
    keys = np.empty((CHUNK_PAIRS, 2, n_columns), dtype=np.float64)
    scratch = np.empty(n_columns, dtype=np.float64)
    starts = np.empty((CHUNK_PAIRS, 2), dtype=np.int64)
    irregular = np.empty((CHUNK_PAIRS, 2), dtype=np.int64)
    for lo in range(0, n_pairs, CHUNK_PAIRS):
        hi = min(lo + CHUNK_PAIRS, n_pairs)
        for pair in range(lo, hi):
            for side in range(2):
                starts[pair - lo, side] = _new_level_nb(halves, pair, side)
        irregular[:] = 0
        for column in range(0, n_columns, TILE_COLUMNS):
            last = min(column + TILE_COLUMNS, n_columns)
            for pair in range(lo, hi):
                for side in range(2):
                    half = halves[pair, side * half_blocks : (side + 1) * half_blocks]
                    irregular[pair - lo, side] += _tile_keys_nb(
                        tables, half, starts[pair - lo, side], n_rows, prefix[side],
                        keys[pair - lo, side], column, last,
                    )  # fmt: skip
        for pair in range(lo, hi):
            for side in range(2):
                if irregular[pair - lo, side] > 0:  # exact Sharpes instead of keys
                    half = halves[pair, side * half_blocks : (side + 1) * half_blocks]
                    _half_sharpes_nb(sums, squares, masks, half, n_rows, keys[pair - lo, side],
                                     scratch)  # fmt: skip
            _score_pair_nb(tables, halves[pair], first_pair + pair, n_rows, keys[pair - lo],
                           irregular[pair - lo], out_scores, out_winners)  # fmt: skip


@njit(cache=True, parallel=True)
def cscv_splits_nb(
    stats: Float64Array3D, masks: Int64Array2D, halves: Int64Array2D, rows_per_block: int,
    first_pair: int, n_slices: int, out_scores: Float64Array2D, out_winners: Int64Array1D,
) -> None:  # fmt: skip
    """Score CSCV splits: the in-sample winner, its Sharpe in and out of sample, and the
    logit of its out-of-sample relative rank; one call scores some pairs of splits, so a
    caller can report progress and stop between calls.

    Parameters
    ----------
    stats : float64, shape (2, n_blocks, n_combinations), C-contiguous, read-only
        The sums and the squares of `block_stats_nb`, stacked.
    masks : int64, shape (n_blocks, n_combinations), read-only
        From `flat_masks_nb`.
    halves : int64, shape (n_call_pairs, n_blocks), C-contiguous, read-only
        Rows first_pair .. first_pair + n_call_pairs - 1 of the table of all pairs of
        complementary halves (`ivybt.stats.pbo._halves`), each half in increasing block
        order: for pair p, halves[p, :n_blocks // 2] is the in-sample half of split p and
        halves[p, n_blocks // 2:] that of split n_splits - 1 - p (in
        `itertools.combinations` order of the in-sample halves, the complement of
        combination p is combination n_splits - 1 - p). Any order of the rows gives the same
        results; this one is the fastest (see Notes).
    rows_per_block : int
        Rows in each block; a half has rows_per_block * n_blocks // 2 >= 2 rows.
    first_pair : int
        The pair number of halves' first row.
    n_slices : int
        1 <= n_slices <= n_call_pairs: the pairs are cut into this many contiguous slices,
        scored in parallel, each with its own scratch of 8 x n_combinations x (2 x n_blocks
        + 2 x CHUNK_PAIRS + 1) bytes (the caller bounds the memory of those running at once).
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
    Results are bit for bit those of computing every Sharpe of both halves with
    `_half_sharpes_nb` (block sums added in half order from 0.0, then mean, variance, square
    root) and ranking them; three things make it faster:

    - Prefix sums: consecutive rows of `halves` share leading blocks (in-sample halves in
      lexicographic order, out-of-sample halves in reverse), and the running sums over a
      half's first d blocks are kept per level d, so a half costs the additions of its last
      block and of the levels that changed (0.89 levels a half on average for 16 blocks),
      not eight: the same numbers added in the same order.
    - Keys instead of Sharpes (`_tile_keys_nb`): one division per column instead of three
      and a square root. Sharpe^2 = key x (n - 1) / n and both come from the same sums, so
      they order the columns alike in exact arithmetic; in a regular half (|key| <=
      KEY_LIMIT = 2^16, no underflow) a rounded key and a rounded Sharpe are both within
      2^-35 (relative) of their exact values, so a column whose key lies outside KEY_BAND =
      2^-20 (relative, plus KEY_FLOOR = 2^-200) of the top key, or of the winner's key, is
      on the same side of it in rounded Sharpes too. Only the columns inside the band get
      their rounded Sharpe (`_exact_sharpe_nb`), which decides the winner (ties to the
      first) and the ties of the rank. A half with an irregular column is scored from all
      its rounded Sharpes (`_half_sharpes_nb`).
    - Cache: keys are computed in tiles of TILE_COLUMNS columns for CHUNK_PAIRS pairs at a
      time, so a tile's prefix sums stay in cache; the slices run in parallel (`prange`).

    Pair p writes only splits p and n_splits - 1 - p, and no sum depends on where a slice
    starts, so results depend neither on the thread count nor on how the pairs are cut into
    calls or slices. Reference: tests/test_pbo.py::cscv_exact_reference (bit for bit) and
    cscv_reference (from the raw rows).
    """
    n_pairs, n_blocks = halves.shape
    half_blocks = n_blocks // 2
    n_rows = rows_per_block * half_blocks
    tables = (stats[0], stats[1], masks)
    for part in prange(n_slices):
        lo = part * n_pairs // n_slices
        hi = (part + 1) * n_pairs // n_slices
        _score_slice_nb(tables, halves[lo:hi], n_rows, first_pair + lo, out_scores, out_winners)
