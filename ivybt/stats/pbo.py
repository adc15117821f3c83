"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

A grid or a search always has an in-sample winner; PBO measures how often that winner is
merely lucky. The rows of a (periods x combinations) return matrix are cut into `blocks`
contiguous equal blocks; each of the C(blocks, blocks / 2) ways to pick half of them is one
split, those blocks in-sample (IS) and the rest out-of-sample (OOS). In each split the IS
winner (highest Sharpe) is ranked among all combinations OOS, and PBO is the share of splits
where it lands at or below the OOS median.

Conventions (the kernels, `ivybt.kernels.cscv`, document them in full):

- returns are simple fractions per period, oldest row first; NaN means "no position" and
  counts as 0.0;
- Sharpe is per period (mean / std, ddof = 1, risk-free 0), not annualised: annualising would
  scale every combination alike and change no rank;
- a combination flat throughout a half (all returns equal, e.g. out of the market) has a NaN
  Sharpe there: it never wins IS and ranks below every number OOS (NaNs tie);
- IS ties go to the first column; OOS ranks average ties, 1 = worst, omega = rank / (N + 1),
  logit = ln(omega / (1 - omega)); PBO = share of splits with logit <= 0;
- the T mod blocks OLDEST rows are dropped so the blocks are equal, and `note` says so;
- splits follow `itertools.combinations(range(blocks), blocks // 2)` order of their IS blocks.

References
----------
Bailey, D. H., Borwein, J. M., López de Prado, M. and Zhu, Q. J. (2017). "The probability of
backtest overfitting". Journal of Computational Finance 20(4): 39-69. CSCV, the logits and
PBO (section 2), performance degradation and the probability of loss (section 2.3).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import get_num_threads

from ivybt.errors import ConfigError
from ivybt.kernels.cscv import CHUNK_PAIRS, block_stats_nb, cscv_splits_nb, flat_masks_nb

__all__ = ["Degradation", "PBOResult", "probability_of_overfitting"]

MAX_SPLITS = 1_000_000  # C(22, 11) = 705,432 fits; C(24, 12) = 2,704,156 does not
MIN_ROWS_PER_BLOCK = 2  # a block of one row has no spread: require two for a Sharpe
CALL_WORK = 1 << 27  # pairs of splits x combinations per kernel call: ~0.15 s on 2 cores
SLICES_PER_THREAD = 4  # slices of a call's pairs scored in parallel, per Numba thread
SCRATCH_BYTES = 1 << 30  # the kernel's scratch of the slices running at once: fewer above it

Progress = Callable[[int, int], None]
"""progress(splits done, n_splits), after each kernel call of `pbo_from_block_tables`."""


