"""Slow, obvious twins of the indicator kernels (STYLE 3): same names without `_nb`.

Written from the definitions with plain Python loops over bars (no cumulative sums, no
vectorised tricks) and sharing no code with `ivybt.kernels`. Each twin takes and returns the
same shapes as its kernel. The rules they encode:

- SMA / rolling std / max / min: the plain statistic of the last `window` values, bar t
  included; NaN during warm-up and for any window holding a NaN.
- EMA, RMA, ATR, RSI, MACD: NaN bars are skipped (NaN out, state kept); the recursion is seeded
  with the mean of the first `window` non-NaN values, written at the bar of the last of them.
"""

from __future__ import annotations

import math

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D

NAN = float("nan")


def _plain_list(values: Float64Array1D) -> list[float]:
    return [float(x) for x in values]


# -- moving averages -----------------------------------------------------------------------


def sma_1d(values: Float64Array1D, window: int) -> Float64Array1D:
    xs = _plain_list(values)
    out = [NAN] * len(xs)
    for t in range(window - 1, len(xs)):
        total = 0.0
        for i in range(t - window + 1, t + 1):
            total += xs[i]
        out[t] = total / window
    return np.array(out, dtype=np.float64)


def _seeded_recursion(
    xs: list[float], window: int, skip: int, update: str, alpha: float
) -> list[float]:
    """Seed = mean of valid values number skip .. skip+window-1; then `update` on valid bars."""
    out = [NAN] * len(xs)
    valid_bars = [t for t, x in enumerate(xs) if not math.isnan(x)]
    if len(valid_bars) < skip + window:
        return out
    seed_bars = valid_bars[skip : skip + window]
    total = 0.0
    for t in seed_bars:
        total += xs[t]
    state = total / window
    out[seed_bars[-1]] = state
    for t in valid_bars[skip + window :]:
        if update == "ema":
            state = state + alpha * (xs[t] - state)
        else:  # Wilder: ((n - 1) * previous + current) / n
            state = ((window - 1) * state + xs[t]) / window
        out[t] = state
    return out


def ema_1d(values: Float64Array1D, window: int) -> Float64Array1D:
    xs = _plain_list(values)
    return np.array(_seeded_recursion(xs, window, 0, "ema", 2.0 / (window + 1)), np.float64)


def rma_1d(values: Float64Array1D, window: int) -> Float64Array1D:
    xs = _plain_list(values)
    return np.array(_seeded_recursion(xs, window, 0, "wilder", 1.0 / window), np.float64)


# -- true range, ATR, RSI --------------------------------------------------------------------


def true_range(high: Float64Array1D, low: Float64Array1D, close: Float64Array1D) -> Float64Array1D:
    hs, ls, cs = _plain_list(high), _plain_list(low), _plain_list(close)
    out = [NAN] * len(cs)
    for t in range(1, len(cs)):
        candidates = [hs[t] - ls[t], abs(hs[t] - cs[t - 1]), abs(ls[t] - cs[t - 1])]
        if any(math.isnan(c) for c in candidates):
            continue
        out[t] = max(candidates)
    return np.array(out, dtype=np.float64)


def atr_1d(
    high: Float64Array1D, low: Float64Array1D, close: Float64Array1D, window: int
) -> Float64Array1D:
    return rma_1d(true_range(high, low, close), window)


def rsi_1d(close: Float64Array1D, window: int) -> Float64Array1D:
    cs = _plain_list(close)
    changes = [NAN] + [cs[t] - cs[t - 1] for t in range(1, len(cs))]
    gains = [NAN if math.isnan(d) else (d if d > 0 else 0.0) for d in changes]
    losses = [NAN if math.isnan(d) else (-d if d < 0 else 0.0) for d in changes]
    avg_gain = _seeded_recursion(gains, window, 0, "wilder", 1.0 / window)
    avg_loss = _seeded_recursion(losses, window, 0, "wilder", 1.0 / window)
    out = [NAN] * len(cs)
    for t in range(len(cs)):
        gain, loss = avg_gain[t], avg_loss[t]
        if math.isnan(gain) or math.isnan(loss):
            continue
        out[t] = 0.0 if gain + loss == 0.0 else 100.0 * gain / (gain + loss)
    return np.array(out, dtype=np.float64)


# -- rolling std, max, min ---------------------------------------------------------------------


