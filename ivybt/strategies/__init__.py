"""Strategies: parameters, constraints, indicators and a Numba signal kernel each.

Built-ins: sma_cross, ema_cross, macd_cross, rsi_reversion, bollinger_reversion,
donchian_breakout, bbkc_squeeze, supertrend and adx_trend (on pandas-ta rows);
cross-sectional (a universe's symbols ranked against each other,
`CrossSectionalStrategy`): momentum_rotation, cluster_mean_reversion, relative_strength.
Your own: subclass `Strategy` (or `CrossSectionalStrategy`) in your module and refer to it as
``package.module:ClassName`` (docs/strategies.md).
"""

from __future__ import annotations

from ivybt.strategies.base import INDICATOR_KINDS, Indicator, Param, Strategy
from ivybt.strategies.constraints import Constraint
from ivybt.strategies.cross_sectional import CrossSectionalStrategy, is_cross_sectional
from ivybt.strategies.registry import BUILTIN, SIGNAL_BUILTIN, builtin_strategies, get_strategy

__all__ = [
    "BUILTIN",
    "INDICATOR_KINDS",
    "SIGNAL_BUILTIN",
    "Constraint",
    "CrossSectionalStrategy",
    "Indicator",
    "Param",
    "Strategy",
    "builtin_strategies",
    "get_strategy",
    "is_cross_sectional",
]
