"""Hypothesis properties of the indicator kernels (STYLE 3), per kernel family:

- kernel == its tests/reference.py twin (with leading NaNs injected);
- table row j == the one-window kernel with windows[j], bit for bit;
- causality: changing bars after t leaves out[..., :t + 1] unchanged, bit for bit;
- leading NaNs only shift the output: out(NaN * k + x)[..., k:] == out(x), out[..., :k] NaN;
- parallel table kernels give the same bits with 1 thread and with all threads.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivybt.kernels import bands as kb
from ivybt.kernels import indicators as ki
from ivybt.kernels import rolling as kr
from ivybt.kernels import wilder as kw
from tests import reference
from tests.strategies import (
    OHLC,
    leading_nan_counts,
    macd_triples,
    ohlc_arrays,
    window_lists,
    with_leading_nans,
)
from tests.tolerances import ATOL_PRICE, ATOL_STD, RTOL_RECURSIVE, RTOL_STD, RTOL_SUM

Family = Callable[[OHLC, list[int]], np.ndarray]
TableKernel = Callable[[OHLC, np.ndarray], np.ndarray]
SingleKernel = Callable[[OHLC, int], np.ndarray]


def _w(windows: list[int]) -> np.ndarray:
    return np.asarray(windows, dtype=np.int64)


def _macd_combos(windows: list[int]) -> tuple[list[int], list[int], list[int]]:
    """One valid (fast, slow, signal) combo per window: fast = w, slow = w + 1 + w // 2."""
    return windows, [w + 1 + w // 2 for w in windows], [max(1, w // 3) for w in windows]


# name -> (kernel on bars and windows, twin on bars and windows, rtol, atol)
FAMILIES: dict[str, tuple[Family, Family, float, float]] = {
    "sma": (
        lambda b, w: ki.sma_table_nb(b.close, _w(w)),
        lambda b, w: reference.sma_table(b.close, w),
        RTOL_SUM,
        0.0,
    ),
    "ema": (
        lambda b, w: ki.ema_table_nb(b.close, _w(w)),
        lambda b, w: reference.ema_table(b.close, w),
        RTOL_RECURSIVE,
        0.0,
    ),
    "rma": (
        lambda b, w: ki.rma_table_nb(b.close, _w(w)),
        lambda b, w: reference.rma_table(b.close, w),
        RTOL_RECURSIVE,
        0.0,
    ),
    "true_range": (
        lambda b, w: kw.true_range_nb(b.high, b.low, b.close)[None, :],
        lambda b, w: reference.true_range(b.high, b.low, b.close)[None, :],
        0.0,
        0.0,
    ),
    "atr": (
        lambda b, w: kw.atr_table_nb(b.high, b.low, b.close, _w(w)),
        lambda b, w: reference.atr_table(b.high, b.low, b.close, w),
        RTOL_RECURSIVE,
        0.0,
    ),
    "rsi": (
        lambda b, w: kw.rsi_table_nb(b.close, _w(w)),
        lambda b, w: reference.rsi_table(b.close, w),
        RTOL_RECURSIVE,
        ATOL_PRICE,
    ),
    "rolling_std": (
        lambda b, w: kr.rolling_std_table_nb(b.close, _w(w), 0),
        lambda b, w: reference.rolling_std_table(b.close, w, 0),
        RTOL_STD,
        ATOL_STD,
    ),
    "rolling_max": (
        lambda b, w: kr.rolling_max_table_nb(b.high, _w(w)),
        lambda b, w: reference.rolling_max_table(b.high, w),
        0.0,
        0.0,
    ),
    "rolling_min": (
        lambda b, w: kr.rolling_min_table_nb(b.low, _w(w)),
        lambda b, w: reference.rolling_min_table(b.low, w),
        0.0,
        0.0,
    ),
    "bollinger": (
        lambda b, w: kb.bollinger_nb(b.close, w[0], 2.0),
        lambda b, w: reference.bollinger(b.close, w[0], 2.0),
        RTOL_STD,
        ATOL_PRICE,
    ),
    "keltner": (
        lambda b, w: kb.keltner_nb(b.high, b.low, b.close, w[0], w[-1], 1.5),
        lambda b, w: reference.keltner(b.high, b.low, b.close, w[0], w[-1], 1.5),
        RTOL_RECURSIVE,
        ATOL_PRICE,
    ),
    "donchian": (
        lambda b, w: kb.donchian_nb(b.high, b.low, w[0]),
        lambda b, w: reference.donchian(b.high, b.low, w[0]),
        0.0,
        0.0,
    ),
    "macd": (
        lambda b, w: kb.macd_nb(b.close, *(c[0] for c in _macd_combos(w))),
        lambda b, w: reference.macd(b.close, *(c[0] for c in _macd_combos(w))),
        RTOL_RECURSIVE,
        ATOL_PRICE,
    ),
    "macd_hist_table": (
        lambda b, w: kb.macd_hist_table_nb(b.close, *(_w(c) for c in _macd_combos(w))),
        lambda b, w: reference.macd_hist_table(b.close, *_macd_combos(w)),
        RTOL_RECURSIVE,
        ATOL_PRICE,
    ),
}

# name -> (table kernel on bars and int64 windows, one-window kernel on bars and a window)
TABLES: dict[str, tuple[TableKernel, SingleKernel]] = {
    "sma": (lambda b, w: ki.sma_table_nb(b.close, w), lambda b, n: ki.sma_1d_nb(b.close, n)),
    "ema": (lambda b, w: ki.ema_table_nb(b.close, w), lambda b, n: ki.ema_1d_nb(b.close, n)),
    "rma": (lambda b, w: ki.rma_table_nb(b.close, w), lambda b, n: ki.rma_1d_nb(b.close, n)),
    "atr": (
        lambda b, w: kw.atr_table_nb(b.high, b.low, b.close, w),
        lambda b, n: kw.atr_1d_nb(b.high, b.low, b.close, n),
    ),
    "rsi": (lambda b, w: kw.rsi_table_nb(b.close, w), lambda b, n: kw.rsi_1d_nb(b.close, n)),
    "rolling_std": (
        lambda b, w: kr.rolling_std_table_nb(b.close, w, 0),
        lambda b, n: kr.rolling_std_1d_nb(b.close, n, 0),
    ),
    "rolling_max": (
        lambda b, w: kr.rolling_max_table_nb(b.close, w),
        lambda b, n: kr.rolling_max_1d_nb(b.close, n),
    ),
    "rolling_min": (
        lambda b, w: kr.rolling_min_table_nb(b.close, w),
        lambda b, n: kr.rolling_min_1d_nb(b.close, n),
    ),
    "macd_hist_table": (
        lambda b, w: kb.macd_hist_table_nb(b.close, w, w + 1 + w // 2, np.maximum(1, w // 3)),
        lambda b, n: kb.macd_nb(b.close, n, n + 1 + n // 2, max(1, n // 3))[2],
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
@given(bars=ohlc_arrays(), windows=window_lists(), n_nans=leading_nan_counts())
def test_kernel_matches_reference(
    family: str, bars: OHLC, windows: list[int], n_nans: int
) -> None:
    kernel, twin, rtol, atol = FAMILIES[family]
    padded = with_leading_nans(bars, n_nans)
    got, want = kernel(padded, windows), twin(padded, windows)
    message = f"{family} windows={windows} leading NaNs={n_nans} shape={got.shape}"
    assert got.dtype == np.float64, message
    npt.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=message)
    npt.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=message)


@pytest.mark.parametrize("family", list(TABLES))
@given(bars=ohlc_arrays(), windows=window_lists(), n_nans=leading_nan_counts())
def test_table_row_equals_single_window_run(
    family: str, bars: OHLC, windows: list[int], n_nans: int
) -> None:
    table, single = TABLES[family]
    padded = with_leading_nans(bars, n_nans)
    rows = table(padded, _w(windows))
    assert rows.shape == (len(windows), len(padded.close))
    for j, window in enumerate(windows):
        npt.assert_array_equal(rows[j], single(padded, window), err_msg=f"{family} row {j}")


@pytest.mark.parametrize("family", list(FAMILIES))
@given(
    bars=ohlc_arrays(min_size=1),
    other=ohlc_arrays(min_size=1),
    windows=window_lists(),
    data=st.data(),
)
def test_bars_after_t_do_not_change_outputs_up_to_t(
    family: str, bars: OHLC, other: OHLC, windows: list[int], data: st.DataObject
) -> None:
    """Causality: replace every bar after t by another bar sequence (consistent OHLC)."""
    kernel = FAMILIES[family][0]
    n_bars = len(bars.close)
    t = data.draw(st.integers(0, n_bars - 1), label="t")
    changed = OHLC(
        *(
            np.concatenate([mine[: t + 1], np.resize(theirs, n_bars - t - 1)])
            for mine, theirs in zip(bars, other, strict=True)
        )
    )
    before = kernel(bars, windows)
    after = kernel(changed, windows)
    npt.assert_array_equal(before[..., : t + 1], after[..., : t + 1], err_msg=f"t={t}")


@pytest.mark.parametrize("family", list(FAMILIES))
@given(bars=ohlc_arrays(), windows=window_lists(), n_nans=leading_nan_counts())
def test_leading_nans_only_delay_the_output(
    family: str, bars: OHLC, windows: list[int], n_nans: int
) -> None:
    kernel = FAMILIES[family][0]
    plain = kernel(bars, windows)
    padded = kernel(with_leading_nans(bars, n_nans), windows)
    assert np.isnan(padded[..., :n_nans]).all()
    npt.assert_array_equal(padded[..., n_nans:], plain)


@pytest.mark.parametrize("family", list(TABLES))
@given(bars=ohlc_arrays(), windows=window_lists())
def test_table_kernels_do_not_depend_on_the_thread_count(
    family: str, bars: OHLC, windows: list[int]
) -> None:
    table = TABLES[family][0]
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = table(bars, _w(windows))
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        all_threads = table(bars, _w(windows))
    finally:
        numba.set_num_threads(previous)
    npt.assert_array_equal(one_thread, all_threads)


@given(bars=ohlc_arrays(min_size=1), triple=macd_triples())
def test_macd_lines_start_together_after_slow_plus_signal_bars(
    bars: OHLC, triple: tuple[int, int, int]
) -> None:
    """TA-Lib's alignment: all three lines are NaN before bar slow + signal - 2, set after."""
    fast, slow, signal = triple
    lines = kb.macd_nb(bars.close, fast, slow, signal)
    first = slow + signal - 2
    assert np.isnan(lines[:, :first]).all()
    assert not np.isnan(lines[:, first:]).any()
    npt.assert_array_equal(lines[2], lines[0] - lines[1])
