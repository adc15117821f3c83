"""What a run on a universe needs before its kernels: the aligned bars, the traded window,
the history the signals may see and `periods_per_year`, decided from one `RunConfig`
(the universe twin of `ivybt.engine.inputs`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt.config import PortfolioConfig, RunConfig
from ivybt.data.panel import Panel, load_panel, panel_from_frames
from ivybt.data.universe import as_symbols, unique_symbols
from ivybt.engine.portfolio import UniverseBars
from ivybt.engine.splits import run_split
from ivybt.errors import ConfigError
from ivybt.periods import infer_periods_per_year


@dataclass(frozen=True)
class PanelInputs:
    """A universe's bars and the decisions about them.

    panel : the bars the signals may see (in train mode, the training bars only, so nothing
        after the split exists for the run); `full` keeps every bar loaded.
    window : the traded and measured union bars, as a slice of `panel`.
    """

    full: Panel
    panel: Panel
    window: slice
    split: dict[str, Any] | None
    periods_per_year: float
    periods_per_year_source: str
    portfolio: PortfolioConfig

    @property
    def records(self) -> list[dict[str, Any]]:
        """The manifest's data records: one per symbol, with its data hash."""
        return [dict(record) for record in self.full.records]

    @property
    def record(self) -> dict[str, Any]:
        """The universe as one data record (what a study records where one symbol's record
        goes): its label, symbols, interval, the panel's hash, and every symbol's record
        under "series" (the manifest lists those)."""
        full = self.full
        return {
            "symbol": _label(full.symbols),
            "symbols": list(full.symbols),
            "interval": full.interval,
            "rows": full.n_bars,
            "first": full.index[0].isoformat() if full.n_bars else None,
            "last": full.index[-1].isoformat() if full.n_bars else None,
            "sha256": full.sha256,
            "series": self.records,
        }

    @property
    def columns(self) -> UniverseBars:
        """The bars the signals may see, with the account's rules (`UniverseBars`)."""
        return UniverseBars(self.panel, self.portfolio)

    @property
    def frame(self) -> pd.DataFrame:
        """An empty frame on the union timestamps (studies take dates from its index)."""
        return pd.DataFrame(index=self.full.index)

    def upto(self, end: int) -> PanelInputs:
        """These inputs with the bars the signals may see cut to [0, end)."""
        return replace(self, panel=self.panel.window(0, end))

    @property
    def memory_bars(self) -> int:
        """Bars a study's tables and buffers scale with: every symbol's own bars."""
        return self.columns.memory_bars

    @property
    def history_bars(self) -> int:
        return self.panel.n_bars

    def describe(self) -> str:
        """'SPY, MSFT, AAPL (3 symbols) 2004-08-19..2018-01-19', for messages."""
        return self.full.describe()

    def index(self) -> pd.DatetimeIndex:
        """The traded window's union timestamps."""
        return self.full.index[self.window]


def prepare_panel_inputs(
    config: RunConfig,
    *,
    data: Panel | Mapping[str, pd.DataFrame] | None = None,
    cache_dir: str | Path | None = None,
) -> PanelInputs:
    """Load (or align) the bars of `config.data.symbols`, split them and decide
    `periods_per_year` from the union timestamps."""
    spec = config.data
    if data is None:
        if spec.source == "frame":
            raise ConfigError("data.source 'frame' needs a DataFrame per symbol passed as data=")
        panel = load_panel(
            spec.universe, spec.interval, spec.start, spec.end,
            source=spec.source,  # type: ignore[arg-type]
            adjusted=spec.adjusted, cache_dir=cache_dir,
        )  # fmt: skip
    elif isinstance(data, Panel):
        panel = data
    else:
        # keys and symbols are tickers: normalised alike ("spy" is SPY), one frame each
        frames = dict(zip(unique_symbols(data, what="data= keys"), data.values(), strict=True))
        wanted = as_symbols(spec.universe)
        missing = [name for name in wanted if name not in frames]
        if missing:
            raise ConfigError(
                f"data= has no frame for {', '.join(missing)}; pass one DataFrame per symbol "
                "of the universe"
            )
        panel = panel_from_frames({name: frames[name] for name in wanted},
                                  max_jump=spec.max_jump)  # fmt: skip
        panel = _clip(panel, spec.start, spec.end)
    if panel.n_bars == 0:
        raise ConfigError(f"the universe {', '.join(spec.universe)} has no bars in the range")
    split_info, window, history = run_split(config.split, panel.index)
    if config.execution.periods_per_year is not None:
        ppy, ppy_source = config.execution.periods_per_year, "given"
    else:
        ppy, ppy_source = infer_periods_per_year(panel.index, spec.interval)
    visible = panel.window(0, history) if history < panel.n_bars else panel
    return PanelInputs(panel, visible, window, split_info, ppy, ppy_source, config.portfolio)


def _label(symbols: tuple[str, ...]) -> str:
    """'SPY+4' for SPY and four more (as `DataConfig.label`)."""
    return symbols[0] + (f"+{len(symbols) - 1}" if len(symbols) > 1 else "")


def _clip(panel: Panel, start: str | None, end: str | None) -> Panel:
    """`panel` restricted to [start, end) like the single-symbol DataFrame path."""
    if start is None and end is None:
        return panel
    index = panel.index
    lo = index.searchsorted(pd.Timestamp(start)) if start else 0
    hi = index.searchsorted(pd.Timestamp(end)) if end else len(index)
    if hi <= lo:
        raise ConfigError(f"no bars of the universe fall in [{start}, {end})")
    return panel.window(int(lo), int(hi))
