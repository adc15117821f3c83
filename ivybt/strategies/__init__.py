"""Strategies: parameters, constraints, indicators and a Numba signal kernel each.

Built-ins: sma_cross, ema_cross, macd_cross, rsi_reversion, bollinger_reversion,
donchian_breakout, bbkc_squeeze. Your own: subclass `Strategy` in your module and refer to it as
``package.module:ClassName`` (docs/strategies.md).
"""

from __future__ import annotations

from ivybt.strategies.base import INDICATOR_KINDS, Indicator, Param, Strategy
from ivybt.strategies.constraints import Constraint
from ivybt.strategies.registry import BUILTIN, builtin_strategies, get_strategy

__all__ = [
    "BUILTIN",
    "INDICATOR_KINDS",
    "Constraint",
    "Indicator",
    "Param",
    "Strategy",
    "builtin_strategies",
    "get_strategy",
]
