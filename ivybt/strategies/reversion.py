"""Mean-reversion strategies: rsi_reversion, bollinger_reversion.

Both enter against an extreme and exit on the way back; the short side mirrors the long side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivybt.kernels.signals import bollinger_reversion_signal_nb, rsi_reversion_signal_nb
from ivybt.strategies.base import Indicator, Param, Strategy


class RsiReversion(Strategy):
    """RSI (Wilder, TA-Lib) mean reversion."""

    name = "rsi_reversion"
    summary = (
        "Long when RSI < lower until RSI > upper; short when RSI > 100 - lower until "
        "RSI < 100 - upper."
    )
    params = (
        Param("window", int, 14, 2, 50, minimum=1, doc="RSI window, bars"),
        Param(
            "lower",
            float,
            30.0,
            10.0,
            45.0,
            minimum=0.0,
            maximum=100.0,
            step=5.0,
            doc="entry level",
        ),
        Param(
            "upper",
            float,
            70.0,
            50.0,
            90.0,
            minimum=0.0,
            maximum=100.0,
            step=5.0,
            doc="exit level",
        ),
    )
    constraints = ("lower < upper", "lower < 50")
    signal_kernel = rsi_reversion_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return (Indicator("rsi", (p["window"],)),)


class BollingerReversion(Strategy):
    """Bollinger Band mean reversion (SMA middle, population std bands as TA-Lib)."""

    name = "bollinger_reversion"
    summary = (
        "Long when close < lower band until close >= middle; short when close > upper band "
        "until close <= middle."
    )
    params = (
        Param("window", int, 20, 5, 100, minimum=2, doc="SMA and std window, bars"),
        Param("num_std", float, 2.0, 1.0, 3.5, minimum=0.0, doc="band width in std", step=0.25),
    )
    signal_kernel = bollinger_reversion_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        window = (p["window"],)
        return (Indicator("price"), Indicator("sma", window), Indicator("std", window))
