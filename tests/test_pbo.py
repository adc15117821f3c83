"""Probability of backtest overfitting (CSCV, issue #8): hand-checked matrices, a slow
plain-Python twin, planted edge vs pure noise, validation messages and properties."""

from __future__ import annotations

import itertools
import json
import math

import numba
import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ivybt.errors import ConfigError
from ivybt.stats.pbo import PBOResult, probability_of_overfitting

RTOL_SHARPE = 1e-12  # kernel (sums of block sums) vs twin (numpy two-pass std of raw rows)
UNIT = 2.0**-7  # ~0.8% a period: a power of two, so the hand matrices' sums are exact
ROOT3_HALF = math.sqrt(3.0) / 2.0


# -- the slow twin ------------------------------------------------------------------------------


def _sharpe(values: np.ndarray) -> float:
    """Per-period Sharpe from raw rows: NaN when every value is equal (NaN counts as 0)."""
    values = np.nan_to_num(values, nan=0.0)
    if np.all(values == values[0]):
        return math.nan
    std = float(np.std(values, ddof=1))
    return float(np.mean(values)) / std if std > 0.0 else math.nan


def _average_rank(values: list[float], index: int) -> float:
    """Rank (1 = lowest) of values[index], ties averaged, NaN below every number."""
    keyed = sorted((-math.inf if math.isnan(v) else v, i) for i, v in enumerate(values))
    keys = [key for key, _ in keyed]
    mine = keys[[i for _, i in keyed].index(index)]
    first = keys.index(mine) + 1
    last = len(keys) - keys[::-1].index(mine)
    return (first + last) / 2.0


