"""Signal kernels: indicator values -> the side wanted after each bar's close (-1, 0, +1).

Every signal kernel has the same signature, so a grid kernel can take any of them:

    signal_nb(table, rows, params, out_target) -> None

- `table` : float64, shape (n_rows, n_bars): indicator rows computed once (for a grid, once per
  distinct indicator of all combinations); `rows` : int64, shape (n_slots,): which table row
  feeds each of the strategy's indicator slots, in the order the strategy declares them;
- `params` : float64, shape (n_params,): the strategy's parameters in declaration order;
- `out_target` : int8, shape (n_bars,), written: target side after bar t's close.

Causality: out_target[t] depends on table[:, :t+1] only. While any slot is NaN (warm-up) the
target stays flat. Direction filters (long-only, short-only) are applied afterwards by
`ivybt.kernels.simulate.restrict_direction_nb`, so every kernel emits both sides.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array1D


@njit(cache=True)
def strict_sign_nb(value: float) -> int:
    """+1 above zero, -1 below, 0 at exactly zero or NaN."""
    return int(value > 0.0) - int(value < 0.0)


@njit(cache=True)
def difference_signs_nb(
    line: Float64Array1D, base: Float64Array1D, out_signs: Int8Array1D
) -> None:
    """`strict_sign_nb(line[t] - base[t])` for every bar, in a loop the compiler vectorises."""
    for t in range(line.shape[0]):
        out_signs[t] = strict_sign_nb(line[t] - base[t])


@njit(cache=True)
def _follow_sign_nb(sign: int, last_sign: int, side: int) -> tuple[int, int]:
    """One bar of crossover tracking: (last strict sign, side) after a bar whose difference has
    strict sign `sign` (`strict_sign_nb`).

    The side becomes the new sign on a strict sign change; NaN and exact zeros (sign 0) change
    nothing, and the side stays flat until the first change.
    """
    if sign == 0:
        return last_sign, side
    if last_sign != 0 and sign != last_sign:
        side = sign
    return sign, side


CHUNK = 8
"""Bars `next_cross_nb` tests at once: a loop the compiler vectorises, leaving a short
bar-by-bar search to the chunk that holds the crossover (8 measured fastest on W1)."""


@njit(cache=True)
def next_cross_nb(
    line: Float64Array1D, base: Float64Array1D, start: int, stop: int, last_sign: int
) -> int:
    """The first bar t in [start, stop) where `strict_sign_nb(line[t] - base[t])` is non-zero
    and differs from `last_sign`, else `stop`: the bars where `_follow_sign_nb` moves.

    While the last sign is +1 (-1), a chunk of `CHUNK` bars holds such a bar exactly when
    line < base (line > base) somewhere in it (x - y < 0 iff x < y for floats; NaN compares
    false either way), one vectorised test per chunk; so a crossover's side costs about one
    read of its two lines.
    """
    t = start
    if last_sign > 0:
        while t + CHUNK <= stop:
            below = False
            for k in range(CHUNK):
                below |= line[t + k] < base[t + k]
            if below:
                break
            t += CHUNK
    elif last_sign < 0:
        while t + CHUNK <= stop:
            above = False
            for k in range(CHUNK):
                above |= line[t + k] > base[t + k]
            if above:
                break
            t += CHUNK
    else:  # before the first sign (warm-up: NaN)
        while t + CHUNK <= stop:
            apart = False
            for k in range(CHUNK):
                apart |= (line[t + k] < base[t + k]) | (line[t + k] > base[t + k])
            if apart:
                break
            t += CHUNK
    while t < stop:
        sign = strict_sign_nb(line[t] - base[t])
        if sign != 0 and sign != last_sign:
            return t
        t += 1
    return stop


@njit(cache=True)
def sign_moves_nb(
    line: Float64Array1D, base: Float64Array1D, stop: int, out_moves: Int64Array1D
) -> int:
    """The bars of [0, stop) where the strict sign of line - base moves (`next_cross_nb`),
    signed: out_moves[k] = (t + 1) x the new sign, in bar order; returns their count.

    The first move only sets the sign; each later one is a crossover, after which the side
    of `_follow_sign_nb` is the move's sign (`move_bar_nb`, `move_sign_nb`).
    """
    count = 0
    zero = np.int64(0)  # not the literal 0, for which Numba compiles `next_cross_nb` again
    t = next_cross_nb(line, base, zero, stop, zero)
    while t < stop:
        sign = strict_sign_nb(line[t] - base[t])
        out_moves[count] = (t + 1) * sign
        count += 1
        t = next_cross_nb(line, base, t + 1, stop, sign)
    return count


@njit(cache=True)
def move_bar_nb(move: int) -> int:
    """The bar of a signed move of `sign_moves_nb`."""
    return abs(move) - 1


@njit(cache=True)
def move_sign_nb(move: int) -> int:
    """The new sign of a signed move of `sign_moves_nb`."""
    return 1 if move > 0 else -1


@njit(cache=True)
def _cross_into_nb(fast: Float64Array1D, slow: Float64Array1D, out_target: Int8Array1D) -> None:
    """Side of `fast` vs `slow`, starting at the first crossover after warm-up.

    Flat until `fast` crosses `slow` for the first time (a strict sign change of fast - slow;
    bars where they are equal keep the last strict sign), then +1 while the last strict sign is
    above and -1 while it is below. Equals vectorbt's `ma_crossed_above`/`ma_crossed_below`
    entries and exits.

    The bar-by-bar rule (`_follow_sign_nb`) in passes the compiler vectorises: the strict
    signs, then (after a short scan for the first crossover) the side is the sign itself, but
    on the rare bars of sign 0 (equal averages), which carry the side before them.
    """
    n = fast.shape[0]
    difference_signs_nb(fast, slow, out_target)
    last_sign = 0
    start = n  # the first crossover
    for t in range(n):
        sign = out_target[t]
        if sign != 0:
            if last_sign != 0 and sign != last_sign:
                start = t
                break
            last_sign = sign
    zeros = 0
    for t in range(start, n):
        zeros += out_target[t] == 0
    out_target[:start] = 0
    for t in range(start + 1, n if zeros > 0 else 0):
        if out_target[t] == 0:
            out_target[t] = out_target[t - 1]


@njit(cache=True)
def cross_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Moving-average cross: slots (fast average, slow average); params unused beyond windows.

    +1 after the fast average crosses above the slow one, -1 after it crosses below; flat before
    the first cross (see `_cross_into_nb`). Used by sma_cross and ema_cross.
    """
    _cross_into_nb(table[rows[0]], table[rows[1]], out_target)


