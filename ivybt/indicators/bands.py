"""Bands around price: Bollinger, Keltner and Donchian, as `lower, middle, upper` lines.
Kernels: `ivybt.kernels.bands`."""

from __future__ import annotations

import numpy as np  # noqa: F401 (the Examples sections use np)

from ivybt.indicators._checks import PriceInput, _check_factor, _check_window, _to_float_arrays
from ivybt.indicators._labels import FrameOutput, _label_lines
from ivybt.kernels.bands import bollinger_nb, donchian_nb, keltner_nb

_BAND_COLUMNS = ("lower", "middle", "upper")


def bollinger(close: PriceInput, *, window: int = 20, num_std: float = 2.0) -> FrameOutput:
    """Bollinger bands: SMA -/+ `num_std` population standard deviations (TA-Lib `BBANDS`).

    Parameters
    ----------
    close : ndarray or Series, shape (n_bars,)
        Close prices, oldest first; NaN marks a missing bar.
    window : int, default 20
        Look-back length in bars, >= 1.
    num_std : float, default 2.0
        Half-width in standard deviations, finite and >= 0.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units; NaN for the first `window - 1` bars.

    Examples
    --------
    >>> bollinger(np.array([1.0, 3.0]), window=2, num_std=1.0)[-1]
    array([1., 2., 3.])
    """
    window = _check_window("window", window)
    num_std = _check_factor("num_std", num_std, "a width in standard deviations such as 2.0")
    (array,), index = _to_float_arrays(close=close)
    return _label_lines(bollinger_nb(array, window, num_std), index, _BAND_COLUMNS)


def keltner(
    high: PriceInput,
    low: PriceInput,
    close: PriceInput,
    *,
    window: int = 20,
    atr_window: int = 10,
    multiplier: float = 2.0,
) -> FrameOutput:
    """Keltner channel: EMA(close, window) -/+ `multiplier` * ATR(atr_window).

    Parameters
    ----------
    high, low, close : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).
    window : int, default 20
        EMA span of the middle line in bars (TA-Lib `EMA` seeding), >= 1.
    atr_window : int, default 10
        Wilder ATR look-back in bars (TA-Lib `ATR`), >= 1.
    multiplier : float, default 2.0
        Half-width in ATRs, finite and >= 0.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units. The middle line starts at bar
        `window - 1`, the bands at bar `max(window - 1, atr_window)`.

    Examples
    --------
    >>> keltner(np.array([2.0, 3.0]), np.array([1.0, 2.0]), np.array([1.5, 2.5]),
    ...         window=1, atr_window=1, multiplier=1.0)[-1]
    array([1. , 2.5, 4. ])
    """
    window = _check_window("window", window)
    atr_window = _check_window("atr_window", atr_window)
    multiplier = _check_factor("multiplier", multiplier, "a width in ATRs such as 2.0")
    (h, lo, c), index = _to_float_arrays(high=high, low=low, close=close)
    lines = keltner_nb(h, lo, c, window, atr_window, multiplier)
    return _label_lines(lines, index, _BAND_COLUMNS)


def donchian(high: PriceInput, low: PriceInput, *, window: int = 20) -> FrameOutput:
    """Donchian channel: lowest low, midpoint and highest high of the last `window` bars, bar t
    included (TA-Lib `MIN`/`MAX`).

    Parameters
    ----------
    high, low : ndarray or Series, shape (n_bars,)
        Bar prices, same length (and same index if Series).
    window : int, default 20
        Look-back length in bars, >= 1.

    Returns
    -------
    ndarray (n_bars, 3) or DataFrame
        Columns ``lower, middle, upper`` in price units.

    Examples
    --------
    >>> donchian(np.array([2.0, 4.0]), np.array([1.0, 3.0]), window=2)[-1]
    array([1. , 2.5, 4. ])
    """
    window = _check_window("window", window)
    (h, lo), index = _to_float_arrays(high=high, low=low)
    return _label_lines(donchian_nb(h, lo, window), index, _BAND_COLUMNS)
