"""Trend strategies on pandas-ta indicators: supertrend, adx_trend.

Their indicator rows come from pandas-ta (`Indicator.ta`, conventions in
`ivybt.indicators.ta`): pandas-ta's own implementation, called with `talib=False`. Both
give their first value at bar `length` (pandas-ta's ADX too, where TA-Lib's starts at bar
2 x length - 1), the warm-up `Indicator.warmup_bars` estimates from `length`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivybt.kernels.signals import adx_trend_signal_nb, sign_signal_nb
from ivybt.strategies.base import Indicator, Param, Strategy


class Supertrend(Strategy):
    """pandas-ta's supertrend direction, traded as given."""

    name = "supertrend"
    summary = (
        "Long while pandas-ta's supertrend direction is up (close above the ATR band), "
        "short while it is down."
    )
    params = (
        Param("length", int, 10, 5, 30, minimum=1, doc="ATR window, bars", step=5),
        Param("multiplier", float, 3.0, 1.0, 5.0, minimum=0.0, doc="band width, ATRs", step=0.5),
    )
    signal_kernel = sign_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return (
            Indicator.ta("supertrend", length=p["length"], multiplier=p["multiplier"],
                         column="SUPERTd"),
        )  # fmt: skip


class AdxTrend(Strategy):
    """ADX trend strength with the directional movement's side (pandas-ta's adx)."""

    name = "adx_trend"
    summary = (
        "While ADX is above the threshold, long when +DM > -DM and short when -DM > +DM; "
        "flat while the trend is weak."
    )
    params = (
        Param("length", int, 14, 7, 35, minimum=1, doc="ADX and DM window, bars", step=7),
        Param(
            "threshold",
            float,
            25.0,
            15.0,
            40.0,
            minimum=0.0,
            maximum=100.0,
            doc="ADX level of a trend",
            step=5.0,
        ),
    )
    signal_kernel = adx_trend_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return tuple(Indicator.ta("adx", length=p["length"], column=column)
                     for column in ("ADX", "DMP", "DMN"))  # fmt: skip