@njit(cache=True)
def zero_cross_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Sign of one slot after its first zero crossing (macd_cross: the MACD histogram).

    Crossing zero by the MACD histogram is the MACD line crossing its signal line.
    """
    line = table[rows[0]]
    last_sign = 0
    side = 0
    for t in range(line.shape[0]):
        last_sign, side = _follow_sign_nb(strict_sign_nb(line[t]), last_sign, side)
        out_target[t] = side


@njit(cache=True)
def rsi_reversion_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """RSI mean reversion: slot (rsi,); params (window, lower, upper).

    Long when RSI < lower, held until RSI > upper; short when RSI > 100 - lower, held until
    RSI < 100 - upper (the mirror image). An exit and the opposite entry can happen on one bar.
    """
    rsi = table[rows[0]]
    lower = params[1]
    upper = params[2]
    side = 0
    for t in range(rsi.shape[0]):
        value = rsi[t]
        if not math.isnan(value):
            if (side == 1 and value > upper) or (side == -1 and value < 100.0 - upper):
                side = 0
            if side == 0:
                if value < lower:
                    side = 1
                elif value > 100.0 - lower:
                    side = -1
        out_target[t] = side


@njit(cache=True)
def bollinger_reversion_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Bollinger mean reversion: slots (close, sma, std); params (window, num_std).

    Long when close < middle - num_std x std, held until close >= middle; short when close >
    middle + num_std x std, held until close <= middle (population std, TA-Lib's bands).
    """
    close = table[rows[0]]
    middle = table[rows[1]]
    std = table[rows[2]]
    num_std = params[1]
    side = 0
    for t in range(close.shape[0]):
        mid = middle[t]
        width = num_std * std[t]
        price = close[t]
        if not (math.isnan(mid) or math.isnan(width)):
            if (side == 1 and price >= mid) or (side == -1 and price <= mid):
                side = 0
            if side == 0:
                if price < mid - width:
                    side = 1
                elif price > mid + width:
                    side = -1
        out_target[t] = side


