"""`check_lookahead`: the look-ahead check of `ivybt check-lookahead`, from API keywords.

The check itself is `ivybt.studies.lookahead.run_lookahead_check`; its module docstring says
what is compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt.config import build_config
from ivybt.runs.backtest import api_sections, config_sections
from ivybt.strategies.base import Strategy
from ivybt.studies.lookahead import LookaheadReport, run_lookahead_check


def check_lookahead(
    strategy: str | type[Strategy],
    *,
    symbol: str | None = None,
    symbols: str | Sequence[str] | None = None,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    params: Mapping[str, object] | None = None,
    cuts: int = 50,
    seed: int | None = 0,
    interval: str | None = None,
    start: str | None = None,
    end: str | None = None,
    source: str | None = None,
    adjusted: bool | None = None,
    bars: str | None = None,
    renko: Mapping[str, Any] | None = None,
    commission: float | None = None,
    slippage: float | None = None,
    fill: str | None = None,
    direction: str | None = None,
    size: float | None = None,
    initial_cash: float | None = None,
    periods_per_year: float | None = None,
    portfolio: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    **stops: Any,
) -> LookaheadReport:
    """Check `strategy` for look-ahead on one symbol (or a DataFrame of OHLCV bars).

    Takes the data, bar and execution keywords of `ivybt.backtest` (same defaults; `stops`:
    its `sl`, `tp`, `trail`, `sl_atr`, `max_bars`, `atr_length`); `cuts`
    is the number of cut bars (>= 1) and `seed` draws the random half of them (None: a fresh
    seed, recorded in the report). `ivybt.studies.lookahead` says what is compared.
    `symbols` (and `portfolio`, `data={symbol: frame}`) check a universe traded in one
    account: every symbol's prices after each cut are changed, and no side, weight or
    equity up to the cut may move.

    Examples
    --------
    >>> from ivybt.runs.lookahead import check_lookahead
    >>> report = check_lookahead("sma_cross", symbol="SPY", source="sample", cuts=5,
    ...                          start="2018-01-01")
    >>> report.ok, report.message
    (True, 'no look-ahead: 5 cuts, positions and signals identical up to each cut')
    """
    sections = config_sections(
        strategy, symbol=symbol, data=data, interval=interval, start=start, end=end,
        source=source, adjusted=adjusted, bars=bars, renko=renko, commission=commission,
        slippage=slippage, fill=fill, direction=direction, size=size,
        initial_cash=initial_cash, periods_per_year=periods_per_year, symbols=symbols,
        **stops,
        extra={"strategy": {"params": None if params is None else dict(params)},
               "portfolio": dict(portfolio or {})},
    )  # fmt: skip
    config = build_config(**api_sections(sections, None))
    return run_lookahead_check(
        config, data=data, cache_dir=cache_dir, cuts=cuts, seed=seed, strategy=strategy
    )
