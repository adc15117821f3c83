"""Indicator kernels and wrappers on real bundled data: SPY 1d, BTCUSD 1d, EURUSD 1h.

Every kernel is checked three ways: (a) against its slow twin in tests/reference.py, (b) against
TA-Lib in TA-Lib's own convention, and (c) against pandas-ta's own code (always `talib=False`:
pandas-ta silently calls TA-Lib when it is installed) with pandas-ta's conventions mapped onto
ours, or, where no mapping exists, after a documented burn-in. Edge cases are real series cut
or masked (empty, shorter than the window, all-NaN, leading NaN, NaN gap, inf, a constant
series, strided and Fortran-ordered views): no synthetic price series.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import numpy.testing as npt
import pandas as pd
import pandas_ta
import pandas_ta.maps
import pytest
import talib

from ivybt import indicators
from ivybt.data.sample import load_sample
from ivybt.kernels import bands as kb
from ivybt.kernels import indicators as ki
from ivybt.kernels import rolling as kr
from ivybt.kernels import wilder as kw
from tests import reference
from tests.tolerances import (
    ATOL_PANDAS_TA_RANGE,
    ATOL_STD,
    ATOL_TALIB_OSCILLATOR,
    RTOL_BURN_IN,
    RTOL_PANDAS_STD_VS_PRICE,
    RTOL_PANDAS_TA,
    RTOL_RECURSIVE,
    RTOL_STD,
    RTOL_STD_EXACT,
    RTOL_SUM,
    RTOL_TALIB,
    RTOL_TALIB_STD,
    ULPS_SMA_EXACT,
)

SAMPLES = {"SPY": ("SPY", "1d"), "BTCUSD": ("BTCUSD", "1d"), "EURUSD": ("EURUSD", "1h")}
SYMBOLS = list(SAMPLES)
WINDOWS = [1, 2, 5, 14, 50]
TALIB_WINDOWS = [2, 5, 14, 20, 50, 200]  # TA-Lib refuses period 1 except in ATR
BURN_IN_WINDOWS = [2, 5, 14]  # longer Wilder windows need more bars than BTCUSD has
MACD_TRIPLES = [(12, 26, 9), (3, 10, 16), (2, 3, 1), (5, 35, 5)]
TWIN_TAIL_BARS = 2000  # the Python-loop twins see the last 2000 EURUSD bars, to stay fast


class Bars(NamedTuple):
    open: Any
    high: Any
    low: Any
    close: Any


@functools.cache
def _frame(symbol: str) -> pd.DataFrame:
    frame, _ = load_sample(*SAMPLES[symbol])
    return frame


def _series(symbol: str) -> Bars:
    frame = _frame(symbol)
    return Bars(frame["open"], frame["high"], frame["low"], frame["close"])


def _arrays(symbol: str) -> Bars:
    return Bars(*(column.to_numpy() for column in _series(symbol)))


def _masked(bars: Bars, rows: slice | list[int], value: float) -> Bars:
    columns = [column.copy() for column in bars]
    for column in columns:
        column[rows] = value
    return Bars(*columns)


@functools.cache
def _cases() -> dict[str, Bars]:
    """Real series, and edge cases cut or masked from real series."""
    spy = _arrays("SPY")
    head = Bars(*(column[:300].copy() for column in spy))
    flat_volume = _frame("EURUSD")["volume"].to_numpy()[:300]  # OANDA quotes: volume is 0.0
    fortran = np.asfortranarray(np.stack(list(head), axis=1))
    with_inf = Bars(head.open, head.high.copy(), head.low, head.close.copy())
    with_inf.high[150] = np.inf
    with_inf.close[150] = np.inf
    return {
        "SPY": spy,
        "BTCUSD": _arrays("BTCUSD"),
        "EURUSD_tail": Bars(*(column[-TWIN_TAIL_BARS:] for column in _arrays("EURUSD"))),
        "empty": Bars(*(column[:0] for column in spy)),
        "shorter_than_window": Bars(*(column[:4] for column in spy)),
        "all_nan": _masked(Bars(*(column[:40] for column in spy)), slice(None), np.nan),
        "leading_nan": _masked(head, slice(0, 7), np.nan),
        "nan_gap": _masked(head, slice(100, 103), np.nan),
        "inf": with_inf,
        "constant": Bars(flat_volume, flat_volume, flat_volume, flat_volume),
        "strided": Bars(*(column[:900:3] for column in spy)),
        "fortran_columns": Bars(*(fortran[:, k] for k in range(4))),
    }


CASES = [
    "SPY",
    "BTCUSD",
    "EURUSD_tail",
    "empty",
    "shorter_than_window",
    "all_nan",
    "leading_nan",
    "nan_gap",
    "inf",
    "constant",
    "strided",
    "fortran_columns",
]


def _assert_matches(
    got: np.ndarray, want: np.ndarray, *, rtol: float, atol: float = 0.0, context: str = ""
) -> None:
    """Same dtype (float64), shape and NaN cells; values within rtol/atol (inf must match)."""
    message = f"{context}: got dtype={got.dtype} shape={got.shape}, want shape={want.shape}"
    assert got.dtype == np.float64, message
    assert got.shape == want.shape, message
    npt.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"NaN cells differ; {message}")
    npt.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=message)


def _windows(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _price_atol(close: np.ndarray, rtol: float) -> float:
    """An absolute tolerance scaled to the price level, for lines that cross zero."""
    finite = np.abs(close[np.isfinite(close)])
    return rtol * float(finite.max()) if finite.size else 0.0


def _burn_in(alpha: float) -> int:
    """Bars after which a seed difference has decayed below RTOL_BURN_IN / 100."""
    return math.ceil(math.log(RTOL_BURN_IN / 100) / math.log(1.0 - alpha))


# ---------------------------------------------------------------------------------------------
# (a) kernels vs tests/reference.py twins, over real series and real edge cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_sma_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.sma_table_nb(close, _windows(WINDOWS))
    want = reference.sma_table(close, WINDOWS)
    _assert_matches(got, want, rtol=RTOL_SUM, context=f"{case} windows={WINDOWS}")


@pytest.mark.parametrize("case", CASES)
def test_sma_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.sma_1d_nb(close, 14)
    _assert_matches(got, reference.sma_1d(close, 14), rtol=RTOL_SUM, context=f"{case} w=14")


@pytest.mark.parametrize("case", CASES)
def test_ema_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.ema_table_nb(close, _windows(WINDOWS))
    want = reference.ema_table(close, WINDOWS)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=f"{case} windows={WINDOWS}")


@pytest.mark.parametrize("case", CASES)
def test_ema_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.ema_1d_nb(close, 14)
    _assert_matches(got, reference.ema_1d(close, 14), rtol=RTOL_RECURSIVE, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rma_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.rma_table_nb(close, _windows(WINDOWS))
    want = reference.rma_table(close, WINDOWS)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=f"{case} windows={WINDOWS}")


@pytest.mark.parametrize("case", CASES)
def test_rma_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = ki.rma_1d_nb(close, 14)
    _assert_matches(got, reference.rma_1d(close, 14), rtol=RTOL_RECURSIVE, context=case)


@pytest.mark.parametrize("case", CASES)
def test_true_range_matches_reference(case: str) -> None:
    bars = _cases()[case]
    got = kw.true_range_nb(bars.high, bars.low, bars.close)
    want = reference.true_range(bars.high, bars.low, bars.close)
    _assert_matches(got, want, rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_atr_table_matches_reference(case: str) -> None:
    bars = _cases()[case]
    got = kw.atr_table_nb(bars.high, bars.low, bars.close, _windows(WINDOWS))
    want = reference.atr_table(bars.high, bars.low, bars.close, WINDOWS)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=f"{case} windows={WINDOWS}")


@pytest.mark.parametrize("case", CASES)
def test_atr_1d_matches_reference(case: str) -> None:
    bars = _cases()[case]
    got = kw.atr_1d_nb(bars.high, bars.low, bars.close, 14)
    want = reference.atr_1d(bars.high, bars.low, bars.close, 14)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rsi_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kw.rsi_table_nb(close, _windows(WINDOWS))
    want = reference.rsi_table(close, WINDOWS)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=f"{case} windows={WINDOWS}")


@pytest.mark.parametrize("case", CASES)
def test_rsi_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kw.rsi_1d_nb(close, 14)
    _assert_matches(got, reference.rsi_1d(close, 14), rtol=RTOL_RECURSIVE, context=case)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("ddof", [0, 1])
def test_rolling_std_table_matches_reference(case: str, ddof: int) -> None:
    close = _cases()[case].close
    got = kr.rolling_std_table_nb(close, _windows(WINDOWS), ddof)
    want = reference.rolling_std_table(close, WINDOWS, ddof)
    context = f"{case} windows={WINDOWS} ddof={ddof}"
    _assert_matches(got, want, rtol=RTOL_STD, atol=ATOL_STD, context=context)


@pytest.mark.parametrize("case", CASES)
def test_rolling_std_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kr.rolling_std_1d_nb(close, 14, 0)
    want = reference.rolling_std_1d(close, 14, 0)
    _assert_matches(got, want, rtol=RTOL_STD, atol=ATOL_STD, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rolling_max_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kr.rolling_max_table_nb(close, _windows(WINDOWS))
    _assert_matches(got, reference.rolling_max_table(close, WINDOWS), rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rolling_min_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kr.rolling_min_table_nb(close, _windows(WINDOWS))
    _assert_matches(got, reference.rolling_min_table(close, WINDOWS), rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rolling_max_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kr.rolling_max_1d_nb(close, 14)
    _assert_matches(got, reference.rolling_max_1d(close, 14), rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_rolling_min_1d_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kr.rolling_min_1d_nb(close, 14)
    _assert_matches(got, reference.rolling_min_1d(close, 14), rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_bollinger_matches_reference(case: str) -> None:
    close = _cases()[case].close
    got = kb.bollinger_nb(close, 14, 2.0)
    want = reference.bollinger(close, 14, 2.0)
    _assert_matches(got, want, rtol=RTOL_STD, atol=ATOL_STD, context=case)


@pytest.mark.parametrize("case", CASES)
def test_keltner_matches_reference(case: str) -> None:
    bars = _cases()[case]
    got = kb.keltner_nb(bars.high, bars.low, bars.close, 20, 10, 1.5)
    want = reference.keltner(bars.high, bars.low, bars.close, 20, 10, 1.5)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, context=case)


@pytest.mark.parametrize("case", CASES)
def test_donchian_matches_reference(case: str) -> None:
    bars = _cases()[case]
    got = kb.donchian_nb(bars.high, bars.low, 14)
    _assert_matches(got, reference.donchian(bars.high, bars.low, 14), rtol=0.0, context=case)


@pytest.mark.parametrize("case", CASES)
def test_macd_matches_reference(case: str) -> None:
    close = _cases()[case].close
    for fast, slow, signal in MACD_TRIPLES:
        got = kb.macd_nb(close, fast, slow, signal)
        want = reference.macd(close, fast, slow, signal)
        atol = _price_atol(close, RTOL_RECURSIVE)
        context = f"{case} ({fast}, {slow}, {signal})"
        _assert_matches(got, want, rtol=RTOL_RECURSIVE, atol=atol, context=context)


@pytest.mark.parametrize("case", CASES)
def test_macd_hist_table_matches_reference(case: str) -> None:
    close = _cases()[case].close
    fasts, slows, signals = (list(column) for column in zip(*MACD_TRIPLES, strict=True))
    got = kb.macd_hist_table_nb(close, _windows(fasts), _windows(slows), _windows(signals))
    want = reference.macd_hist_table(close, fasts, slows, signals)
    atol = _price_atol(close, RTOL_RECURSIVE)
    _assert_matches(got, want, rtol=RTOL_RECURSIVE, atol=atol, context=case)


# ---------------------------------------------------------------------------------------------
# (b) TA-Lib, in TA-Lib's convention (full series)
# ---------------------------------------------------------------------------------------------


def _talib_rows(function: Callable[..., np.ndarray], *columns: np.ndarray, windows: list[int]):
    return np.array([function(*columns, timeperiod=w) for w in windows])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_sma_matches_talib(symbol: str) -> None:
    close = _arrays(symbol).close
    got = ki.sma_table_nb(close, _windows(TALIB_WINDOWS))
    want = _talib_rows(talib.SMA, close, windows=TALIB_WINDOWS)
    _assert_matches(got, want, rtol=RTOL_TALIB, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_ema_matches_talib(symbol: str) -> None:
    close = _arrays(symbol).close
    got = ki.ema_table_nb(close, _windows(TALIB_WINDOWS))
    want = _talib_rows(talib.EMA, close, windows=TALIB_WINDOWS)
    _assert_matches(got, want, rtol=RTOL_TALIB, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_true_range_matches_talib(symbol: str) -> None:
    bars = _arrays(symbol)
    got = kw.true_range_nb(bars.high, bars.low, bars.close)
    npt.assert_array_equal(got, talib.TRANGE(bars.high, bars.low, bars.close))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_atr_matches_talib(symbol: str) -> None:
    bars = _arrays(symbol)
    windows = [1, *TALIB_WINDOWS]
    got = kw.atr_table_nb(bars.high, bars.low, bars.close, _windows(windows))
    want = _talib_rows(talib.ATR, bars.high, bars.low, bars.close, windows=windows)
    _assert_matches(got, want, rtol=RTOL_TALIB, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rsi_matches_talib(symbol: str) -> None:
    close = _arrays(symbol).close
    got = kw.rsi_table_nb(close, _windows(TALIB_WINDOWS))
    want = _talib_rows(talib.RSI, close, windows=TALIB_WINDOWS)
    _assert_matches(got, want, rtol=0.0, atol=ATOL_TALIB_OSCILLATOR, context=symbol)


def test_rsi_of_a_flat_market_is_zero_like_talib() -> None:
    """EURUSD volume is a real all-zero column (OANDA quotes): no gains, no losses."""
    flat = _frame("EURUSD")["volume"].to_numpy()[:100]
    got = kw.rsi_1d_nb(flat, 14)
    npt.assert_array_equal(got, talib.RSI(flat, 14))
    assert (got[14:] == 0.0).all()


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rolling_std_matches_talib_stddev(symbol: str) -> None:
    """TA-Lib STDDEV is the population std (ddof=0), computed as E[x**2] - E[x]**2."""
    close = _arrays(symbol).close
    got = kr.rolling_std_table_nb(close, _windows(TALIB_WINDOWS), 0)
    want = _talib_rows(talib.STDDEV, close, windows=TALIB_WINDOWS)
    atol = _price_atol(close, RTOL_TALIB_STD)
    _assert_matches(got, want, rtol=0.0, atol=atol, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rolling_max_and_min_match_talib(symbol: str) -> None:
    close = _arrays(symbol).close
    got_max = kr.rolling_max_table_nb(close, _windows(TALIB_WINDOWS))
    got_min = kr.rolling_min_table_nb(close, _windows(TALIB_WINDOWS))
    npt.assert_array_equal(got_max, _talib_rows(talib.MAX, close, windows=TALIB_WINDOWS))
    npt.assert_array_equal(got_min, _talib_rows(talib.MIN, close, windows=TALIB_WINDOWS))


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(("window", "num_std"), [(5, 2.0), (20, 2.0), (20, 1.5), (50, 2.5)])
def test_bollinger_matches_talib_bbands(symbol: str, window: int, num_std: float) -> None:
    close = _arrays(symbol).close
    upper, middle, lower = talib.BBANDS(close, window, num_std, num_std, talib.MA_Type.SMA)
    got = kb.bollinger_nb(close, window, num_std)
    atol = _price_atol(close, RTOL_TALIB_STD)
    _assert_matches(got, np.array([lower, middle, upper]), rtol=0.0, atol=atol, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_keltner_parts_match_talib_ema_and_atr(symbol: str) -> None:
    """TA-Lib has no Keltner channel: middle = EMA(close, 20), half-width = 2 * ATR(10)."""
    bars = _arrays(symbol)
    got = kb.keltner_nb(bars.high, bars.low, bars.close, 20, 10, 2.0)
    ema = talib.EMA(bars.close, 20)
    band = 2.0 * talib.ATR(bars.high, bars.low, bars.close, 10)
    want = np.array([ema - band, ema, ema + band])
    _assert_matches(got, want, rtol=RTOL_TALIB, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_donchian_matches_talib_min_max(symbol: str) -> None:
    bars = _arrays(symbol)
    lower, upper = talib.MIN(bars.low, 20), talib.MAX(bars.high, 20)
    want = np.array([lower, 0.5 * (lower + upper), upper])
    npt.assert_array_equal(kb.donchian_nb(bars.high, bars.low, 20), want)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(("fast", "slow", "signal"), MACD_TRIPLES)
def test_macd_matches_talib(symbol: str, fast: int, slow: int, signal: int) -> None:
    """Including TA-Lib's fast-EMA alignment and its NaN cells before bar slow + signal - 2."""
    close = _arrays(symbol).close
    got = kb.macd_nb(close, fast, slow, signal)
    want = np.array(talib.MACD(close, fast, slow, signal))
    atol = _price_atol(close, ATOL_TALIB_OSCILLATOR)
    _assert_matches(got, want, rtol=RTOL_TALIB, atol=atol, context=symbol)
    assert np.isnan(got[:, : slow + signal - 2]).all()
    assert not np.isnan(got[:, slow + signal - 2]).any()


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_macd_hist_table_matches_talib(symbol: str) -> None:
    close = _arrays(symbol).close
    fasts, slows, signals = (_windows(list(c)) for c in zip(*MACD_TRIPLES, strict=True))
    got = kb.macd_hist_table_nb(close, fasts, slows, signals)
    want = np.array([talib.MACD(close, f, s, g)[2] for f, s, g in MACD_TRIPLES])
    atol = _price_atol(close, ATOL_TALIB_OSCILLATOR)
    _assert_matches(got, want, rtol=RTOL_TALIB, atol=atol, context=symbol)


