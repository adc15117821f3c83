"""Slow, obvious twins of the signal kernels: TA-Lib indicators and plain Python loops.

Each returns the target side after every bar (-1, 0, +1) with both directions allowed, as
`ivybt.engine.simulation.strategy_targets(..., direction="both")` does.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import talib


def _follow_crosses(line: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Flat until the first strict sign change of line - other, then the side of the last one."""
    out = np.zeros(len(line), dtype=np.int8)
    signs: list[int] = []  # strict signs seen so far
    side = 0
    for t in range(len(line)):
        diff = line[t] - other[t]
        if not math.isnan(diff) and diff != 0:
            sign = 1 if diff > 0 else -1
            if signs and signs[-1] != sign:
                side = sign
            signs.append(sign)
        out[t] = side
    return out


def sma_lines(bars: dict[str, np.ndarray], fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    close = pd.Series(bars["close"])
    return close.rolling(fast).mean().to_numpy(), close.rolling(slow).mean().to_numpy()


def ema_lines(bars: dict[str, np.ndarray], fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    return talib.EMA(bars["close"], fast), talib.EMA(bars["close"], slow)


def macd_lines(
    bars: dict[str, np.ndarray], fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray]:
    macd, macd_signal, _ = talib.MACD(bars["close"], fast, slow, signal)
    return macd, macd_signal


# Crossovers are ill-conditioned where the two lines are equal in exact arithmetic: the sign of
# a difference of 1e-16 depends on summation order (SPY's 3- and 7-bar means are exactly equal
# on some bars; pandas keeps the tie, TA-Lib leaves 1e-13). Tests allow a disagreement only
# where it starts on such a near-tie of these lines.
CROSS_LINES = {"sma_cross": sma_lines, "ema_cross": ema_lines, "macd_cross": macd_lines}


def sma_cross(bars: dict[str, np.ndarray], fast: int, slow: int) -> np.ndarray:
    return _follow_crosses(*sma_lines(bars, fast, slow))


def ema_cross(bars: dict[str, np.ndarray], fast: int, slow: int) -> np.ndarray:
    return _follow_crosses(*ema_lines(bars, fast, slow))


def macd_cross(bars: dict[str, np.ndarray], fast: int, slow: int, signal: int) -> np.ndarray:
    return _follow_crosses(*macd_lines(bars, fast, slow, signal))


def rsi_reversion(
    bars: dict[str, np.ndarray], window: int, lower: float, upper: float
) -> np.ndarray:
    rsi = talib.RSI(bars["close"], window)
    out = np.zeros(len(rsi), dtype=np.int8)
    side = 0
    for t, value in enumerate(rsi):
        if math.isnan(value):
            continue
        if side == 1 and value > upper:
            side = 0
        if side == -1 and value < 100 - upper:
            side = 0
        if side == 0 and value < lower:
            side = 1
        elif side == 0 and value > 100 - lower:
            side = -1
        out[t] = side
    return out


def bollinger_reversion(bars: dict[str, np.ndarray], window: int, num_std: float) -> np.ndarray:
    close = bars["close"]
    upper, middle, lower = talib.BBANDS(close, window, num_std, num_std, matype=0)
    out = np.zeros(len(close), dtype=np.int8)
    side = 0
    for t in range(len(close)):
        if math.isnan(middle[t]):
            continue
        if (side == 1 and close[t] >= middle[t]) or (side == -1 and close[t] <= middle[t]):
            side = 0
        if side == 0 and close[t] < lower[t]:
            side = 1
        elif side == 0 and close[t] > upper[t]:
            side = -1
        out[t] = side
    return out


def donchian_breakout(
    bars: dict[str, np.ndarray], entry_window: int, exit_window: int
) -> np.ndarray:
    close, high, low = bars["close"], bars["high"], bars["low"]
    out = np.zeros(len(close), dtype=np.int8)
    side = 0
    for t in range(1, len(close)):
        # the previous bars' channels, written as slices
        entry_high = high[max(0, t - entry_window) : t].max() if t >= entry_window else np.nan
        entry_low = low[max(0, t - entry_window) : t].min() if t >= entry_window else np.nan
        exit_high = high[t - exit_window : t].max() if t >= exit_window else np.nan
        exit_low = low[t - exit_window : t].min() if t >= exit_window else np.nan
        if side == 1 and close[t] < exit_low:
            side = 0
        elif side == -1 and close[t] > exit_high:
            side = 0
        if side == 0 and close[t] > entry_high:
            side = 1
        elif side == 0 and close[t] < entry_low:
            side = -1
        out[t] = side
    return out


def bbkc_squeeze(
    bars: dict[str, np.ndarray],
    bb_window: int,
    bb_std: float,
    kc_window: int,
    kc_mult: float,
    momentum_window: int,
    htf_ema: int = 0,
    htf: int = 2,
) -> np.ndarray:
    close = bars["close"]
    if htf_ema > 0:
        htf_close, htf_line = htf_trend(bars, {1: "D", 2: "W-SUN", 3: "M"}[htf], htf_ema)
    bb_upper, _, bb_lower = talib.BBANDS(close, bb_window, bb_std, bb_std, matype=0)
    middle = talib.EMA(close, kc_window)
    atr = talib.ATR(bars["high"], bars["low"], close, kc_window)
    kc_upper, kc_lower = middle + kc_mult * atr, middle - kc_mult * atr
    out = np.zeros(len(close), dtype=np.int8)
    side, was_squeezed = 0, False
    for t in range(len(close)):
        momentum = close[t] - close[t - momentum_window] if t >= momentum_window else np.nan
        values = (bb_upper[t], bb_lower[t], kc_upper[t], kc_lower[t], momentum)
        if any(math.isnan(value) for value in values):
            was_squeezed = False
            out[t] = side
            continue
        squeezed = bb_upper[t] < kc_upper[t] and bb_lower[t] > kc_lower[t]
        if (side == 1 and momentum <= 0) or (side == -1 and momentum >= 0):
            side = 0
        if side == 0 and was_squeezed and not squeezed and momentum != 0:
            wanted = 1 if momentum > 0 else -1
            if htf_ema > 0:
                trend = np.sign(htf_close[t] - htf_line[t])  # NaN: no entry
                wanted = wanted if trend == wanted else 0
            side = wanted
        was_squeezed = squeezed
        out[t] = side
    return out


def htf_trend(bars: dict[str, np.ndarray], period: str, window: int) -> tuple[np.ndarray, ...]:
    """The higher-timeframe close and its TA-Lib EMA as seen from each base bar, with pandas:
    the bars grouped by pandas' calendar period `period` ("W-SUN": weeks Monday..Sunday),
    the last close per period (periods without bars do not exist), the series shifted by
    one period (a period's value is seen only in the next one) and read at each bar's own
    period."""
    stamps = pd.to_datetime(bars["time"])
    periods = stamps.to_period(period)
    closes = pd.Series(bars["close"], index=periods).groupby(level=0).last()
    ema = pd.Series(talib.EMA(closes.to_numpy(), window), index=closes.index)
    seen_close = closes.shift(1).reindex(periods).to_numpy()
    seen_ema = ema.shift(1).reindex(periods).to_numpy()
    return seen_close, seen_ema


def supertrend(bars: dict[str, np.ndarray], length: int, multiplier: float) -> np.ndarray:
    """pandas-ta's supertrend direction (talib=False), held as the side; NaN: flat."""
    import pandas_ta

    frame = pandas_ta.supertrend(pd.Series(bars["high"]), pd.Series(bars["low"]),
                                 pd.Series(bars["close"]), length=length,
                                 multiplier=multiplier, talib=False)  # fmt: skip
    direction = frame[f"SUPERTd_{length}_{float(multiplier)}"].to_numpy()
    return np.where(np.isnan(direction), 0, np.sign(direction)).astype(np.int8)


def adx_trend(bars: dict[str, np.ndarray], length: int, threshold: float) -> np.ndarray:
    """pandas-ta's adx (talib=False): while ADX > threshold the side of the larger DM (equal:
    hold), else flat."""
    import pandas_ta

    frame = pandas_ta.adx(pd.Series(bars["high"]), pd.Series(bars["low"]),
                          pd.Series(bars["close"]), length=length, talib=False)  # fmt: skip
    adx, plus, minus = (frame[f"{name}_{length}"].to_numpy() for name in ("ADX", "DMP", "DMN"))
    out = np.zeros(len(adx), dtype=np.int8)
    side = 0
    for t in range(len(adx)):
        if math.isnan(adx[t] + plus[t] + minus[t]) or adx[t] <= threshold:
            side = 0
        elif plus[t] != minus[t]:
            side = 1 if plus[t] > minus[t] else -1
        out[t] = side
    return out


SIGNALS = {
    "sma_cross": sma_cross,
    "ema_cross": ema_cross,
    "macd_cross": macd_cross,
    "rsi_reversion": rsi_reversion,
    "bollinger_reversion": bollinger_reversion,
    "donchian_breakout": donchian_breakout,
    "bbkc_squeeze": bbkc_squeeze,
    "supertrend": supertrend,
    "adx_trend": adx_trend,
}