@dataclass(frozen=True)
class Degradation:
    """OLS of the winners' OOS Sharpe on their IS Sharpe over the splits (both per period):
    oos = intercept + slope x is, with its R^2, over the n splits where both are finite.
    NaN when n < 2 or the IS Sharpes do not vary (R^2 also when the OOS ones do not)."""

    slope: float
    intercept: float
    r2: float
    n: int


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Probability of backtest overfitting of a return matrix, by CSCV.

    pbo: share of the splits with a winner whose logit is <= 0. n_splits: C(blocks,
    blocks / 2), all splits; n_no_winner of them had every combination flat IS and are left out
    of pbo, degradation and prob_oos_loss (their logit and Sharpes are NaN, winner -1).
    rows_per_block x blocks rows were used, after dropping the dropped_rows oldest ones.
    logits, is_sharpe, oos_sharpe (per period) and winners (column index of the IS best) are
    read-only arrays of shape (n_splits,), in split order. prob_oos_loss: share of the splits
    with a winner whose OOS Sharpe is < 0 (a winner flat OOS is no loss).
    """

    pbo: float
    n_splits: int
    n_no_winner: int
    blocks: int
    rows_per_block: int
    dropped_rows: int
    n_combinations: int
    logits: np.ndarray
    is_sharpe: np.ndarray
    oos_sharpe: np.ndarray
    winners: np.ndarray
    degradation: Degradation
    prob_oos_loss: float
    note: str

    @property
    def n_scored(self) -> int:
        """Splits with an IS winner: the denominator of pbo and prob_oos_loss."""
        return self.n_splits - self.n_no_winner

    def histogram(self, bins: int | Sequence[float] = 20) -> tuple[np.ndarray, np.ndarray]:
        """(counts int64 (n_bins,), edges float64 (n_bins + 1,)) of the finite logits.

        An int gives equal bins over [-ln N, ln N], every logit N combinations can produce
        (0, the PBO cut, is an edge when `bins` is even; a logit of exactly 0 falls in the bin
        to its right, numpy's rule); a sequence is used as the edges.
        """
        finite = self.logits[np.isfinite(self.logits)]
        if isinstance(bins, int | np.integer):
            _require(
                not isinstance(bins, bool) and bins >= 1,
                f"bins must be an int >= 1 or a sequence of edges, got bins={bins!r}; "
                "e.g. bins=20",
            )
            steps = np.arange(bins + 1, dtype=np.float64) * 2.0 - bins  # -bins .. bins
            edges = math.log(self.n_combinations) * (steps / bins)  # 0.0 exact if bins even
        else:
            edges = np.asarray(bins, dtype=np.float64)
        counts, edges = np.histogram(finite, bins=edges)
        return counts.astype(np.int64), edges.astype(np.float64)

    def reading(self) -> str:
        """One plain line, e.g. "the in-sample best ranks at or below the out-of-sample median
        in 62% of 12,870 splits (PBO 0.62)"."""
        share = _percent(self.pbo)
        line = (
            f"the in-sample best ranks at or below the out-of-sample median in {share} of "
            f"{self.n_scored:,} splits (PBO {self.pbo:.2f})"
        )
        if self.n_no_winner:
            line += f"; {self.n_no_winner:,} splits had no in-sample winner (all flat)"
        return line

    def to_json(self, bins: int | Sequence[float] = 20) -> dict[str, Any]:
        """A JSON-safe dict for metrics.json: the scalars, degradation, the logit histogram,
        the reading and the note; not the per-split arrays. NaN becomes None."""
        counts, edges = self.histogram(bins)
        return {
            "pbo": _finite(self.pbo),
            "n_splits": self.n_splits,
            "n_no_winner": self.n_no_winner,
            "blocks": self.blocks,
            "rows_per_block": self.rows_per_block,
            "dropped_rows": self.dropped_rows,
            "n_combinations": self.n_combinations,
            "prob_oos_loss": _finite(self.prob_oos_loss),
            "degradation": {
                "slope": _finite(self.degradation.slope),
                "intercept": _finite(self.degradation.intercept),
                "r2": _finite(self.degradation.r2),
                "n": self.degradation.n,
            },
            "logit_median": _finite(_nanmedian(self.logits)),
            "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
            "sharpe_basis": "per period: mean / std (ddof 1), not annualised",
            "reading": self.reading(),
            "note": self.note,
        }


def probability_of_overfitting(
    returns: npt.ArrayLike, *, blocks: int = 16, progress: Progress | None = None
) -> PBOResult:
    """Probability of backtest overfitting (PBO) of a grid's returns, by CSCV.

    Parameters
    ----------
    returns : array-like of float, shape (n_periods, n_combinations)
        Per-period simple returns (0.01 = 1%), oldest row first, one column per combination
        tried (a grid, an Optuna study, a walk-forward fold); a DataFrame works too. NaN means
        no position (0.0); inf is refused. Not modified.
    blocks : int, default 16
        Even number of contiguous equal blocks, >= 2; C(blocks, blocks / 2) splits (12,870
        for 16) must stay <= 1,000,000. Each block needs >= 2 rows.
    progress : callable, optional
        progress(splits done, n_splits), called as the splits are scored (a few calls a
        second on a large grid); Ctrl-C stops between two calls.

    Returns
    -------
    PBOResult
        pbo, the per-split logits and winners' Sharpes, performance degradation, the
        probability of OOS loss, `histogram()`, `reading()` and `to_json()`.

    Raises
    ------
    TypeError
        `returns` is not numeric.
    ConfigError
        `blocks` is not an even int >= 2 or gives too many splits; `returns` is not 2-D, has
        fewer than 2 columns or 2 rows per block, holds inf; or no split has a winner.

    Notes
    -----
    Bailey, Borwein, López de Prado and Zhu (2017), "The probability of backtest
    overfitting", Journal of Computational Finance 20(4). See the module docstring for the
    conventions (NaN, flat combinations, ties, dropped rows, split order).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0.0, 0.01, size=(400, 50))
    >>> result = probability_of_overfitting(noise, blocks=8)
    >>> result.n_splits, result.dropped_rows
    (70, 0)
    >>> 0.0 <= result.pbo <= 1.0
    True
    """
    n_blocks = _check_blocks(blocks)
    matrix = _check_returns(returns, n_blocks)
    n_periods = matrix.shape[0]
    dropped = n_periods % n_blocks
    tables = block_stats_nb(np.ascontiguousarray(matrix[dropped:]), n_blocks)
    return pbo_from_block_tables(*tables, n_periods=n_periods, progress=progress)


def block_tables(returns: np.ndarray, blocks: int = 16) -> tuple[np.ndarray, ...]:
    """(sums, squares, levels) of `returns`' columns over `blocks` blocks, the oldest
    n_periods mod blocks rows dropped: what `pbo_from_block_tables` needs. Tables of column
    chunks concatenate along axis 1, so a grid too large to hold as one return matrix can be
    reduced chunk by chunk with the same result, bit for bit."""
    n_blocks = _check_blocks(blocks)
    matrix = _check_returns(returns, n_blocks)
    dropped = matrix.shape[0] % n_blocks
    return block_stats_nb(np.ascontiguousarray(matrix[dropped:]), n_blocks)


def check_block_rows(n_periods: int, n_blocks: int) -> None:
    """ConfigError unless `n_periods` rows give each of `n_blocks` blocks >= 2 rows."""
    needed = MIN_ROWS_PER_BLOCK * n_blocks
    _require(
        n_periods >= needed,
        f"returns needs >= {MIN_ROWS_PER_BLOCK} rows per block ({needed:,} rows for "
        f"blocks={n_blocks}), got {n_periods:,} rows; use fewer blocks (e.g. "
        f"blocks={max(2, 2 * (n_periods // (2 * MIN_ROWS_PER_BLOCK)))}) or more periods",
    )


def pbo_from_block_tables(
    sums: np.ndarray,
    squares: np.ndarray,
    levels: np.ndarray,
    *,
    n_periods: int,
    progress: Progress | None = None,
) -> PBOResult:
    """`probability_of_overfitting` from per-block tables (`block_tables`) of a return matrix
    with `n_periods` rows (before the oldest were dropped). The splits are scored in kernel
    calls of about `CALL_WORK` pair-combinations each: `progress(splits done, n_splits)`
    after each, and Ctrl-C is answered between them."""
    n_blocks, n_columns = sums.shape
    rows_per_block = n_periods // n_blocks
    dropped = n_periods - rows_per_block * n_blocks
    _require(n_columns >= 2, f"PBO needs at least 2 combinations, got {n_columns}")
    masks = flat_masks_nb(levels)
    stats = np.stack([sums, squares]).astype(np.float64, copy=False)
    halves = _halves(n_blocks)
    n_pairs = len(halves)
    scores = np.empty((3, 2 * n_pairs), dtype=np.float64)
    winners = np.empty(2 * n_pairs, dtype=np.int64)
    per_call = max(64, CALL_WORK // max(n_columns, 1))
    for first in range(0, n_pairs, per_call):
        last = min(first + per_call, n_pairs)
        n_slices = _slice_count(last - first, n_columns, n_blocks)
        cscv_splits_nb(stats, masks, halves[first:last], rows_per_block, first, n_slices,
                       scores, winners)  # fmt: skip
        if progress is not None:
            progress(2 * last, 2 * n_pairs)
    logits, is_sharpe, oos_sharpe = scores[0].copy(), scores[1].copy(), scores[2].copy()
    scored = winners >= 0
    n_scored = int(scored.sum())
    _require(
        n_scored > 0,
        f"every combination is flat (all returns equal) in-sample in all {len(logits):,} "
        f"splits of the {n_columns:,} columns, so no split has a winner; pass returns that vary",
    )
    for array in (logits, is_sharpe, oos_sharpe, winners):
        array.setflags(write=False)
    note = (
        f"{rows_per_block * n_blocks:,} of {n_periods:,} rows in {n_blocks} blocks of "
        f"{rows_per_block:,}; "
        + (f"the {dropped:,} oldest rows were dropped to make the blocks equal"
           if dropped else "no row dropped")
        + "; NaN returns count as 0 (no position)"
    )  # fmt: skip
    n_no_winner = len(logits) - n_scored
    if n_no_winner:
        note += f"; {n_no_winner:,} splits with every combination flat in-sample are left out"
    return PBOResult(
        pbo=float(np.count_nonzero(logits[scored] <= 0.0) / n_scored),
        n_splits=len(logits),
        n_no_winner=n_no_winner,
        blocks=n_blocks,
        rows_per_block=rows_per_block,
        dropped_rows=dropped,
        n_combinations=n_columns,
        logits=logits,
        is_sharpe=is_sharpe,
        oos_sharpe=oos_sharpe,
        winners=winners,
        degradation=_degradation(is_sharpe, oos_sharpe),
        prob_oos_loss=float(np.count_nonzero(oos_sharpe[scored] < 0.0) / n_scored),
        note=note,
    )


def _slice_count(n_pairs: int, n_columns: int, n_blocks: int) -> int:
    """Slices of a kernel call's `n_pairs` pairs: SLICES_PER_THREAD per Numba thread, fewer
    when the scratch of those running at once (one per thread) would pass SCRATCH_BYTES."""
    per_slice = 8 * n_columns * (2 * n_blocks + 2 * CHUNK_PAIRS + 1)
    threads = get_num_threads()
    n_slices = min(n_pairs, SLICES_PER_THREAD * threads)
    if min(n_slices, threads) * per_slice > SCRATCH_BYTES:
        n_slices = min(n_slices, SCRATCH_BYTES // per_slice)
    return max(1, n_slices)


def _halves(n_blocks: int) -> np.ndarray:
    """int64 (n_splits / 2, n_blocks): row p holds the IS blocks of split p, then those of
    split n_splits - 1 - p (its complement: combinations are in lexicographic order)."""
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)), np.int64)
    n_pairs = len(combos) // 2
    return np.ascontiguousarray(np.hstack([combos[:n_pairs], combos[::-1][:n_pairs]]))


