"""Signal bars on the real bar timeline: what a run's signals are computed on, and when each
signal bar's decision becomes known.

Standard bars are their own signal bars. Renko bricks (`ivybt.bars.renko`) are built from the
real bars; each brick's decision is known at the close of the real bar that completed it, so
`signal_of[t]` = the last brick completed at or before real bar t (-1 before the first), and
the simulation stays on the real bars: a decision at bar t fills at bar t+1's open (or at
its close with fill "close"), never at a brick price inside a bar. Metrics are therefore per
real bar and annualised like the source data, comparable with standard-bar runs.

Grids and searches may vary the bricks themselves: `box`, `atr` and `atr_mult` given as `-p`
specs are bar parameters (`BAR_PARAMS`), not strategy parameters; bricks are built once per
distinct combination of them and reused across the strategy's parameters
(`ivybt.studies.space.bar_grid` lists those combinations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Int64Array1D
from ivybt.config import RenkoConfig, RunConfig
from ivybt.errors import ConfigError
from ivybt.strategies.base import Param, Strategy

RENKO_PARAMS: dict[str, Param] = {
    "box": Param("box", float, 1.0, 0.1, 10.0, 1e-12, None, "Renko box size, price units"),
    "atr": Param("atr", int, 14, 5, 50, 1, 10_000, "ATR period of an ATR box, bars"),
    "atr_mult": Param("atr_mult", float, 1.0, 0.5, 3.0, 1e-12, None, "ATR box multiple"),
}
"""Renko settings a grid or search may vary (`-p box=0.5:3:0.25`)."""

UNIVERSE_PARAMS: dict[str, Param] = {
    "vol_window": Param("vol_window", int, 60, 20, 250, 2, 100_000,
                        "bars of returns behind a universe's inverse-volatility weights"),
}  # fmt: skip
"""A universe's account settings a grid or search may vary (`-p vol_window=20:120:20`)."""

BAR_PARAMS: dict[str, Param] = {**RENKO_PARAMS, **UNIVERSE_PARAMS}
"""Parameters of the bars and the account rather than the strategy: a study evaluates the
strategy's combinations once per distinct setting of them (`split_specs`)."""


@dataclass(frozen=True)
class SignalBars:
    """The bars a run's signals are computed on, mapped onto the real bars."""

    columns: dict[str, Float64Array1D]
    signal_of: Int64Array1D | None  # None: the real bars themselves


def bars_note(config: RunConfig) -> list[str]:
    """The report note of a Renko run (none for standard bars)."""
    if config.data.bars != "renko":
        return []
    renko = config.data.renko or RenkoConfig()
    box = f"box {renko.box:g}" if renko.box is not None else (
        f"ATR({renko.atr}) x {renko.atr_mult:g} box"
        + (", recomputed at each brick" if renko.atr_dynamic else ", as known at the start")
    ) if renko.atr is not None else "box from the grid"  # fmt: skip
    return [
        f"Signals on Renko bricks ({box}, reversal {renko.reversal}, {renko.anchor} anchor, "
        f"{renko.source} prices); each brick's decision fills at the next real bar's open "
        "after the bar that completed it. Metrics are per real bar, annualised like the "
        "source data, so they compare with standard-bar runs (docs/renko.md)."
    ]


def split_specs(
    config: RunConfig, specs: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(bar parameter specs, strategy parameter specs) of a grid's `-p` specs."""
    bar = {name: spec for name, spec in specs.items() if name in BAR_PARAMS}
    renko = [name for name in bar if name in RENKO_PARAMS]
    if renko and config.data.bars != "renko":
        raise ConfigError(
            f"-p {', '.join(renko)} vary Renko bricks, but the run uses standard bars; add "
            "--bars renko"
        )
    if "vol_window" in bar and not (
        config.data.is_portfolio and config.portfolio.weights == "inverse_vol"
    ):
        raise ConfigError(
            "-p vol_window varies a universe's inverse-volatility weights; give a universe "
            "(--symbols A,B,...) with --weights inverse_vol"
        )
    return bar, {name: spec for name, spec in specs.items() if name not in BAR_PARAMS}


def split_combination(
    strategy: type[Strategy], combination: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(bar settings, the strategy's resolved parameters) of a study's combination, whose
    `BAR_PARAMS` (Renko box, vol_window) are not the strategy's."""
    bar = {name: value for name, value in combination.items() if name in BAR_PARAMS}
    params = strategy.resolve_params(
        {name: value for name, value in combination.items() if name not in BAR_PARAMS}
    )
    return bar, params


def signal_columns(signals: SignalBars | None) -> Any:
    """The `signal_columns` argument of `ivybt.studies.grid`'s functions for `signals`: the
    signal bars when they are not the traded bars as they are (Renko bricks, or a universe's
    bars with the settings a study varies), else None."""
    if signals is None:
        return None
    if signals.signal_of is not None or not isinstance(signals.columns, dict):
        return signals.columns
    return None


def renko_settings(config: RunConfig, override: Mapping[str, Any] | None = None) -> Any:
    """`RenkoSettings` from the run's renko section with grid values laid over it."""
    from ivybt.bars.renko import RenkoSettings

    base = config.data.renko or RenkoConfig()
    fields = base.model_dump() | dict(override or {})
    if "box" in (override or {}):
        fields["atr"] = None
    elif "atr" in (override or {}) or "atr_mult" in (override or {}):
        fields["box"] = None
        if fields["atr"] is None:
            raise ConfigError("-p atr_mult varies an ATR box: give --renko-atr N or -p atr=...")
    if (fields["box"] is None) == (fields["atr"] is None):
        raise ConfigError(
            "--bars renko needs exactly one box: --renko-box SIZE (price units) or "
            "--renko-atr N (an ATR box), or vary it with -p box=... / -p atr=..."
        )
    return RenkoSettings(**fields)


def signal_bars(
    config: RunConfig, frame: pd.DataFrame, columns: Mapping[str, Float64Array1D], *,
    start: int = 0, override: Mapping[str, Any] | None = None,
) -> SignalBars:  # fmt: skip
    """The signal bars of a run whose evaluated window starts at bar `start` (an ATR box is
    the ATR known there; docs/renko.md)."""
    if config.data.bars == "standard":
        if isinstance(columns, dict):
            return SignalBars(dict(columns), None)
        # a universe's bars (`UniverseBars`), with the account settings a study varies
        vol_window = (override or {}).get("vol_window")
        bars = columns if vol_window is None else columns.with_vol_window(int(vol_window))  # type: ignore[attr-defined]
        return SignalBars(bars, None)
    from ivybt.bars.renko import brick_bars, renko_bricks, renko_columns

    bricks = renko_bricks(frame, renko_settings(config, override), start=start)
    completed_by = brick_bars(bricks)
    signal_of = np.searchsorted(completed_by, np.arange(len(frame)), side="right") - 1
    return SignalBars(renko_columns(bricks), signal_of.astype(np.int64))