def cscv_reference(returns: np.ndarray, blocks: int) -> tuple[np.ndarray, ...]:
    """logits, is_sharpe, oos_sharpe, winners: loops over the splits (itertools order),
    Sharpe of every column from the raw rows of each half, after dropping the oldest rows."""
    n_periods, n_columns = returns.shape
    rows = n_periods // blocks
    used = returns[n_periods - rows * blocks :]
    out: list[tuple[float, float, float, int]] = []
    for in_sample in itertools.combinations(range(blocks), blocks // 2):
        out_of_sample = [b for b in range(blocks) if b not in in_sample]
        is_rows = np.concatenate([used[b * rows : (b + 1) * rows] for b in in_sample])
        oos_rows = np.concatenate([used[b * rows : (b + 1) * rows] for b in out_of_sample])
        is_sharpes = [_sharpe(is_rows[:, j]) for j in range(n_columns)]
        oos_sharpes = [_sharpe(oos_rows[:, j]) for j in range(n_columns)]
        finite = [j for j in range(n_columns) if not math.isnan(is_sharpes[j])]
        if not finite:
            out.append((math.nan, math.nan, math.nan, -1))
            continue
        winner = max(finite, key=lambda j: (is_sharpes[j], -j))  # first column on ties
        omega = _average_rank(oos_sharpes, winner) / (n_columns + 1)
        logit = math.log(omega / (1.0 - omega))
        out.append((logit, is_sharpes[winner], oos_sharpes[winner], winner))
    logits, is_sharpe, oos_sharpe, winners = zip(*out, strict=True)
    return np.array(logits), np.array(is_sharpe), np.array(oos_sharpe), np.array(winners)


def _noise(seed: int, n_periods: int, n_columns: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.01, size=(n_periods, n_columns))


# -- hand-checked matrices ----------------------------------------------------------------------


def _block_matrix(levels: list[list[float]], rows_per_block: int = 2) -> np.ndarray:
    """Columns of `levels` (one level per block), each level repeated over its block's rows."""
    return np.repeat(np.array(levels, dtype=np.float64).T, rows_per_block, axis=0) * UNIT


# Three combinations (odd N), four blocks of two rows each (T = 8, S = 4, 6 splits). Every
# block is flat at its level, so a half made of blocks at levels x and y holds {x, x, y, y}:
# mean (x + y) / 2, std |x - y| / sqrt(3), Sharpe = sqrt(3) / 2 * r with r = (x + y) / |x - y|,
# and NaN when x == y (a flat half). Block levels (x UNIT):
#   A:  1,  4,  3, -2      B: -1, -1, -2,  2      C:  2,  1, -1,  1
# r of each half (blocks):  01    02    03    12    13    23
#   A                      5/3    2   -1/3    7    1/3   1/5
#   B                      NaN   -3    1/3   -3    1/3    0
#   C                       3    1/3    3     0    NaN    0
# Ties are exact in floating point: the tied halves hold the same values or twice them.
# split  IS  OOS  winner (IS r)              winner's OOS rank among A, B, C      logit
#   0    01  23   C (3)                      0 ties B's 0, A's 1/5 above: 1.5     ln(3/5)
#   1    02  13   A (2)                      1/3 ties B, C NaN below: 2.5         ln(5/3)
#   2    03  12   C (3)                      0: below A's 7, above B's -3: 2      0
#   3    12  03   A (7)                      -1/3, the lowest: 1                  ln(1/3)
#   4    13  02   A (1/3, ties B: first)     2, the highest: 3                    ln(3)
#   5    23  01   A (1/5)                    5/3: below C's 3, B NaN below: 2     0
# omega = rank / 4; logit <= 0 in splits 0, 2, 3, 5: PBO = 4 / 6. Split 4 shows the tie rule:
# had B won in-sample (OOS r -3) it would rank 1.
HAND_LEVELS = [[1, 4, 3, -2], [-1, -1, -2, 2], [2, 1, -1, 1]]
HAND_WINNERS = [2, 0, 2, 0, 0, 0]
HAND_IS_R = [3, 2, 3, 7, 1 / 3, 1 / 5]
HAND_OOS_R = [0, 1 / 3, 0, -1 / 3, 2, 5 / 3]


def test_hand_matrix_odd_columns_with_ties_and_flat_halves():
    result = probability_of_overfitting(_block_matrix(HAND_LEVELS), blocks=4)
    assert (result.n_splits, result.n_no_winner, result.dropped_rows) == (6, 0, 0)
    assert result.rows_per_block == 2 and result.n_combinations == 3
    npt.assert_array_equal(result.logits, np.log([3 / 5, 5 / 3, 1.0, 1 / 3, 3.0, 1.0]))
    assert result.pbo == 4 / 6
    npt.assert_array_equal(result.winners, HAND_WINNERS)
    npt.assert_allclose(result.is_sharpe, ROOT3_HALF * np.array(HAND_IS_R), rtol=1e-15)
    npt.assert_allclose(result.oos_sharpe, ROOT3_HALF * np.array(HAND_OOS_R), rtol=1e-15,
                        atol=1e-16)  # fmt: skip
    assert result.prob_oos_loss == 1 / 6  # split 3 only
    slope, intercept = np.polyfit(result.is_sharpe, result.oos_sharpe, 1)
    assert result.degradation.slope == pytest.approx(slope, rel=1e-12)
    assert result.degradation.intercept == pytest.approx(intercept, rel=1e-12)
    r = np.corrcoef(result.is_sharpe, result.oos_sharpe)[0, 1]
    assert result.degradation.r2 == pytest.approx(r * r, rel=1e-12)
    assert result.degradation.n == 6
    want = cscv_reference(_block_matrix(HAND_LEVELS), 4)  # the twin agrees with the hand
    npt.assert_array_equal(result.logits, want[0])
    npt.assert_array_equal(result.winners, want[3])


def test_nan_is_flat_and_a_winner_flat_out_of_sample_ties_with_the_other_nans():
    # T = 4, S = 2: split 0 is block 0 in-sample, split 1 block 1; four columns (even N).
    nan = math.nan
    returns = np.array([
        [1.0, nan, 1.0, -1.0],
        [3.0, 2.0, 1.0, 1.0],   # block 0 Sharpe: A sqrt(2), B (0, 2) 1/sqrt(2), C NaN, D 0
        [0.0, nan, 1.0, -2.0],
        [0.0, nan, 2.0, 0.0],   # block 1 Sharpe: A NaN, B NaN (all 0), C 3/sqrt(2), D -1/sqrt(2)
    ]) * UNIT  # fmt: skip
    result = probability_of_overfitting(returns, blocks=2)
    # split 0: A wins; OOS it is NaN, tied with B's NaN below C and D: rank 1.5, omega 0.3.
    # split 1: C wins; OOS it is NaN, alone below A, B, D: rank 1, omega 0.2.
    npt.assert_array_equal(result.winners, [0, 2])
    npt.assert_allclose(result.logits, np.log([3 / 7, 1 / 4]), rtol=1e-15)
    npt.assert_allclose(result.is_sharpe, [math.sqrt(2), 3 / math.sqrt(2)], rtol=1e-15)
    assert np.isnan(result.oos_sharpe).all()
    assert result.pbo == 1.0 and result.prob_oos_loss == 0.0  # flat OOS is no loss
    assert math.isnan(result.degradation.slope) and result.degradation.n == 0
    payload = result.to_json()
    assert payload["degradation"] == {"slope": None, "intercept": None, "r2": None, "n": 0}
    json.dumps(payload, allow_nan=False)


def test_splits_where_everything_is_flat_in_sample_are_left_out():
    levels = [[0, 0, 1, 3], [0, 0, -1, 2]]  # both columns out of the market in blocks 0, 1
    result = probability_of_overfitting(_block_matrix(levels), blocks=4)
    assert result.n_no_winner == 1 and result.n_scored == 5
    assert result.winners[0] == -1 and np.isnan(result.logits[0])
    assert np.isfinite(result.logits[1:]).all()
    assert result.pbo == np.count_nonzero(result.logits[1:] <= 0) / 5
    assert "1 splits with every combination flat in-sample are left out" in result.note
    assert "1 splits had no in-sample winner" in result.reading()


def test_oldest_rows_are_dropped_and_said():
    returns = _noise(3, 203, 6)
    result = probability_of_overfitting(returns, blocks=4)
    assert result.dropped_rows == 3 and result.rows_per_block == 50
    assert "200 of 203 rows in 4 blocks of 50" in result.note
    assert "the 3 oldest rows were dropped" in result.note
    returns[:3] = 1e3  # the dropped rows do not count
    again = probability_of_overfitting(returns, blocks=4)
    npt.assert_array_equal(again.logits, result.logits)
    npt.assert_array_equal(again.logits, probability_of_overfitting(returns[3:], blocks=4).logits)
    assert "no row dropped" in probability_of_overfitting(returns[3:], blocks=4).note


# -- the twin on random matrices ------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "n_periods", "n_columns", "blocks"),
    [(0, 40, 5, 4), (1, 61, 7, 6), (2, 100, 12, 8), (3, 97, 2, 2), (4, 130, 9, 10)],
)
def test_kernel_matches_the_twin_on_random_matrices(seed, n_periods, n_columns, blocks):
    returns = _noise(seed, n_periods, n_columns)
    rng = np.random.default_rng(seed + 100)
    returns[rng.random(returns.shape) < 0.2] = np.nan  # flat bars
    if n_columns > 4:
        returns[:, 0] = 0.0  # a combination that never trades
        returns[: n_periods // 2, 1] = np.nan  # out of the market in the first half
        returns[:, -1] = returns[:, -2]  # a duplicate: exact ties
    result = probability_of_overfitting(returns, blocks=blocks)
    logits, is_sharpe, oos_sharpe, winners = cscv_reference(returns, blocks)
    npt.assert_array_equal(result.winners, winners)
    npt.assert_array_equal(result.logits, logits)
    npt.assert_allclose(result.is_sharpe, is_sharpe, rtol=RTOL_SHARPE)
    npt.assert_allclose(result.oos_sharpe, oos_sharpe, rtol=RTOL_SHARPE, equal_nan=True)


def test_results_do_not_depend_on_the_thread_count():
    returns = _noise(5, 300, 40)
    default = probability_of_overfitting(returns, blocks=12)  # 462 pairs: several chunks
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = probability_of_overfitting(returns, blocks=12)
    finally:
        numba.set_num_threads(threads)
    for name in ("logits", "is_sharpe", "oos_sharpe", "winners"):
        npt.assert_array_equal(getattr(single, name), getattr(default, name))


def test_splits_are_scored_in_calls_with_progress_and_the_same_results(monkeypatch):
    """Issue #13 point 24: the statistics report progress and answer Ctrl-C between kernel
    calls; cutting the pairs of splits into calls changes no result."""
    from ivybt.stats import pbo as pbo_module

    returns = _noise(6, 320, 30)
    whole = probability_of_overfitting(returns, blocks=16)
    monkeypatch.setattr(pbo_module, "CALL_WORK", 64 * 30 * 10)  # 640 pairs of splits a call
    calls = []
    parts = probability_of_overfitting(
        returns, blocks=16, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(min(k, 12_870), 12_870) for k in range(1_280, 12_870 + 1_280, 1_280)]
    for name in ("logits", "is_sharpe", "oos_sharpe", "winners"):
        npt.assert_array_equal(getattr(parts, name), getattr(whole, name))


def test_input_is_not_modified():
    returns = _noise(6, 64, 5)
    returns[::7, 2] = np.nan
    before = returns.copy()
    probability_of_overfitting(returns, blocks=4)
    npt.assert_array_equal(returns, before)


# -- planted edge and pure noise ------------------------------------------------------------


def test_a_planted_strong_edge_gives_pbo_near_zero():
    returns = _noise(7, 2520, 200)
    returns[:, 37] += 0.002  # per-period Sharpe ~0.2 (~3.2 a year); noise SE ~0.03 a half
    result = probability_of_overfitting(returns)
    assert result.n_splits == 12_870 and result.dropped_rows == 8
    assert result.pbo < 0.05
    assert np.count_nonzero(result.winners == 37) > 0.95 * result.n_splits
    assert result.prob_oos_loss < 0.05
    assert result.reading().startswith("the in-sample best ranks at or below the out-of-sample")


def test_pure_noise_gives_pbo_about_one_half_on_average():
    pbos = [probability_of_overfitting(_noise(seed, 240, 20), blocks=8).pbo for seed in range(60)]
    assert abs(np.mean(pbos) - 0.5) < 0.1
    assert min(pbos) < 0.35 and max(pbos) > 0.65  # one noise sample alone says little


# -- the result object ----------------------------------------------------------------------


def test_histogram_reading_and_json():
    result = probability_of_overfitting(_noise(8, 400, 50), blocks=8)
    counts, edges = result.histogram()
    assert counts.sum() == result.n_splits == 70 and len(edges) == 21
    assert edges[0] == -math.log(50) and edges[-1] == math.log(50) and edges[10] == 0.0
    below = np.count_nonzero(result.logits < 0)
    assert result.histogram([-10.0, 0.0, 10.0])[0].tolist() == [below, 70 - below]
    share = f"{result.pbo:.0%}"
    assert result.reading() == (
        f"the in-sample best ranks at or below the out-of-sample median in {share} of 70 "
        f"splits (PBO {result.pbo:.2f})"
    )
    payload = result.to_json()
    assert not {"logits", "is_sharpe", "oos_sharpe", "winners"} & payload.keys()
    assert payload["histogram"]["counts"] == result.histogram()[0].tolist()
    assert payload["pbo"] == result.pbo and payload["note"] == result.note
    json.dumps(payload, allow_nan=False)
    with pytest.raises(ConfigError, match=r"bins must be an int >= 1 .* got bins=0"):
        result.histogram(0)


def test_result_is_frozen_and_its_arrays_read_only():
    result = probability_of_overfitting(_noise(9, 40, 3), blocks=4)
    with pytest.raises(AttributeError):
        result.pbo = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.logits[0] = 0.0


# -- validation messages ----------------------------------------------------------------------

INF_FIRST = np.pad([[np.inf]], ((0, 7), (0, 2)))  # 8 x 3, inf at row 0, column 0


@pytest.mark.parametrize(
    ("returns", "blocks", "message"),
    [
        (np.zeros((40, 3)), 5, r"blocks must be even and >= 2 .* got blocks=5; use e\.g\. "
                               r"blocks=6"),
        (np.zeros((40, 3)), 0, r"blocks must be even and >= 2 .* got blocks=0; use e\.g\. "
                               r"blocks=2"),
        (np.zeros((40, 3)), 24, r"blocks=24 gives 2,704,156 splits, more than 1,000,000; "
                                r"use blocks <= 22"),
        (np.zeros(40), 4, r"returns must be 2-D \(periods x combinations\), got shape \(40,\)"),
        (np.zeros((40, 1)), 4, r"returns needs >= 2 columns \(combinations\) to rank, got 1"),
        (np.zeros((31, 3)), 16, r"returns needs >= 2 rows per block \(32 rows for blocks=16\), "
                                r"got 31 rows; use fewer blocks \(e\.g\. blocks=14\)"),
        (INF_FIRST, 2, r"returns must be finite or NaN \(NaN = no position\), got inf at row 0, "
                       r"column 0"),
        (np.zeros((8, 3)), 2, r"every combination is flat .* in all 2 splits of the 3 columns"),
    ],
)  # fmt: skip
def test_validation_messages(returns, blocks, message):
    with pytest.raises(ConfigError, match=message):
        probability_of_overfitting(returns, blocks=blocks)


@pytest.mark.parametrize(
    ("returns", "blocks", "message"),
    [
        (np.zeros((40, 3)), 4.0, r"blocks must be an int, got float 4\.0; e\.g\. blocks=16"),
        (np.zeros((40, 3)), True, r"blocks must be an int, got bool True"),
        (np.full((40, 3), "x"), 4, r"returns must be numeric .* got dtype <U1"),
    ],
)
def test_type_errors(returns, blocks, message):
    with pytest.raises(TypeError, match=message):
        probability_of_overfitting(returns, blocks=blocks)


def test_a_dataframe_works_like_its_values():
    import pandas as pd

    returns = _noise(10, 64, 4)
    frame = pd.DataFrame(returns, columns=["a", "b", "c", "d"])
    got = probability_of_overfitting(frame, blocks=4)
    npt.assert_array_equal(got.logits, probability_of_overfitting(returns, blocks=4).logits)


# -- properties ----------------------------------------------------------------------------


_LEVELS = [k * UNIT for k in range(-3, 4)] + [math.nan]
_element = st.one_of(
    st.sampled_from(_LEVELS),  # small dyadic grid: many exact ties and flat stretches
    st.floats(-0.1, 0.1).filter(lambda x: x == 0.0 or abs(x) > 1e-9),
)


@st.composite
def _matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    blocks = draw(st.sampled_from([2, 4, 6]))
    n_periods = draw(st.integers(2 * blocks, 6 * blocks + 3))
    n_columns = draw(st.integers(2, 7))
    returns = draw(hnp.arrays(np.float64, (n_periods, n_columns), elements=_element))
    return returns, blocks


def _pbo_or_none(returns: np.ndarray, blocks: int) -> PBOResult | None:
    try:
        return probability_of_overfitting(returns, blocks=blocks)
    except ConfigError as error:  # every combination flat in-sample everywhere
        if "no split has a winner" not in str(error):
            raise
        return None


@given(data=_matrices(), exponent=st.integers(-6, 6))
def test_properties_bounds_and_power_of_two_scaling(data, exponent):
    returns, blocks = data
    result = _pbo_or_none(returns, blocks)
    if result is None:
        return
    assert 0.0 <= result.pbo <= 1.0 and 0.0 <= result.prob_oos_loss <= 1.0
    scored = result.winners >= 0
    assert np.isfinite(result.logits[scored]).all() and np.isnan(result.logits[~scored]).all()
    bound = math.log(returns.shape[1]) * (1 + 1e-12)
    assert (np.abs(result.logits[scored]) <= bound).all()
    assert np.isfinite(result.is_sharpe[scored]).all()
    # x 2**k is exact in floating point: every sum scales exactly, every Sharpe is unchanged
    scaled = probability_of_overfitting(returns * 2.0**exponent, blocks=blocks)
    assert scaled.pbo == result.pbo
    for name in ("logits", "is_sharpe", "oos_sharpe", "winners"):
        npt.assert_array_equal(getattr(scaled, name), getattr(result, name))


@given(data=_matrices(), seed=st.integers(0, 2**32 - 1))
def test_properties_column_permutation(data, seed):
    returns, blocks = data
    result = _pbo_or_none(returns, blocks)
    if result is None:
        return
    order = np.random.default_rng(seed).permutation(returns.shape[1])
    permuted = probability_of_overfitting(returns[:, order], blocks=blocks)
    # the best in-sample Sharpe is the same; the winner may change only among columns tied
    # at it (the first column wins a tie), and where it is the same column, so is its logit
    npt.assert_array_equal(permuted.is_sharpe, result.is_sharpe)
    scored = result.winners >= 0
    npt.assert_array_equal(permuted.winners >= 0, scored)
    same = scored & (order[permuted.winners] == result.winners)
    npt.assert_array_equal(permuted.logits[same], result.logits[same])
    npt.assert_array_equal(permuted.oos_sharpe[same], result.oos_sharpe[same])
    if np.array_equal(same, scored):
        assert permuted.pbo == result.pbo


@pytest.mark.parametrize("scale", [0.37, 3.0, 1e3])
def test_scaling_by_any_positive_constant_keeps_pbo_on_continuous_returns(scale):
    returns = _noise(11, 160, 30)  # no ties: the order of Sharpe ratios survives rounding
    result = probability_of_overfitting(returns, blocks=8)
    scaled = probability_of_overfitting(returns * scale, blocks=8)
    assert scaled.pbo == result.pbo
    npt.assert_array_equal(scaled.logits, result.logits)
    npt.assert_allclose(scaled.is_sharpe, result.is_sharpe, rtol=1e-12)


# -- the fast kernel against a bit-exact twin (issue #19) ---------------------------------------


def cscv_exact_reference(
    sums: np.ndarray, squares: np.ndarray, levels: np.ndarray, n_periods: int
) -> tuple[np.ndarray, ...]:
    """logits, is_sharpe, oos_sharpe, winners from the block tables, every Sharpe computed
    with the kernel's float operations in the kernel's order (a half's block sums added from
    0.0 in block order, then mean, variance, square root) in plain numpy, each half from
    scratch, and every split ranked over all columns: equal to the kernel bit for bit."""
    n_blocks, n_columns = sums.shape
    n_rows = n_periods // n_blocks * (n_blocks // 2)

    def sharpes(half: tuple[int, ...]) -> np.ndarray:
        total, square = np.zeros(n_columns), np.zeros(n_columns)
        for block in half:
            total = total + sums[block]
            square = square + squares[block]
        with np.errstate(all="ignore"):
            mean = total / float(n_rows)
            variance = (square - total * mean) / float(n_rows - 1)
            sharpe = mean / np.sqrt(variance)
        flat = levels[list(half)]
        flat = ~np.isnan(flat).any(axis=0) & (flat == flat[0]).all(axis=0)
        return np.where(flat | ~(variance > 0.0), np.nan, sharpe)

    out: list[tuple[float, float, float, int]] = []
    for in_sample in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_values = sharpes(in_sample)
        oos_values = sharpes(tuple(b for b in range(n_blocks) if b not in in_sample))
        contenders = is_values > -np.inf  # NaN never wins
        if not contenders.any():
            out.append((math.nan, math.nan, math.nan, -1))
            continue
        winner = int(np.flatnonzero(is_values == is_values[contenders].max())[0])
        target = oos_values[winner]
        if math.isnan(target):
            below, equal = 0, int(np.isnan(oos_values).sum())
        else:
            below = int((np.isnan(oos_values) | (oos_values < target)).sum())
            equal = int((oos_values == target).sum())
        omega = (below + (equal + 1) / 2.0) / (n_columns + 1)
        out.append((math.log(omega / (1.0 - omega)), is_values[winner], target, winner))
    logits, is_sharpe, oos_sharpe, winners = zip(*out, strict=True)
    return np.array(logits), np.array(is_sharpe), np.array(oos_sharpe), np.array(winners)


def _assert_bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    """Equal bit for bit (NaN where NaN, any payload; -0.0 is not 0.0)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(got) if got.dtype.kind == "f" else np.zeros(got.shape, dtype=bool)
    if got.dtype.kind == "f":
        npt.assert_array_equal(nan, np.isnan(want))
    npt.assert_array_equal(got[~nan].view(np.int64), want[~nan].view(np.int64))


def _assert_matches_exact_twin(returns: np.ndarray, blocks: int) -> None:
    from ivybt.stats.pbo import block_tables, pbo_from_block_tables

    tables = block_tables(returns, blocks)
    want = cscv_exact_reference(*tables, len(returns))
    if (want[3] == -1).all():  # every combination flat in-sample everywhere
        with pytest.raises(ConfigError, match="no split has a winner"):
            pbo_from_block_tables(*tables, n_periods=len(returns))
        return
    got = pbo_from_block_tables(*tables, n_periods=len(returns))
    for name, expected in zip(("logits", "is_sharpe", "oos_sharpe", "winners"), want,
                              strict=True):  # fmt: skip
        _assert_bits_equal(getattr(got, name), expected)


def _near_tie_matrix(seed: int, n_periods: int, n_columns: int, blocks: int) -> np.ndarray:
    """Noise with the cases the keys must hand over to exact Sharpes: exact duplicates,
    columns one ulp apart in one row, a column flat in some blocks and one trading in one
    block only (flat out of sample where it wins), one of almost constant returns but in
    block 0 (a huge Sharpe: the halves without block 0 are irregular), tiny and huge
    scales (irregular halves too). n_columns >= 10."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, size=(n_periods, n_columns))
    rows = n_periods // blocks
    dropped = n_periods - rows * blocks

    def block_rows(block: int) -> slice:
        return slice(dropped + block * rows, dropped + (block + 1) * rows)

    returns[:, 1] = returns[:, 0]  # exact duplicate
    returns[:, 2] = returns[:, 0]
    row = rng.integers(dropped, n_periods)
    returns[row, 2] = np.nextafter(returns[row, 2], np.inf)  # one ulp apart in one row
    returns[:, 3] = returns[:, 0] * 2.0  # the same Sharpes, other sums
    returns[block_rows(rng.integers(blocks)), 4] = 0.0  # a flat block
    returns[:, 5] = 0.0
    returns[block_rows(blocks - 1), 5] = 0.05 + rng.normal(0.0, 0.01, size=rows)
    returns[:, 6] = -3e-4 + rng.normal(0.0, 1e-12, size=n_periods)  # almost constant
    returns[block_rows(0), 6] = rng.normal(0.0, 0.01, size=rows)
    if seed % 2:
        returns[:, 7] *= 2.0**-520  # sums of squares underflow
        returns[:, 8] *= 2.0**400  # and come close to overflow
    return returns


@pytest.mark.parametrize(
    ("seed", "n_periods", "n_columns", "blocks"),
    [(0, 64, 10, 4), (1, 203, 12, 8), (2, 330, 10, 10), (3, 64, 10, 16), (4, 500, 40, 16)],
)
def test_fast_kernel_equals_the_exact_twin_on_near_ties_and_extremes(
    seed, n_periods, n_columns, blocks
):
    _assert_matches_exact_twin(_near_tie_matrix(seed, n_periods, n_columns, blocks), blocks)


def test_fast_kernel_equals_the_exact_twin_where_keys_tie_often():
    """Many columns, few distinct Sharpes: most bands hold many columns."""
    rng = np.random.default_rng(12)
    base = rng.normal(0.0, 0.01, size=(160, 6))
    base[rng.random(base.shape) < 0.05] = np.nan
    returns = base[:, rng.integers(0, 6, size=300)] * 2.0 ** rng.integers(-3, 4, size=300)
    _assert_matches_exact_twin(returns, 8)


def test_fast_kernel_equals_the_exact_twin_with_a_late_winner():
    returns = _noise(13, 400, 300)  # the winner's band is found past the first groups of 64
    returns[:, 290] += 0.002
    returns[:, 291] = returns[:, 290] * 0.5  # its twin at half the scale: a tie in every split
    _assert_matches_exact_twin(returns, 8)


def test_fast_kernel_is_the_same_for_any_cut_into_slices():
    from ivybt.kernels.cscv import cscv_splits_nb, flat_masks_nb
    from ivybt.stats.pbo import _halves, block_tables

    returns = _near_tie_matrix(5, 400, 30, 12)
    sums, squares, levels = block_tables(returns, 12)
    stats, masks, halves = np.stack([sums, squares]), flat_masks_nb(levels), _halves(12)
    want = cscv_exact_reference(sums, squares, levels, len(returns))
    for n_slices in (1, 2, 7, len(halves)):
        scores = np.empty((3, 2 * len(halves)))
        winners = np.empty(2 * len(halves), dtype=np.int64)
        cscv_splits_nb(stats, masks, halves, 400 // 12, 0, n_slices, scores, winners)
        for got, expected in zip((*scores, winners), want, strict=True):
            _assert_bits_equal(got, expected)


def test_slices_shrink_when_their_scratch_passes_the_cap(monkeypatch):
    from ivybt.stats import pbo as pbo_module

    threads = numba.get_num_threads()
    assert pbo_module._slice_count(1_000, 100, 16) == min(1_000, 4 * threads)
    assert pbo_module._slice_count(3, 100, 16) == min(3, 4 * threads)
    per_slice = 8 * 100 * (2 * 16 + 2 * pbo_module.CHUNK_PAIRS + 1)
    monkeypatch.setattr(pbo_module, "SCRATCH_BYTES", per_slice)  # room for one
    assert pbo_module._slice_count(1_000, 100, 16) == 1
    monkeypatch.setattr(pbo_module, "SCRATCH_BYTES", 0)  # never fewer than one
    assert pbo_module._slice_count(1_000, 100, 16) == 1


_SCALES = [1.0, 1.0, 1e-3, 2.0**-520, 2.0**400]


@st.composite
def _twin_matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    blocks = draw(st.sampled_from([2, 4, 6, 8]))
    n_periods = draw(st.integers(2 * blocks, 8 * blocks + 3))
    n_base = draw(st.integers(1, 4))
    n_columns = draw(st.integers(2, 10))
    base = draw(hnp.arrays(np.float64, (n_periods, n_base), elements=_element))
    picks = draw(st.lists(st.integers(0, n_base - 1), min_size=n_columns, max_size=n_columns))
    scales = draw(st.lists(st.sampled_from(_SCALES), min_size=n_columns, max_size=n_columns))
    returns = base[:, picks] * np.array(scales)
    for column in draw(st.lists(st.integers(0, n_columns - 1), max_size=3)):
        row = draw(st.integers(0, n_periods - 1))  # a near tie: one ulp in one row
        returns[row, column] = np.nextafter(returns[row, column], draw(st.sampled_from([-1, 1])))
    return returns, blocks


@settings(max_examples=300, deadline=None)
@given(data=_twin_matrices())
def test_properties_fast_kernel_equals_the_exact_twin(data):
    returns, blocks = data
    _assert_matches_exact_twin(returns, blocks)