# ---------------------------------------------------------------------------------------------
# (c) pandas-ta's own code (talib=False), conventions mapped
# ---------------------------------------------------------------------------------------------


def _with_sma_seed(values: pd.Series, window: int, first: int = 0) -> pd.Series:
    """Map a first-value-seeded `ewm` onto TA-Lib's seed: NaN before bar first + window - 1,
    the mean of values[first : first + window] at that bar, the values after it unchanged."""
    mapped = values.copy()
    mapped.iloc[: first + window - 1] = np.nan
    mapped.iloc[first + window - 1] = values.iloc[first : first + window].mean()
    return mapped


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
def test_sma_matches_pandas_ta(symbol: str, window: int) -> None:
    close = _series(symbol).close
    want = pandas_ta.sma(close, window, talib=False)
    got = indicators.sma(close, window=window)
    _assert_matches(got.to_numpy(), want.to_numpy(), rtol=RTOL_PANDAS_TA, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
def test_ema_matches_pandas_ta(symbol: str, window: int) -> None:
    """pandas-ta's `presma=True` (its default) is TA-Lib's SMA seed: no mapping needed."""
    close = _series(symbol).close
    want = pandas_ta.ema(close, window, talib=False, presma=True)
    got = indicators.ema(close, window=window)
    _assert_matches(got.to_numpy(), want.to_numpy(), rtol=RTOL_PANDAS_TA, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
def test_rma_matches_pandas_ta_with_sma_seed(symbol: str, window: int) -> None:
    """pandas-ta `rma` is `ewm(alpha=1/n, adjust=False)` seeded with the first value; fed the
    SMA seed (NaN before it), it computes exactly our recursion."""
    close = _series(symbol).close
    want = pandas_ta.rma(_with_sma_seed(close, window), window)
    got = indicators.rma(close, window=window)
    _assert_matches(got.to_numpy(), want.to_numpy(), rtol=RTOL_PANDAS_TA, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_true_range_matches_pandas_ta(symbol: str) -> None:
    """`prenan=True` makes bar 0 NaN as in TA-Lib (pandas-ta's default gives high - low). Its
    high - low carries + epsilon on every bar if any bar is flat (see ATOL_PANDAS_TA_RANGE)."""
    bars = _series(symbol)
    want = pandas_ta.true_range(bars.high, bars.low, bars.close, talib=False, prenan=True)
    got = indicators.true_range(bars.high, bars.low, bars.close)
    _assert_matches(
        got.to_numpy(), want.to_numpy(), rtol=0.0, atol=ATOL_PANDAS_TA_RANGE, context=symbol
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
def test_atr_matches_pandas_ta_rma_of_true_range(symbol: str, window: int) -> None:
    """Exact mapping: pandas-ta `rma` of its own true range, SMA-seeded on TR[1 .. n]."""
    bars = _series(symbol)
    ranges = pandas_ta.true_range(bars.high, bars.low, bars.close, talib=False, prenan=True)
    want = pandas_ta.rma(_with_sma_seed(ranges, window, first=1), window)
    got = indicators.atr(bars.high, bars.low, bars.close, window=window)
    _assert_matches(
        got.to_numpy(),
        want.to_numpy(),
        rtol=RTOL_PANDAS_TA,
        atol=ATOL_PANDAS_TA_RANGE,
        context=symbol,
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", BURN_IN_WINDOWS)
def test_atr_converges_to_pandas_ta_atr(symbol: str, window: int) -> None:
    """pandas-ta `atr(talib=False)` seeds with mean(TR[0 .. n-1]) at bar n-1, where its TR[0]
    is high - low (its `presma` kwarg cannot move the seed to TA-Lib's mean(TR[1 .. n]) at bar
    n). No mapping through its arguments exists, so compare once the seed difference has
    decayed by (1 - 1/n) ** bars below RTOL_BURN_IN / 100."""
    bars = _series(symbol)
    start = window + _burn_in(1.0 / window)
    assert start < len(bars.close) - 100, "not enough bars for the burn-in"
    want = pandas_ta.atr(bars.high, bars.low, bars.close, window, talib=False)
    got = indicators.atr(bars.high, bars.low, bars.close, window=window)
    _assert_matches(
        got.to_numpy()[start:], want.to_numpy()[start:], rtol=RTOL_BURN_IN, context=symbol
    )


def _pandas_ta_gains_losses(close: pd.Series, window: int) -> tuple[pd.Series, pd.Series]:
    change = close.diff()
    gains, losses = change.clip(lower=0.0), (-change).clip(lower=0.0)
    return (
        pandas_ta.rma(_with_sma_seed(gains, window, first=1), window),
        pandas_ta.rma(_with_sma_seed(losses, window, first=1), window),
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
def test_rsi_matches_pandas_ta_rma_of_gains_and_losses(symbol: str, window: int) -> None:
    """Exact mapping: pandas-ta `rma` of gains and losses, SMA-seeded on changes 1 .. n."""
    close = _series(symbol).close
    avg_gain, avg_loss = _pandas_ta_gains_losses(close, window)
    want = 100.0 * avg_gain / (avg_gain + avg_loss)
    got = indicators.rsi(close, window=window)
    _assert_matches(got.to_numpy(), want.to_numpy(), rtol=RTOL_PANDAS_TA, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", BURN_IN_WINDOWS)
def test_rsi_converges_to_pandas_ta_rsi(symbol: str, window: int) -> None:
    """pandas-ta `rsi(talib=False)` smooths gains and losses with `ewm` seeded on the first
    change (bar 1) and has no seeding option, so compare after the burn-in (see ATR)."""
    close = _series(symbol).close
    start = window + _burn_in(1.0 / window)
    want = pandas_ta.rsi(close, window, talib=False)
    got = indicators.rsi(close, window=window)
    _assert_matches(
        got.to_numpy()[start:], want.to_numpy()[start:], rtol=RTOL_BURN_IN, context=symbol
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 14, 50])
@pytest.mark.parametrize("ddof", [0, 1])
def test_rolling_std_matches_pandas_ta_stdev(symbol: str, window: int, ddof: int) -> None:
    """pandas-ta `stdev` defaults to ddof=1; ddof must be a Python int (a numpy integer is
    silently replaced by 1). Its pandas rolling variance drifts on long series, hence the
    price-scaled tolerance (see tests/tolerances.py)."""
    close = _series(symbol).close
    want = pandas_ta.stdev(close, window, ddof=ddof, talib=False)
    got = indicators.rolling_std(close, window=window, ddof=ddof)
    atol = _price_atol(close.to_numpy(), RTOL_PANDAS_STD_VS_PRICE)
    _assert_matches(got.to_numpy(), want.to_numpy(), rtol=0.0, atol=atol, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(("window", "num_std"), [(5, 2.0), (20, 2.0), (20, 1.5)])
def test_bollinger_matches_pandas_ta_bbands(symbol: str, window: int, num_std: float) -> None:
    """pandas-ta `bbands` defaults to ddof=1; pass ddof=0 for TA-Lib's population std."""
    close = _series(symbol).close
    theirs = pandas_ta.bbands(
        close, window, lower_std=num_std, upper_std=num_std, ddof=0, talib=False
    )
    want = theirs.iloc[:, :3].to_numpy()  # BBL, BBM, BBU
    got = indicators.bollinger(close, window=window, num_std=num_std)
    atol = _price_atol(close.to_numpy(), RTOL_PANDAS_STD_VS_PRICE)
    _assert_matches(got.to_numpy(), want, rtol=0.0, atol=atol, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("atr_window", [3, 5, 10])
def test_keltner_matches_pandas_ta_kc(
    symbol: str, atr_window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas-ta `kc` has no `talib` argument (a `talib=False` kwarg is swallowed) and uses TA-Lib
    whenever it is installed, so its switch `pandas_ta.maps.Imports["talib"]` is turned off.
    kc(length=L) smooths the true range with an EMA of span L: alpha = 2 / (L + 1), which is
    Wilder's 1 / m for L = 2m - 1. Middle lines are then equal exactly; the bands differ only
    by the seed (kc: mean(TR[0 .. L-1]) at bar L-1 with TR[0] = high - low; ours: mean(TR[1 ..
    m]) at bar m), so they are compared after the burn-in."""
    monkeypatch.setitem(pandas_ta.maps.Imports, "talib", False)
    bars = _series(symbol)
    span = 2 * atr_window - 1
    theirs = pandas_ta.kc(bars.high, bars.low, bars.close, length=span, scalar=1.5, mamode="ema")
    got = indicators.keltner(
        bars.high, bars.low, bars.close, window=span, atr_window=atr_window, multiplier=1.5
    )
    kc_lower, kc_middle, kc_upper = (theirs.iloc[:, k].to_numpy() for k in range(3))
    _assert_matches(got["middle"].to_numpy(), kc_middle, rtol=RTOL_PANDAS_TA, context=symbol)
    start = span + _burn_in(1.0 / atr_window)
    for ours, kc_line in ((got["lower"], kc_lower), (got["upper"], kc_upper)):
        got_width = (ours - got["middle"]).to_numpy()[start:]
        want_width = (kc_line - kc_middle)[start:]
        _assert_matches(got_width, want_width, rtol=RTOL_BURN_IN, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", [2, 20, 55])
def test_donchian_matches_pandas_ta(symbol: str, window: int) -> None:
    bars = _series(symbol)
    theirs = pandas_ta.donchian(bars.high, bars.low, lower_length=window, upper_length=window)
    got = indicators.donchian(bars.high, bars.low, window=window)
    npt.assert_array_equal(got.to_numpy(), theirs.to_numpy())  # DCL, DCM, DCU


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(("fast", "slow", "signal"), MACD_TRIPLES)
def test_macd_matches_pandas_ta_emas_with_talib_alignment(
    symbol: str, fast: int, slow: int, signal: int
) -> None:
    """Exact mapping through pandas-ta `ema(talib=False)`: the fast EMA runs on
    close[slow - fast:], so its SMA seed ends at bar slow - 1 as in TA-Lib; the signal is the
    EMA of the MACD line from its first valid bar; the line is NaN until the signal starts."""
    close = _series(symbol).close
    fast_ema = pandas_ta.ema(close.iloc[slow - fast :], fast, talib=False).reindex(close.index)
    slow_ema = pandas_ta.ema(close, slow, talib=False)
    line = fast_ema - slow_ema
    signal_line = pandas_ta.ema(line.iloc[slow - 1 :], signal, talib=False)
    signal_line = signal_line.reindex(close.index)
    line = line.where(signal_line.notna())
    want = np.array([line, signal_line, line - signal_line]).T
    got = indicators.macd(close, fast=fast, slow=slow, signal=signal)
    atol = _price_atol(close.to_numpy(), RTOL_PANDAS_TA)
    _assert_matches(got.to_numpy(), want, rtol=RTOL_PANDAS_TA, atol=atol, context=symbol)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (3, 10, 16)])
def test_macd_converges_to_pandas_ta_macd(symbol: str, fast: int, slow: int, signal: int) -> None:
    """pandas-ta `macd(talib=False)` seeds the fast EMA at bar fast - 1 (not slow - 1) and
    outputs the line from bar slow - 1; its columns are ordered MACD, MACDh, MACDs. Compare
    after the fast-EMA seed difference has decayed and then the signal EMA's seed too."""
    close = _series(symbol).close
    start = slow + signal + _burn_in(2.0 / (fast + 1)) + _burn_in(2.0 / (signal + 1))
    theirs = pandas_ta.macd(close, fast, slow, signal, talib=False)
    suffix = f"_{fast}_{slow}_{signal}"
    want = theirs[[f"MACD{suffix}", f"MACDs{suffix}", f"MACDh{suffix}"]].to_numpy()[start:]
    got = indicators.macd(close, fast=fast, slow=slow, signal=signal).to_numpy()[start:]
    atol = _price_atol(close.to_numpy(), RTOL_BURN_IN)
    _assert_matches(got, want, rtol=RTOL_BURN_IN, atol=atol, context=symbol)


# ---------------------------------------------------------------------------------------------
# Precision regressions
# ---------------------------------------------------------------------------------------------


def test_sma_is_exact_to_a_few_ulps_on_a_long_series() -> None:
    """74k EURUSD bars: the compensated prefix sum does not drift (math.fsum is exact)."""
    close = _arrays("EURUSD").close
    window = 50
    got = ki.sma_1d_nb(close, window)
    exact = np.array(
        [math.fsum(close[t - window + 1 : t + 1]) / window for t in range(window - 1, len(close))]
    )
    npt.assert_array_max_ulp(got[window - 1 :], exact, maxulp=ULPS_SMA_EXACT)


@pytest.mark.parametrize("symbol", ["BTCUSD", "EURUSD"])
def test_rolling_std_is_exact_to_rounding(symbol: str) -> None:
    """Against statistics.pstdev on Fractions (exact): no E[x**2] - E[x]**2 cancellation."""
    close = _arrays(symbol).close[:1200]
    window = 20
    got = kr.rolling_std_1d_nb(close, window, 0)[window - 1 :]
    exact = np.array(
        [
            float(statistics.pstdev([Fraction(x) for x in close[t - window + 1 : t + 1]]))
            for t in range(window - 1, len(close))
        ]
    )
    npt.assert_allclose(got, exact, rtol=RTOL_STD_EXACT, atol=0.0)


# ---------------------------------------------------------------------------------------------
# Table rows, input immutability, wrappers
# ---------------------------------------------------------------------------------------------

TABLE_WINDOWS = [1, 3, 14, 14, 60]

TABLE_VS_1D: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "sma": (
        lambda b, w: ki.sma_table_nb(b.close, w),
        lambda b, n: ki.sma_1d_nb(b.close, n),
    ),
    "ema": (
        lambda b, w: ki.ema_table_nb(b.close, w),
        lambda b, n: ki.ema_1d_nb(b.close, n),
    ),
    "rma": (
        lambda b, w: ki.rma_table_nb(b.close, w),
        lambda b, n: ki.rma_1d_nb(b.close, n),
    ),
    "atr": (
        lambda b, w: kw.atr_table_nb(b.high, b.low, b.close, w),
        lambda b, n: kw.atr_1d_nb(b.high, b.low, b.close, n),
    ),
    "rsi": (
        lambda b, w: kw.rsi_table_nb(b.close, w),
        lambda b, n: kw.rsi_1d_nb(b.close, n),
    ),
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
    "macd_hist": (
        lambda b, w: kb.macd_hist_table_nb(b.close, w, w + 7, np.maximum(w // 2, 1)),
        lambda b, n: kb.macd_nb(b.close, n, n + 7, max(n // 2, 1))[2],
    ),
}


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("family", list(TABLE_VS_1D))
def test_table_row_equals_the_1d_kernel(symbol: str, family: str) -> None:
    bars = _arrays(symbol)
    table, single = TABLE_VS_1D[family]
    rows = table(bars, _windows(TABLE_WINDOWS))
    assert rows.shape == (len(TABLE_WINDOWS), len(bars.close))
    for j, window in enumerate(TABLE_WINDOWS):
        npt.assert_array_equal(rows[j], single(bars, window), err_msg=f"{family} row {j}")


KERNEL_CALLS: dict[str, Callable[[Bars], np.ndarray]] = {
    "sma_table_nb": lambda b: ki.sma_table_nb(b.close, _windows(WINDOWS)),
    "sma_1d_nb": lambda b: ki.sma_1d_nb(b.close, 14),
    "ema_table_nb": lambda b: ki.ema_table_nb(b.close, _windows(WINDOWS)),
    "ema_1d_nb": lambda b: ki.ema_1d_nb(b.close, 14),
    "rma_table_nb": lambda b: ki.rma_table_nb(b.close, _windows(WINDOWS)),
    "rma_1d_nb": lambda b: ki.rma_1d_nb(b.close, 14),
    "true_range_nb": lambda b: kw.true_range_nb(b.high, b.low, b.close),
    "atr_table_nb": lambda b: kw.atr_table_nb(b.high, b.low, b.close, _windows(WINDOWS)),
    "atr_1d_nb": lambda b: kw.atr_1d_nb(b.high, b.low, b.close, 14),
    "rsi_table_nb": lambda b: kw.rsi_table_nb(b.close, _windows(WINDOWS)),
    "rsi_1d_nb": lambda b: kw.rsi_1d_nb(b.close, 14),
    "rolling_std_table_nb": lambda b: kr.rolling_std_table_nb(b.close, _windows(WINDOWS), 0),
    "rolling_std_1d_nb": lambda b: kr.rolling_std_1d_nb(b.close, 14, 1),
    "rolling_max_table_nb": lambda b: kr.rolling_max_table_nb(b.close, _windows(WINDOWS)),
    "rolling_min_table_nb": lambda b: kr.rolling_min_table_nb(b.close, _windows(WINDOWS)),
    "rolling_max_1d_nb": lambda b: kr.rolling_max_1d_nb(b.close, 14),
    "rolling_min_1d_nb": lambda b: kr.rolling_min_1d_nb(b.close, 14),
    "bollinger_nb": lambda b: kb.bollinger_nb(b.close, 20, 2.0),
    "keltner_nb": lambda b: kb.keltner_nb(b.high, b.low, b.close, 20, 10, 2.0),
    "donchian_nb": lambda b: kb.donchian_nb(b.high, b.low, 20),
    "macd_nb": lambda b: kb.macd_nb(b.close, 12, 26, 9),
    "macd_hist_table_nb": lambda b: kb.macd_hist_table_nb(
        b.close, _windows([12, 5]), _windows([26, 35]), _windows([9, 5])
    ),
}


@pytest.mark.parametrize("kernel", list(KERNEL_CALLS))
def test_kernels_leave_inputs_unchanged(kernel: str) -> None:
    bars = _cases()["nan_gap"]  # real SPY bars with a NaN gap, so NaN paths run too
    before = [column.copy() for column in bars]
    KERNEL_CALLS[kernel](bars)
    for name, column, copy in zip(Bars._fields, bars, before, strict=True):
        npt.assert_array_equal(column, copy, err_msg=f"{kernel} changed {name}")


WRAPPER_CALLS: dict[str, Callable[[Bars], Any]] = {
    "sma": lambda b: indicators.sma(b.close, window=20),
    "ema": lambda b: indicators.ema(b.close, window=20),
    "rma": lambda b: indicators.rma(b.close, window=20),
    "true_range": lambda b: indicators.true_range(b.high, b.low, b.close),
    "atr": lambda b: indicators.atr(b.high, b.low, b.close, window=14),
    "rsi": lambda b: indicators.rsi(b.close, window=14),
    "rolling_std": lambda b: indicators.rolling_std(b.close, window=20),
    "bollinger": lambda b: indicators.bollinger(b.close, window=20, num_std=2.0),
    "keltner": lambda b: indicators.keltner(b.high, b.low, b.close),
    "donchian": lambda b: indicators.donchian(b.high, b.low, window=20),
    "macd": lambda b: indicators.macd(b.close),
}

TABLE_WRAPPER_CALLS: dict[str, Callable[[Bars], pd.DataFrame]] = {
    "sma_table": lambda b: indicators.sma_table(b.close, windows=[20, 5, 20]),
    "ema_table": lambda b: indicators.ema_table(b.close, windows=[20, 5, 20]),
    "rma_table": lambda b: indicators.rma_table(b.close, windows=[20, 5, 20]),
    "atr_table": lambda b: indicators.atr_table(b.high, b.low, b.close, windows=[20, 5, 20]),
    "rsi_table": lambda b: indicators.rsi_table(b.close, windows=[20, 5, 20]),
    "rolling_std_table": lambda b: indicators.rolling_std_table(b.close, windows=[20, 5, 20]),
    "rolling_max_table": lambda b: indicators.rolling_max_table(b.close, windows=[20, 5, 20]),
    "rolling_min_table": lambda b: indicators.rolling_min_table(b.close, windows=[20, 5, 20]),
    "macd_hist_table": lambda b: indicators.macd_hist_table(
        b.close, fasts=[12, 5, 12], slows=[26, 35, 26], signals=[9, 5, 9]
    ),
}


@pytest.mark.parametrize("wrapper", list(WRAPPER_CALLS))
def test_wrappers_give_the_same_values_for_series_and_arrays(wrapper: str) -> None:
    from_series = WRAPPER_CALLS[wrapper](_series("SPY"))
    from_arrays = WRAPPER_CALLS[wrapper](_arrays("SPY"))
    assert isinstance(from_series, pd.Series | pd.DataFrame)
    assert isinstance(from_arrays, np.ndarray)
    assert from_series.index.equals(_frame("SPY").index)
    npt.assert_array_equal(from_series.to_numpy(), from_arrays)
    if isinstance(from_series, pd.DataFrame):
        assert from_arrays.shape == (len(_frame("SPY")), 3)
        assert list(from_series.columns) in (
            ["lower", "middle", "upper"],
            ["macd", "signal", "histogram"],
        )


@pytest.mark.parametrize("wrapper", list(TABLE_WRAPPER_CALLS))
def test_table_wrappers_keep_the_order_asked_and_compute_duplicates_once(wrapper: str) -> None:
    from_series = TABLE_WRAPPER_CALLS[wrapper](_series("SPY"))
    from_arrays = TABLE_WRAPPER_CALLS[wrapper](_arrays("SPY"))
    assert from_series.index.equals(_frame("SPY").index)
    assert from_arrays.index.equals(pd.RangeIndex(len(_frame("SPY")), name="bar"))
    npt.assert_array_equal(from_series.to_numpy(), from_arrays.to_numpy())
    assert from_series.shape == (len(_frame("SPY")), 3)
    npt.assert_array_equal(from_series.iloc[:, 0], from_series.iloc[:, 2])
    assert not np.array_equal(from_series.iloc[:, 0], from_series.iloc[:, 1], equal_nan=True)


def test_table_wrapper_columns_equal_the_one_column_wrappers() -> None:
    bars = _series("SPY")
    table = indicators.rsi_table(bars.close, windows=[20, 5, 20])
    assert list(table.columns) == [20, 5, 20] and table.columns.name == "window"
    npt.assert_array_equal(table[5], indicators.rsi(bars.close, window=5))
    hist = TABLE_WRAPPER_CALLS["macd_hist_table"](bars)
    assert hist.columns.names == ["fast", "slow", "signal"]
    npt.assert_array_equal(
        hist[(5, 35, 5)], indicators.macd(bars.close, fast=5, slow=35, signal=5)["histogram"]
    )


def test_wrappers_accept_integer_and_non_contiguous_input() -> None:
    volume = _frame("SPY")["volume"]  # float64 here; as int64 it must convert losslessly
    as_int = volume.astype(np.int64)
    npt.assert_array_equal(
        indicators.sma(as_int, window=5), indicators.sma(as_int.astype(float), window=5)
    )
    strided = _arrays("SPY").close[::2]
    npt.assert_array_equal(
        indicators.ema(strided, window=5), indicators.ema(strided.copy(), window=5)
    )


def _spy_close() -> pd.Series:
    return _series("SPY").close


def _shifted_low() -> pd.Series:
    low = _series("SPY").low
    return pd.Series(low.to_numpy(), index=low.index + pd.Timedelta(days=1))


WINDOW_FIX = "pass a look-back length in bars such as 14"
WINDOWS_FIX = "pass look-back lengths in bars such as [10, 20, 50]"
DDOF_FIX = "use ddof=0 (population std, TA-Lib) or ddof=1 (sample std, pandas)"
SWAP_FIX = "swap them (TA-Lib swaps them silently, IvyBT does not)"

ERROR_CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "window_zero",
        lambda: indicators.sma(_spy_close(), window=0),
        ValueError,
        f"window must be >= 1, got 0; {WINDOW_FIX}",
    ),
    (
        "window_float",
        lambda: indicators.ema(_spy_close(), window=14.5),
        TypeError,
        f"window must be an integer number of bars, got 14.5 (float); {WINDOW_FIX}",
    ),
    (
        "window_bool",
        lambda: indicators.rsi(_spy_close(), window=True),
        TypeError,
        f"window must be an integer number of bars, got True (bool); {WINDOW_FIX}",
    ),
    (
        "atr_window_negative",
        lambda: indicators.keltner(*_series("SPY")[1:], atr_window=-3),
        ValueError,
        f"atr_window must be >= 1, got -3; {WINDOW_FIX}",
    ),
    (
        "list_input",
        lambda: indicators.sma(_spy_close().tolist(), window=3),
        TypeError,
        "`values` must be a numpy array or a pandas Series, got list; wrap it with "
        "np.asarray(...)",
    ),
    (
        "two_dimensional",
        lambda: indicators.sma(_spy_close().to_numpy()[:6].reshape(3, 2), window=2),
        ValueError,
        "`values` must be one-dimensional (one value per bar), got shape (3, 2); pass a single "
        "column such as frame['close']",
    ),
    (
        "text_input",
        lambda: indicators.rsi(_spy_close().astype(str), window=14),
        TypeError,
        "`close` must hold numbers, got dtype str; convert it with .astype(float)",
    ),
    (
        "lengths_differ",
        lambda: indicators.atr(_arrays("SPY").high[1:], _arrays("SPY").low, _arrays("SPY").close),
        ValueError,
        "`high` and `low` must have the same length, got 5240 and 5241; pass columns of one "
        "frame, aligned bar by bar",
    ),
    (
        "indexes_differ",
        lambda: indicators.donchian(_series("SPY").high, _shifted_low()),
        ValueError,
        "`high` and `low` must share one index, but their indexes differ; align them first, "
        "e.g. take both columns from one DataFrame",
    ),
    (
        "windows_empty",
        lambda: indicators.sma_table(_spy_close(), windows=[]),
        ValueError,
        f"windows must hold at least one window, got none; {WINDOWS_FIX}",
    ),
    (
        "windows_zero",
        lambda: indicators.ema_table(_spy_close(), windows=[5, 0]),
        ValueError,
        f"windows[1] must be >= 1, got 0; {WINDOWS_FIX}",
    ),
    (
        "windows_float_array",
        lambda: indicators.rsi_table(_spy_close(), windows=np.array([5.0, 9.0])),
        TypeError,
        f"windows[0] must be an integer number of bars, got 5.0 (float); {WINDOWS_FIX}",
    ),
    (
        "windows_scalar",
        lambda: indicators.rma_table(_spy_close(), windows=5),
        TypeError,
        f"windows must be a list or array of integers, got int; {WINDOWS_FIX}",
    ),
    (
        "ddof_too_large",
        lambda: indicators.rolling_std_table(_spy_close(), windows=[5, 1], ddof=1),
        ValueError,
        f"ddof must be >= 0 and < every window, got ddof=1 with window=1; {DDOF_FIX}",
    ),
    (
        "num_std_negative",
        lambda: indicators.bollinger(_spy_close(), num_std=-1.0),
        ValueError,
        "num_std must be a finite number >= 0, got -1.0; pass a width in standard deviations "
        "such as 2.0",
    ),
    (
        "multiplier_nan",
        lambda: indicators.keltner(*_series("SPY")[1:], multiplier=float("nan")),
        ValueError,
        "multiplier must be a finite number >= 0, got nan; pass a width in ATRs such as 2.0",
    ),
    (
        "macd_fast_not_below_slow",
        lambda: indicators.macd(_spy_close(), fast=26, slow=12),
        ValueError,
        f"fast must be < slow, got fast=26 and slow=12; {SWAP_FIX}",
    ),
    (
        "macd_signal_zero",
        lambda: indicators.macd(_spy_close(), signal=0),
        ValueError,
        f"signal must be >= 1, got 0; {WINDOW_FIX}",
    ),
    (
        "macd_table_lengths",
        lambda: indicators.macd_hist_table(
            _spy_close(), fasts=[12, 5], slows=[26], signals=[9, 9]
        ),
        ValueError,
        "fasts, slows and signals must have the same length (one combo per position), got 2, 1 "
        "and 2; pass one fast, slow and signal per combo",
    ),
    (
        "macd_table_fast_not_below_slow",
        lambda: indicators.macd_hist_table(
            _spy_close(), fasts=[12, 30], slows=[26, 20], signals=[9, 9]
        ),
        ValueError,
        f"fasts[1] must be < slows[1], got fasts[1]=30 and slows[1]=20; {SWAP_FIX}",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_wrapper_errors_state_rule_value_and_fix(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)) as raised:
        call()
    assert str(raised.value) == message
