"""What every run command needs before its kernels: the bars, the traded window, the history
the signals may see, and `periods_per_year`, all decided from one `RunConfig`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt._typing import Float64Array1D
from ivybt.config import RunConfig
from ivybt.data.loader import load_series
from ivybt.data.store import data_sha256
from ivybt.data.validate import validate_ohlcv
from ivybt.engine.splits import run_split
from ivybt.engine.tables import bar_columns
from ivybt.errors import ConfigError
from ivybt.periods import infer_periods_per_year


@dataclass(frozen=True)
class RunInputs:
    """Bars and the decisions about them.

    columns : OHLCV arrays of the bars the signals may see (in train mode, the training bars
        only, so nothing after the split exists for the run).
    window : the traded and measured bars, as a slice of `columns`.
    """

    frame: pd.DataFrame
    record: dict[str, Any]
    columns: dict[str, Float64Array1D]
    window: slice
    split: dict[str, Any] | None
    periods_per_year: float
    periods_per_year_source: str

    @property
    def history_bars(self) -> int:
        return len(self.columns["close"])

    def upto(self, end: int) -> RunInputs:
        """These inputs with the bars the signals may see cut to [0, end)."""
        return replace(self, columns={name: values[:end] for name, values in self.columns.items()})

    @property
    def memory_bars(self) -> int:
        """Bars a study's tables and buffers scale with."""
        return self.history_bars

    def describe(self) -> str:
        """'SPY 2020-01-02..2020-08-28', for messages."""
        if len(self.frame) == 0:
            return f"{self.record['symbol']}"
        first, last = self.frame.index[0].date(), self.frame.index[-1].date()
        return f"{self.record['symbol']} {first}..{last}"

    def prices(self) -> pd.DataFrame:
        """The traded window's OHLC bars."""
        return self.frame.iloc[self.window][["open", "high", "low", "close"]]


def prepare_inputs(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
) -> RunInputs:
    """Load (or validate) the bars of `config`, split them and decide `periods_per_year`.

    A universe (`data.symbols`) gives `ivybt.engine.panel_inputs.PanelInputs` instead: the
    same fields a study reads, its `columns` a `UniverseBars`, so every study runs on one
    symbol or a universe through the same code."""
    _check_kind(config)
    if config.data.is_portfolio:
        from ivybt.engine.panel_inputs import prepare_panel_inputs

        return prepare_panel_inputs(config, data=data, cache_dir=cache_dir)  # type: ignore[return-value,arg-type]
    frame, record = _bars(config, data, cache_dir)
    columns = bar_columns(frame)
    split_info, window, history = run_split(config.split, frame.index)
    if config.execution.periods_per_year is not None:
        ppy, ppy_source = config.execution.periods_per_year, "given"
    else:
        ppy, ppy_source = infer_periods_per_year(frame.index, config.data.interval)
    if history < len(frame):
        columns = {name: values[:history].copy() for name, values in columns.items()}
    return RunInputs(frame, record, columns, window, split_info, ppy, ppy_source)


def _check_kind(config: RunConfig) -> None:
    """A cross-sectional strategy ranks the symbols of a universe: refused on one symbol."""
    from ivybt.strategies import get_strategy, is_cross_sectional

    name = config.strategy.name
    if not config.data.is_portfolio and is_cross_sectional(get_strategy(name)):
        raise ConfigError(
            f"{name} is a cross-sectional strategy (it ranks symbols against each other): give "
            "it a universe with --symbols A,B,C or --universe FILE"
        )


def _bars(
    config: RunConfig, data: pd.DataFrame | None, cache_dir: str | Path | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    spec = config.data
    if data is None:
        if spec.source == "frame":
            raise ConfigError("data.source 'frame' needs a DataFrame passed as data=")
        loaded = load_series(
            spec.symbol,
            spec.interval,
            spec.start,
            spec.end,
            source=spec.source,  # type: ignore[arg-type]
            adjusted=spec.adjusted,
            cache_dir=cache_dir,
        )
        return loaded.frame, loaded.record()
    frame = validate_ohlcv(data, name=f"{spec.symbol} (DataFrame)", max_jump=spec.max_jump).frame
    if spec.start is not None or spec.end is not None:
        lo = pd.Timestamp(spec.start) if spec.start else None
        hi = pd.Timestamp(spec.end) if spec.end else None
        frame = frame.loc[(frame.index >= lo if lo else True) & (frame.index < hi if hi else True)]
    record = {
        "symbol": spec.symbol,
        "interval": spec.interval,
        "source": "frame",
        "rows": len(frame),
        "first": frame.index[0].isoformat() if len(frame) else None,
        "last": frame.index[-1].isoformat() if len(frame) else None,
        "sha256": data_sha256(frame),
    }
    return frame, record