def rolling_std_1d(values: Float64Array1D, window: int, ddof: int) -> Float64Array1D:
    xs = _plain_list(values)
    out = [NAN] * len(xs)
    if window - ddof <= 0:
        return np.array(out, dtype=np.float64)
    for t in range(window - 1, len(xs)):
        chunk = xs[t - window + 1 : t + 1]
        mean = 0.0
        for x in chunk:
            mean += x
        mean /= window
        squares = 0.0
        for x in chunk:
            squares += (x - mean) ** 2
        variance = squares / (window - ddof)
        out[t] = math.sqrt(variance) if variance >= 0.0 else NAN
    return np.array(out, dtype=np.float64)


def _rolling_extreme(values: Float64Array1D, window: int, pick: str) -> Float64Array1D:
    xs = _plain_list(values)
    out = [NAN] * len(xs)
    for t in range(window - 1, len(xs)):
        chunk = xs[t - window + 1 : t + 1]
        if any(math.isnan(x) for x in chunk):
            continue
        out[t] = max(chunk) if pick == "max" else min(chunk)
    return np.array(out, dtype=np.float64)


def rolling_max_1d(values: Float64Array1D, window: int) -> Float64Array1D:
    return _rolling_extreme(values, window, "max")


def rolling_min_1d(values: Float64Array1D, window: int) -> Float64Array1D:
    return _rolling_extreme(values, window, "min")


# -- tables: one twin run per window ---------------------------------------------------------


def _stack(rows: list[Float64Array1D], n_bars: int) -> Float64Array2D:
    return np.array(rows, dtype=np.float64).reshape(len(rows), n_bars)


def sma_table(values: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([sma_1d(values, w) for w in windows], len(values))


def ema_table(values: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([ema_1d(values, w) for w in windows], len(values))


def rma_table(values: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([rma_1d(values, w) for w in windows], len(values))


def atr_table(
    high: Float64Array1D, low: Float64Array1D, close: Float64Array1D, windows: list[int]
) -> Float64Array2D:
    return _stack([atr_1d(high, low, close, w) for w in windows], len(close))


def rsi_table(close: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([rsi_1d(close, w) for w in windows], len(close))


def rolling_std_table(values: Float64Array1D, windows: list[int], ddof: int) -> Float64Array2D:
    return _stack([rolling_std_1d(values, w, ddof) for w in windows], len(values))


def rolling_max_table(values: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([rolling_max_1d(values, w) for w in windows], len(values))


def rolling_min_table(values: Float64Array1D, windows: list[int]) -> Float64Array2D:
    return _stack([rolling_min_1d(values, w) for w in windows], len(values))


# -- bands and MACD ----------------------------------------------------------------------------


def bollinger(close: Float64Array1D, window: int, num_std: float) -> Float64Array2D:
    middle = sma_1d(close, window)
    width = num_std * rolling_std_1d(close, window, 0)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in the kernel
        return np.array([middle - width, middle, middle + width], dtype=np.float64)


def keltner(
    high: Float64Array1D,
    low: Float64Array1D,
    close: Float64Array1D,
    window: int,
    atr_window: int,
    multiplier: float,
) -> Float64Array2D:
    middle = ema_1d(close, window)
    width = multiplier * atr_1d(high, low, close, atr_window)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in the kernel
        return np.array([middle - width, middle, middle + width], dtype=np.float64)


def donchian(high: Float64Array1D, low: Float64Array1D, window: int) -> Float64Array2D:
    lower = rolling_min_1d(low, window)
    upper = rolling_max_1d(high, window)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in the kernel
        return np.array([lower, (lower + upper) / 2.0, upper], dtype=np.float64)


def macd(close: Float64Array1D, fast: int, slow: int, signal: int) -> Float64Array2D:
    """TA-Lib MACD: the fast EMA is seeded on the `fast` valid values ending where the slow
    EMA's seed ends, so both lines start on the same bar."""
    cs = _plain_list(close)
    fast_line = _seeded_recursion(cs, fast, slow - fast, "ema", 2.0 / (fast + 1))
    slow_line = _seeded_recursion(cs, slow, 0, "ema", 2.0 / (slow + 1))
    line = [f - s for f, s in zip(fast_line, slow_line, strict=True)]
    signal_line = _seeded_recursion(line, signal, 0, "ema", 2.0 / (signal + 1))
    macd_line = [NAN if math.isnan(s) else m for m, s in zip(line, signal_line, strict=True)]
    histogram = [m - s for m, s in zip(macd_line, signal_line, strict=True)]
    return np.array([macd_line, signal_line, histogram], dtype=np.float64).reshape(3, len(cs))


def macd_hist_table(
    close: Float64Array1D, fasts: list[int], slows: list[int], signals: list[int]
) -> Float64Array2D:
    rows = [macd(close, f, s, g)[2] for f, s, g in zip(fasts, slows, signals, strict=True)]
    return _stack(rows, len(close))
