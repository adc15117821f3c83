"""Cross-sectional strategies: rank the symbols of a universe against each other.

A cross-sectional strategy declares a score kernel instead of a signal kernel
(`ivybt.kernels.cross_section` documents its signature), the number `k` of symbols it holds on
each side as a parameter, which side(s) it takes (`selection`) and when it selects
(`schedule`):

    class MomentumRotation(CrossSectionalStrategy):
        name = "momentum_rotation"
        summary = "Hold the k symbols with the best trailing return, skipping the last bars."
        params = (
            Param("lookback", int, 252, 21, 252, minimum=1),
            Param("skip", int, 21, 0, 42, minimum=0),
            Param("k", int, 3, 1, 10, minimum=1),
        )
        score_kernel = momentum_score_nb
        selection = "top"
        schedule = "monthly"

At each selection bar the symbols with a finite score are ranked (`rank_sides_nb`): "top"
holds the k best long, "bottom" the k worst short, "long_short" both. The portfolio then
trades those sides as it trades per-symbol signals: its weighting, leverage cap and bands
(docs/portfolio.md). The selection bars are the portfolio's schedule (`--rebalance weekly`,
`monthly` or `<N>bars`), or the strategy's own `schedule` when the portfolio rebalances on a
signal; the account then trades when the selection changes. A cross-sectional strategy needs
a universe (`--symbols` or `--universe`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ivybt.config import REBALANCE_PATTERN
from ivybt.errors import ConfigError
from ivybt.kernels.cross_section import (
    BOTTOM,
    LONG_SHORT,
    TOP,
    cluster_reversion_score_nb,
    momentum_score_nb,
    no_signal_nb,
    relative_strength_score_nb,
)
from ivybt.strategies.base import Indicator, Param, Strategy

SELECTIONS = {"top": TOP, "bottom": BOTTOM, "long_short": LONG_SHORT}


class CrossSectionalStrategy(Strategy, abstract=True):
    """Base class of the strategies that score every symbol and hold the best or worst k."""

    score_kernel: ClassVar[Callable[..., None]]
    selection: ClassVar[str] = "top"
    schedule: ClassVar[str] = "monthly"
    positional: ClassVar[bool] = False
    """True when a parameter names a symbol by its position in the universe (a benchmark):
    `--select-universe`, which renumbers the traded symbols, is then refused."""
    signal_kernel = no_signal_nb  # never run: the sides come from the score kernel

    @classmethod
    def indicators(cls, p: Mapping[str, Any]) -> tuple[Indicator, ...]:
        return ()

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        """Bars before the first score (0 unless a strategy says; the look-ahead checker
        starts its cuts there)."""
        return 0

    @classmethod
    def check_universe(cls, p: Mapping[str, Any], symbols: Sequence[str]) -> None:
        """Raise ConfigError when parameters `p` do not fit the universe `symbols` (a grid
        passes each parameter's largest value); nothing to check by default."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(abstract=abstract, **kwargs)
        if abstract:
            return
        where = f"cross-sectional strategy class {cls.__qualname__}"
        kernel = getattr(cls, "score_kernel", None)
        if not callable(kernel) or not hasattr(kernel, "py_func"):
            raise TypeError(
                f"{where}: score_kernel must be a Numba function (decorate it with "
                "@njit(cache=True)) with the signature of ivybt.kernels.cross_section; see "
                "docs/strategies.md"
            )
        if "k" not in cls.param_names():
            raise TypeError(
                f"{where}: declare the number of symbols held on a side as an int parameter "
                "named k, e.g. Param('k', int, 3, 1, 10, minimum=1)"
            )
        if cls.selection not in SELECTIONS:
            raise TypeError(f"{where}: selection must be one of {', '.join(SELECTIONS)}, got "
                            f"{cls.selection!r}")  # fmt: skip
        if cls.schedule == "signal" or not re.match(REBALANCE_PATTERN, cls.schedule):
            raise TypeError(f"{where}: schedule must be daily, weekly, monthly or <N>bars "
                            f"(e.g. 21bars), got {cls.schedule!r}")  # fmt: skip


def is_cross_sectional(strategy: type[Strategy]) -> bool:
    """True for a strategy that ranks symbols (a `CrossSectionalStrategy`)."""
    return issubclass(strategy, CrossSectionalStrategy)


class MomentumRotation(CrossSectionalStrategy):
    """Cross-sectional momentum: hold the k symbols with the best trailing return."""

    name = "momentum_rotation"
    summary = ("Hold the k symbols with the best return over `lookback` bars, skipping the "
               "last `skip` bars (12-1 momentum: 252, 21); select monthly.")  # fmt: skip
    params = (
        Param("lookback", int, 252, 21, 252, minimum=1, step=21,
              doc="trailing return window, bars"),
        Param("skip", int, 21, 0, 42, minimum=0, step=21,
              doc="latest bars left out of the return, bars"),
        Param("k", int, 3, 1, 10, minimum=1, doc="symbols held"),
    )  # fmt: skip
    score_kernel = momentum_score_nb
    selection = "top"
    schedule = "monthly"

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        """Bars before the first score: lookback + skip."""
        return int(p["lookback"]) + int(p["skip"])


class ClusterMeanReversion(CrossSectionalStrategy):
    """The research hub's cluster mean reversion, on the largest correlation cluster."""

    name = "cluster_mean_reversion"
    summary = (
        "In the largest cluster of symbols correlated above `threshold`, long the k "
        "furthest below its mean `reversion`-bar return, short the k furthest above."
    )
    params = (
        Param("lookback", int, 60, 20, 120, minimum=3, step=20,
              doc="correlation window, bars of returns"),
        Param("threshold", float, 0.5, 0.3, 0.8, minimum=-1.0, maximum=1.0, step=0.1,
              doc="an edge joins two symbols correlated above it"),
        Param("reversion", int, 5, 5, 20, minimum=1, step=5,
              doc="return window ranked inside the cluster, bars"),
        Param("k", int, 2, 1, 5, minimum=1, doc="symbols held on each side"),
    )  # fmt: skip
    score_kernel = cluster_reversion_score_nb
    selection = "long_short"
    schedule = "weekly"

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        """Bars before the first possible score: max(lookback, reversion)."""
        return max(int(p["lookback"]), int(p["reversion"]))


class RelativeStrength(CrossSectionalStrategy):
    """Relative strength: the trend of each symbol's price relative to a benchmark symbol."""

    name = "relative_strength"
    summary = (
        "Hold the k symbols whose price ratio to the benchmark symbol (position "
        "`benchmark` in the universe, 0: the first) rose fastest over `lookback` bars."
    )
    params = (
        Param("lookback", int, 63, 21, 252, minimum=2, step=21,
              doc="bars of the ratio's trend (least-squares slope of its log)"),
        Param("benchmark", int, 0, 0, 0, minimum=0,
              doc="the benchmark's position in the universe, 0: the first symbol"),
        Param("k", int, 3, 1, 10, minimum=1, doc="symbols held"),
    )  # fmt: skip
    score_kernel = relative_strength_score_nb
    selection = "top"
    schedule = "monthly"
    positional = True

    @classmethod
    def warmup_bars(cls, p: Mapping[str, Any]) -> int:
        """Bars before the first score: lookback - 1."""
        return int(p["lookback"]) - 1

    @classmethod
    def check_universe(cls, p: Mapping[str, Any], symbols: Sequence[str]) -> None:
        """The benchmark must be one of the universe's symbols."""
        if int(p["benchmark"]) >= len(symbols):
            raise ConfigError(
                f"relative_strength: benchmark={int(p['benchmark'])} is a position in the "
                f"universe, which has {len(symbols)} symbols ({symbols[0]} is 0); list the "
                "benchmark first, or give its position"
            )
