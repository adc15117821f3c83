"""Breakout strategies: donchian_breakout, bbkc_squeeze."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ivybt.kernels.signals import bbkc_squeeze_signal_nb, donchian_breakout_signal_nb
from ivybt.strategies.base import Indicator, Param, Strategy

HTF_CODES: dict[int, str] = {1: "1d", 2: "1w", 3: "1mo"}
"""bbkc_squeeze's `htf` parameter: the higher timeframe of its trend filter, by code."""


class DonchianBreakout(Strategy):
    """Donchian channel (turtle) breakout with a shorter exit channel."""

    name = "donchian_breakout"
    summary = (
        "Long when close breaks the previous entry_window-bar high, exit below the previous "
        "exit_window-bar low; short mirrored."
    )
    params = (
        Param("entry_window", int, 20, 5, 100, minimum=1, doc="breakout channel, bars"),
        Param("exit_window", int, 10, 2, 50, minimum=1, doc="exit channel, bars"),
    )
    constraints = ("exit_window <= entry_window",)
    signal_kernel = donchian_breakout_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        entry = (p["entry_window"],)
        exit_ = (p["exit_window"],)
        return (
            Indicator("price"),
            Indicator("rolling_max", entry, "high"),
            Indicator("rolling_min", entry, "low"),
            Indicator("rolling_max", exit_, "high"),
            Indicator("rolling_min", exit_, "low"),
        )

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        # bar t reads the channels of bar t-1
        return int(p["entry_window"])


class BbkcSqueeze(Strategy):
    """Bollinger-inside-Keltner squeeze breakout (the research hub's BBKCSqueezeBreakout),
    with the hub's optional higher-timeframe trend filter: with `htf_ema` > 0, a breakout
    enters long only while the last closed HTF bar's close is above its EMA(`htf_ema`) on
    that timeframe, short only while below (entries only; exits stay momentum's)."""

    name = "bbkc_squeeze"
    summary = (
        "When Bollinger Bands leave a squeeze inside the Keltner Channel, trade in the "
        "direction of momentum; exit when momentum turns."
    )
    params = (
        Param("bb_window", int, 20, 10, 50, minimum=2, doc="Bollinger window, bars", step=5),
        Param("bb_std", float, 2.0, 1.0, 3.0, minimum=0.0, doc="Bollinger width, std", step=0.5),
        Param(
            "kc_window", int, 20, 10, 50, minimum=1, doc="Keltner EMA and ATR window, bars", step=5
        ),
        Param("kc_mult", float, 1.5, 1.0, 3.0, minimum=0.0, doc="Keltner width, ATRs", step=0.5),
        Param(
            "momentum_window", int, 12, 3, 48, minimum=1, doc="momentum look-back, bars", step=3
        ),
        Param(
            "htf_ema", int, 0, 0, 0, minimum=0,
            doc="HTF trend filter: EMA window in HTF bars, 0 = off (search e.g. 0:40:5)",
        ),
        Param(
            "htf", int, 2, 2, 2, minimum=1, maximum=3,
            doc="the filter's timeframe: 1 = 1d, 2 = 1w, 3 = 1mo (search e.g. 1,2,3)",
        ),
    )  # fmt: skip
    signal_kernel = bbkc_squeeze_signal_nb

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        bb = (p["bb_window"],)
        kc = (p["kc_window"],)
        base = (
            Indicator("price"),
            Indicator("sma", bb),
            Indicator("std", bb),
            Indicator("ema", kc),
            Indicator("atr", kc),
        )
        window = np.asarray(p.get("htf_ema", 0))
        if not np.any(window > 0):  # the filter is off: its slots read the close, unused
            return (*base, Indicator("price"), Indicator("price"))
        codes = np.unique(np.asarray(p.get("htf", 2)))
        if len(codes) != 1:  # a grid varying the timeframe: declared per combination
            raise ValueError("one timeframe per declaration")
        timeframe = HTF_CODES[int(codes[0])]
        ema = Indicator("ema", (np.maximum(window, 1) if window.ndim else max(int(window), 1),),
                        timeframe=timeframe)  # fmt: skip
        return (*base, Indicator("price", timeframe=timeframe), ema)

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        return max(int(p["bb_window"]) - 1, int(p["kc_window"]), int(p["momentum_window"]))