@njit(cache=True)
def donchian_breakout_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Donchian (turtle) breakout: slots (close, entry high, entry low, exit high, exit low).

    The channels are rolling max(high) / min(low) that include their own bar, so bar t compares
    its close with the channels of bar t-1 (the previous `window` bars). Long when close breaks
    above the entry-window high, exit when it breaks below the exit-window low; short mirrored.
    """
    close = table[rows[0]]
    entry_high = table[rows[1]]
    entry_low = table[rows[2]]
    exit_high = table[rows[3]]
    exit_low = table[rows[4]]
    side = 0
    out_target[0] = 0
    for t in range(1, close.shape[0]):
        price = close[t]
        if side == 1 and price < exit_low[t - 1]:
            side = 0
        elif side == -1 and price > exit_high[t - 1]:
            side = 0
        if side == 0:
            if price > entry_high[t - 1]:
                side = 1
            elif price < entry_low[t - 1]:
                side = -1
        out_target[t] = side


@njit(cache=True)
def bbkc_squeeze_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Bollinger-inside-Keltner squeeze, then a breakout in the direction of momentum.

    Slots (close, sma, std, ema, atr, htf_close, htf_ema); params (bb_window, bb_std,
    kc_window, kc_mult, momentum_window, htf_ema, htf). The squeeze is on while both
    Bollinger bands (sma ± bb_std x std) lie strictly inside the Keltner channel
    (ema ± kc_mult x atr). On the first bar it is off again (the release), go long if
    momentum = close[t] - close[t - momentum_window] > 0, short if < 0. Exit a long when
    momentum turns <= 0, a short when it turns >= 0. With params[5] (htf_ema) > 0 a release
    enters long only if htf_close > htf_ema at that bar, short only if htf_close < htf_ema
    (the higher-timeframe rows of the last closed HTF bar; NaN: no entry).
    """
    close = table[rows[0]]
    sma = table[rows[1]]
    std = table[rows[2]]
    ema = table[rows[3]]
    atr = table[rows[4]]
    bb_std = params[1]
    kc_mult = params[3]
    lag = int(params[4])
    filtered = params.shape[0] > 5 and params[5] > 0.0
    htf_close = table[rows[5]] if filtered else close
    htf_ema = table[rows[6]] if filtered else close
    side = 0
    was_squeezed = False
    for t in range(close.shape[0]):
        bb_width = bb_std * std[t]
        kc_width = kc_mult * atr[t]
        momentum = close[t] - close[t - lag] if t >= lag else math.nan
        if math.isnan(sma[t] + bb_width + ema[t] + kc_width + momentum):
            was_squeezed = False
            out_target[t] = side
            continue
        squeezed = (sma[t] + bb_width < ema[t] + kc_width) and (
            sma[t] - bb_width > ema[t] - kc_width
        )
        if (side == 1 and momentum <= 0.0) or (side == -1 and momentum >= 0.0):
            side = 0
        if side == 0 and was_squeezed and not squeezed:
            up = not filtered or htf_close[t] > htf_ema[t]
            down = not filtered or htf_close[t] < htf_ema[t]
            if momentum > 0.0 and up:
                side = 1
            elif momentum < 0.0 and down:
                side = -1
        was_squeezed = squeezed
        out_target[t] = side


@njit(cache=True)
def sign_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """The side is the sign of slot 0 at each bar: long above zero, short below, flat at zero
    or NaN (warm-up). For direction rows such as pandas-ta's supertrend "SUPERTd" (+1/-1)."""
    line = table[rows[0]]
    for t in range(line.shape[0]):
        out_target[t] = strict_sign_nb(line[t])


@njit(cache=True)
def adx_trend_signal_nb(
    table: Float64Array2D, rows: Int64Array1D, params: Float64Array1D, out_target: Int8Array1D
) -> None:
    """Trade a strong trend in the direction of the stronger directional movement.

    Slots (adx, dmp, dmn): pandas-ta's ADX, +DM and -DM rows; params (length, threshold).
    While ADX > threshold: long when +DM > -DM, short when -DM > +DM (equal: hold the side);
    flat when ADX <= threshold or any slot is NaN.
    """
    adx = table[rows[0]]
    plus = table[rows[1]]
    minus = table[rows[2]]
    threshold = params[1]
    side = 0
    for t in range(adx.shape[0]):
        if math.isnan(adx[t] + plus[t] + minus[t]) or adx[t] <= threshold:
            side = 0
        elif plus[t] > minus[t]:
            side = 1
        elif minus[t] > plus[t]:
            side = -1
        out_target[t] = side
