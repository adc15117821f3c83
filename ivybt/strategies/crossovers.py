"""Crossover strategies: sma_cross, ema_cross, macd_cross.

All three follow the side of one line against another from the first crossover after warm-up:
flat until the first cross, then long after a cross up and short after a cross down (flat
instead of short when the run is long-only). This equals vectorbt's `ma_crossed_above` /
`ma_crossed_below` entries and exits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivybt.kernels.signals import cross_signal_nb, zero_cross_signal_nb
from ivybt.strategies.base import Indicator, Param, Strategy


class SmaCross(Strategy):
    """Simple-moving-average crossover."""

    name = "sma_cross"
    summary = "Long after the fast SMA crosses above the slow SMA, short after it crosses below."
    params = (
        Param("fast", int, 10, 2, 100, minimum=1, doc="fast SMA window, bars"),
        Param("slow", int, 50, 5, 300, minimum=2, doc="slow SMA window, bars"),
    )
    constraints = ("fast < slow",)
    signal_kernel = cross_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return (Indicator("sma", (p["fast"],)), Indicator("sma", (p["slow"],)))


class EmaCross(Strategy):
    """Exponential-moving-average crossover (EMAs seeded with the SMA of their first window)."""

    name = "ema_cross"
    summary = "Long after the fast EMA crosses above the slow EMA, short after it crosses below."
    params = (
        Param("fast", int, 12, 2, 100, minimum=1, doc="fast EMA window, bars"),
        Param("slow", int, 26, 5, 300, minimum=2, doc="slow EMA window, bars"),
    )
    constraints = ("fast < slow",)
    signal_kernel = cross_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return (Indicator("ema", (p["fast"],)), Indicator("ema", (p["slow"],)))


class MacdCross(Strategy):
    """MACD line crossing its signal line (TA-Lib's MACD)."""

    name = "macd_cross"
    summary = (
        "Long after the MACD line crosses above its signal line, short after it crosses below."
    )
    params = (
        Param("fast", int, 12, 2, 50, minimum=1, doc="fast EMA window, bars", step=2),
        Param("slow", int, 26, 6, 150, minimum=2, doc="slow EMA window, bars", step=4),
        Param("signal", int, 9, 3, 48, minimum=1, doc="signal-line EMA window, bars", step=3),
    )
    constraints = ("fast < slow",)
    signal_kernel = zero_cross_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return (Indicator("macd_hist", (p["fast"], p["slow"], p["signal"])),)