def _check_blocks(blocks: object) -> int:
    if isinstance(blocks, bool) or not isinstance(blocks, int | np.integer):
        raise TypeError(
            f"blocks must be an int, got {type(blocks).__name__} {blocks!r}; e.g. blocks=16"
        )
    n_blocks = operator.index(blocks)
    _require(
        n_blocks >= 2 and n_blocks % 2 == 0,
        f"blocks must be even and >= 2 (half the blocks go in-sample), got blocks={n_blocks}; "
        f"use e.g. blocks={max(2, n_blocks + n_blocks % 2)}",
    )
    n_splits = math.comb(n_blocks, n_blocks // 2)
    _require(
        n_splits <= MAX_SPLITS,
        f"blocks={n_blocks} gives {n_splits:,} splits, more than {MAX_SPLITS:,}; "
        "use blocks <= 22 (16 is the usual choice)",
    )
    return n_blocks


def _check_returns(returns: npt.ArrayLike, n_blocks: int) -> np.ndarray:
    matrix = np.asarray(returns)
    if matrix.dtype.kind not in "iuf":
        raise TypeError(
            f"returns must be numeric (float returns per period), got dtype {matrix.dtype}; "
            "convert with np.asarray(returns, dtype=float)"
        )
    _require(
        matrix.ndim == 2,
        f"returns must be 2-D (periods x combinations), got shape {matrix.shape}; pass one "
        "column of per-period returns per combination",
    )
    n_periods, n_columns = matrix.shape
    _require(
        n_columns >= 2,
        f"returns needs >= 2 columns (combinations) to rank, got {n_columns}; pass the "
        "returns of every combination tried",
    )
    check_block_rows(n_periods, n_blocks)
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    for start in range(0, n_periods, 256):  # in row chunks: no mask as large as the matrix
        infinite = np.isinf(matrix[start : start + 256])
        if not infinite.any():
            continue
        row, column = (int(i) for i in np.argwhere(infinite)[0])
        row += start
        raise ConfigError(
            f"returns must be finite or NaN (NaN = no position), got {matrix[row, column]} "
            f"at row {row}, column {column}; fix or drop that combination"
        )
    return matrix


def _degradation(is_sharpe: np.ndarray, oos_sharpe: np.ndarray) -> Degradation:
    both = np.isfinite(is_sharpe) & np.isfinite(oos_sharpe)
    x, y = is_sharpe[both], oos_sharpe[both]
    n = len(x)
    if n < 2:
        return Degradation(math.nan, math.nan, math.nan, n)
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    if sxx <= 0.0:
        return Degradation(math.nan, math.nan, math.nan, n)
    slope = float(dx @ dy) / sxx
    intercept = float(y.mean()) - slope * float(x.mean())
    r2 = slope * float(dx @ dy) / syy if syy > 0.0 else math.nan
    return Degradation(slope, intercept, r2, n)


def _require(holds: bool, message: str) -> None:
    if not holds:
        raise ConfigError(message)


def _percent(share: float) -> str:
    if 0.0 < share < 0.005:
        return "<1%"
    if 0.995 < share < 1.0:
        return ">99%"
    return f"{share:.0%}"


def _nanmedian(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
