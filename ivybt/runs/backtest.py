"""`ivybt.backtest`: one strategy, one symbol, one parameter set -> metrics, trades, equity.

The CLI's `ivybt backtest` calls `run_backtest` with the same `RunConfig`, so a notebook and a
terminal get the same numbers and the same run folder.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import SignalBars, bars_note, signal_bars
from ivybt.config import RunConfig, build_config
from ivybt.engine.inputs import RunInputs, prepare_inputs
from ivybt.engine.simulation import (
    Simulation,
    buy_and_hold_metrics,
    check_enough_bars,
    simulate_strategy,
)
from ivybt.errors import ConfigError
from ivybt.files import write_json, write_table, write_text
from ivybt.runs.folder import check_out_folder, open_run_folder, utc_now
from ivybt.strategies import Strategy, get_strategy

if TYPE_CHECKING:
    from ivybt.engine.portfolio import PortfolioSimulation
    from ivybt.report.figures import ReportFigures
    from ivybt.runs.portfolio import PortfolioResult

from ivybt.kernels.stops import EXIT_REASONS
from ivybt.report.exits import exits_record

TRADE_COLUMNS = (
    "entry_time", "exit_time", "side", "units", "entry_price", "exit_price", "entry_fee",
    "exit_fee", "fees", "gross_pnl", "net_pnl", "return", "bars_held", "is_open", "exit_reason",
)  # fmt: skip


@dataclass
class BacktestResult:
    """What a backtest produced; `write()` saves it as a run folder.

    metrics : the headline numbers (docs/metrics.md), fractions unless named otherwise.
    trades : one row per round trip (the open trade last, `is_open=True`).
    equity : per bar of the traded window: equity, returns, drawdown, units, benchmark_equity.
    prices : the traded window's OHLC bars.
    benchmark : return metrics of buy-and-hold over the same bars, without costs.
    """

    config: RunConfig
    strategy: type[Strategy]
    metrics: dict[str, float]
    trades: pd.DataFrame
    equity: pd.DataFrame
    prices: pd.DataFrame
    data: dict[str, Any]
    periods_per_year: float
    periods_per_year_source: str
    split: dict[str, Any] | None
    benchmark: dict[str, float] = field(default_factory=dict)  # buy-and-hold, same window
    started: datetime = field(default_factory=utc_now)
    folder: Path | None = None

    @property
    def params(self) -> dict[str, float | int]:
        return dict(self.config.strategy.params)

    def __repr__(self) -> str:
        from ivybt.report.backtest import metrics_text
        from ivybt.report.html import bars_label

        params = " ".join(f"{name}={value}" for name, value in self.params.items())
        span = f"{self.equity.index[0]:%Y-%m-%d}..{self.equity.index[-1]:%Y-%m-%d}"
        shown = metrics_text(self.metrics, ("total_return", "sharpe", "max_drawdown", "n_trades"))
        return (
            f"<BacktestResult {self.config.strategy.name} {params} on {self.data['symbol']} "
            f"{self.config.data.interval}{bars_label(self.config.data)}, {span} "
            f"({len(self.equity):,} bars): {shown}>"
        )

    def plot(self) -> ReportFigures:
        """The figures of report.html, as plotly figures: price with entries and exits,
        equity vs buy-and-hold, drawdown, net PnL of closed trades
        (`ivybt.report.backtest.backtest_sections`; index by position or heading)."""
        from ivybt.report.backtest import backtest_sections
        from ivybt.report.figures import ReportFigures

        return ReportFigures(backtest_sections(self.prices, self.equity, self.trades,
                                               exits=self.config.execution.has_stops))  # fmt: skip

    def headline(self) -> dict[str, Any]:
        """metrics.json: the metrics with what they are metrics of."""
        return {
            "strategy": self.config.strategy.name,
            "params": self.params,
            "symbol": self.data["symbol"],
            "interval": self.config.data.interval,
            "first": self.equity.index[0].isoformat(),
            "last": self.equity.index[-1].isoformat(),
            "n_bars": len(self.equity),
            "periods_per_year": self.periods_per_year,
            "periods_per_year_source": self.periods_per_year_source,
            "split": self.split,
            "metrics": self.metrics,
            "buy_and_hold": self.benchmark,
            **({"exits": exits_record(self.trades)} if self.config.execution.has_stops else {}),
        }

    def write(
        self,
        out: str | Path | None = None,
        *,
        overwrite: bool = False,
        results_dir: str | Path | None = None,
        command_line: list[str] | None = None,
    ) -> Path:
        """Write the run folder (manifest, metrics, trades, equity, report) and return it."""
        from ivybt.report import backtest_report_html
        from ivybt.report.html import bars_label

        extra = {"periods_per_year": self.periods_per_year, "split": self.split}
        with open_run_folder(
            "backtest", self.config, data=self.data, started=self.started, folder=out,
            results_dir=results_dir, overwrite=overwrite, extra=extra,
            command_line=command_line if command_line is not None else list(sys.argv),
        ) as target:  # fmt: skip
            write_json(target / "metrics.json", self.headline())
            write_table(target / "trades.parquet", self.trades)
            write_table(target / "trades.csv", self.trades.set_index("entry_time"))
            write_table(target / "equity.parquet", self.equity)
            html = backtest_report_html(
                title=f"{self.config.strategy.name} on {self.data['symbol']}"
                f"{bars_label(self.config.data)}",
                prices=self.prices,
                equity=self.equity,
                trades=self.trades,
                metrics=self.metrics,
                notes=self._notes(),
                exits=self.config.execution.has_stops,
            )
            write_text(target / "report.html", html)
        self.folder = target
        return target

    def _notes(self) -> list[str]:
        execution = self.config.execution
        params = ", ".join(f"{key}={value}" for key, value in self.params.items())
        notes = [
            f"Parameters: {params}. Fill {execution.fill}, {execution.direction}, size "
            f"{execution.size:g}, commission {execution.commission:.4%} and slippage "
            f"{execution.slippage:.4%} per side.",
            f"Annualised with {self.periods_per_year:g} periods a year "
            f"({self.periods_per_year_source}). Data SHA-256 {self.data['sha256'][:16]}...",
        ]
        if self.split:
            notes.append(
                f"{self.split['run_mode']} part of a {self.split['train_split']:g} train/test "
                f"split at {self.split['split_time']} (bar {self.split['split_index']})."
            )
        return notes + bars_note(self.config)


def backtest(
    strategy: str | type[Strategy] | None = None,
    *,
    symbol: str | None = None,
    symbols: str | Sequence[str] | None = None,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    params: Mapping[str, object] | None = None,
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
    sl: float | None = None,
    tp: float | None = None,
    trail: float | None = None,
    sl_atr: float | None = None,
    max_bars: int | None = None,
    atr_length: int | None = None,
    train_split: float | None = None,
    run_mode: str | None = None,
    max_jump: float | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    portfolio: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    preset: str | None = None,
    presets_dir: str | Path | None = None,
) -> BacktestResult | PortfolioResult:
    """Backtest `strategy` on one symbol (or a DataFrame of OHLCV bars) and return the result.

    Mirrors `ivybt backtest`; options are described in its `--help` and docs/metrics.md. A
    keyword left at None takes the configuration file's value, else the model's default
    (`ivybt.config`: interval "1d", source "auto", commission 0.001, slippage 0.0005, fill
    "next_open", direction "long", size 1.0, initial_cash 10000, run_mode "full").
    `bars="renko"` computes the signals on Renko bricks built with `renko` settings
    (`ivybt.config.RenkoConfig`: box or atr, atr_mult, atr_dynamic, reversal, anchor,
    source, volume; docs/renko.md) and trades on the real bars. `config`
    names a YAML file or a run's manifest.json (`ivybt.config_file`); keywords given override
    its fields, `params` per parameter name. With `out` (or the file's output.out), the run
    folder is also written there. `max_jump` is the price-jump factor bars passed as `data=`
    are validated with (default 10; `math.inf`: no limit; docs/data.md).

    `symbols` (a list or "SPY,MSFT") trades the strategy on every symbol in one account and
    returns a `PortfolioResult` (docs/portfolio.md); `portfolio` sets its rules
    (`ivybt.config.PortfolioConfig`: weights, fixed_weights, vol_window, max_leverage,
    max_weight, rebalance, band, lot_size, commission, slippage). With bars of your own,
    pass `data={"SPY": frame, ...}`, one DataFrame per symbol.

    `sl`, `tp`, `trail` (fractions of the entry fill), `sl_atr` (x ATR(`atr_length`) at
    entry) and `max_bars` add exits next to the strategy's signal, as `--sl` ... do
    (docs/stops.md); the trades then say why each closed (`exit_reason`).

    `preset` backtests a saved preset (`ivybt.save_preset`, docs/presets.md): its strategy,
    parameters, universe, execution and data window, checked first (`ivybt.load_preset`);
    keywords given override them, as they do a `config` file's fields.

    Examples
    --------
    >>> import ivybt
    >>> result = ivybt.backtest("sma_cross", symbol="SPY", source="sample",
    ...                         params={"fast": 10, "slow": 50}, start="2015-01-01")
    >>> sorted(result.metrics)[:3], result.trades.columns[0]
    (['avg_loss', 'avg_win', 'cagr'], 'entry_time')
    """
    sections = config_sections(
        strategy, symbol=symbol, data=data, interval=interval, start=start, end=end,
        source=source, adjusted=adjusted, bars=bars, renko=renko, commission=commission,
        slippage=slippage, fill=fill,
        direction=direction, size=size, initial_cash=initial_cash,
        periods_per_year=periods_per_year, train_split=train_split, run_mode=run_mode,
        max_jump=max_jump, symbols=symbols, sl=sl, tp=tp, trail=trail, sl_atr=sl_atr,
        max_bars=max_bars, atr_length=atr_length,
        extra={"strategy": {"params": None if params is None else dict(params)},
               "output": {"out": None if out is None else str(out)},
               "portfolio": dict(portfolio or {})},
    )  # fmt: skip
    if preset is not None:  # a checked preset file, read as a configuration file
        from ivybt.runs.presets import preset_config_file

        config = preset_config_file(preset, presets_dir=presets_dir, config=config,
                                    strategy=strategy)  # fmt: skip
    sections = api_sections(sections, config)
    run_config = build_config(**sections)
    check_out_folder(run_config.output.out)  # before the work, not after it
    if config is not None:
        from ivybt.config_file import warn_ignored_by_backtest

        name = run_config.strategy.name
        params = get_strategy(name).resolve_params(run_config.strategy.params)
        warn_ignored_by_backtest(config, name, params)
    result: BacktestResult | PortfolioResult
    if run_config.data.is_portfolio:
        from ivybt.runs.portfolio import run_portfolio_backtest

        result = run_portfolio_backtest(run_config, data=data, cache_dir=cache_dir)  # type: ignore[arg-type]
    else:
        result = run_backtest(run_config, data=data, cache_dir=cache_dir)  # type: ignore[arg-type]
    if run_config.output.out is not None:
        result.write(run_config.output.out, command_line=["python", "ivybt.backtest(...)"])
    return result


def config_sections(
    strategy: str | type[Strategy] | None,
    *,
    symbol: str | None,
    data: pd.DataFrame | None,
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
    train_split: float | None = None,
    run_mode: str | None = None,
    max_jump: float | None = None,
    symbols: str | Sequence[str] | None = None,
    sl: float | None = None,
    tp: float | None = None,
    trail: float | None = None,
    sl_atr: float | None = None,
    max_bars: int | None = None,
    atr_length: int | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The data, strategy, execution and split sections of a `RunConfig` from API keywords,
    plus the fields in `extra` (shared by `backtest`, `grid` and `optimize`, so all take the
    same options).

    Only the values given (not None) enter the sections: the model's defaults, or a
    configuration file's values (`api_sections`), fill in the rest.
    """
    if symbol is not None and data is not None:
        raise ConfigError("give exactly one of symbol= (load bars) or data= (a DataFrame)")
    if symbol is not None and symbols is not None:
        raise ConfigError("give symbol= (one symbol) or symbols= (a universe), not both")
    if isinstance(data, Mapping):  # one DataFrame per symbol: a universe of your own bars
        if symbols is None:
            symbols = tuple(str(name) for name in data)
        source = "frame"
    elif data is not None:
        symbol, source = str(data.attrs.get("symbol", "data")), "frame"
    if isinstance(symbols, str):
        from ivybt.data.universe import parse_symbols

        symbols = parse_symbols(symbols)
    name = None if strategy is None else _strategy_name(strategy, get_strategy(strategy))
    sections: dict[str, dict[str, Any]] = {
        "data": {"symbol": symbol, "symbols": None if symbols is None else tuple(symbols),
                 "interval": interval, "start": start, "end": end,
                 "source": source, "adjusted": adjusted, "bars": bars,
                 "renko": None if renko is None else dict(renko), "max_jump": max_jump},
        "strategy": {"name": name},
        "execution": {"commission": commission, "slippage": slippage, "fill": fill,
                      "direction": direction, "size": size, "initial_cash": initial_cash,
                      "periods_per_year": periods_per_year, "sl": sl, "tp": tp,
                      "trail": trail, "sl_atr": sl_atr, "max_bars": max_bars,
                      "atr_length": atr_length},
        "split": {"train_split": train_split, "run_mode": run_mode},
    }  # fmt: skip
    for section, fields in (extra or {}).items():
        sections.setdefault(section, {}).update(fields)
    return {
        section: {field: value for field, value in fields.items() if value is not None}
        for section, fields in sections.items()
    }


def api_sections(
    sections: dict[str, dict[str, Any]], config: str | Path | None
) -> dict[str, dict[str, Any]]:
    """The sections of an API call: with `config`, the given ones laid over that file's
    (`ivybt.config_file.apply_config_file`); without, the strategy and the bars are required."""
    if config is not None:
        from ivybt.config_file import apply_config_file

        return apply_config_file(sections, config, strategy="a strategy", symbol="symbol=, data=")
    if "name" not in sections["strategy"]:
        raise ConfigError(
            "give a strategy: a built-in name, package.module:ClassName or a Strategy class"
        )
    if "symbol" not in sections["data"] and "symbols" not in sections["data"]:
        raise ConfigError(
            "give exactly one of symbol= (load bars), symbols= (a universe) or data= (a DataFrame)"
        )
    return sections


def run_backtest(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
) -> BacktestResult:
    """Run the backtest `config` describes (bars from `data` when given, else loaded)."""
    started = utc_now()
    strategy = get_strategy(config.strategy.name)
    params = strategy.resolve_params(config.strategy.params)
    config = config.model_copy(
        update={"strategy": config.strategy.model_copy(update={"params": params})}
    )
    inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    signals = signal_bars(config, inputs.frame.iloc[: inputs.history_bars], inputs.columns,
                          start=inputs.window.start or 0)  # fmt: skip
    check_enough_bars(strategy, params, len(signals.columns["close"]), _describe(signals, inputs))
    ppy = inputs.periods_per_year
    simulation = simulate_strategy(
        inputs.columns, strategy, params, config.execution, window=inputs.window,
        periods_per_year=ppy, signal_columns=signals.columns, signal_of=signals.signal_of,
    )  # fmt: skip
    prices = inputs.prices()
    return BacktestResult(
        config=config,
        strategy=strategy,
        metrics=simulation.metrics,
        trades=trades_frame(simulation, prices.index),
        equity=equity_frame(simulation, prices, config.execution.initial_cash),
        prices=prices,
        data=inputs.record,
        periods_per_year=ppy,
        periods_per_year_source=inputs.periods_per_year_source,
        split=inputs.split,
        benchmark=buy_and_hold_metrics(
            np.ascontiguousarray(prices["close"].to_numpy(dtype=np.float64)),
            config.execution.initial_cash,
            ppy,
        ),
        started=started,
    )


def _describe(signals: SignalBars, inputs: RunInputs) -> str:
    """'SPY 2010-01-04..2020-08-28', or its Renko bricks, for messages."""
    if signals.signal_of is None:
        return inputs.describe()
    return f"the Renko bricks of {inputs.describe()}"


def trades_frame(
    simulation: Simulation | PortfolioSimulation, index: pd.DatetimeIndex
) -> pd.DataFrame:
    """The trade records as a labelled DataFrame (columns `TRADE_COLUMNS`)."""
    records = simulation.trades
    entry = records["entry_bar"]
    exit_ = records["exit_bar"]
    frame = pd.DataFrame(
        {
            "entry_time": index[entry],
            "exit_time": index[exit_],
            "side": np.where(records["side"] > 0, "long", "short"),
            "units": records["units"],
            "entry_price": records["entry_price"],
            "exit_price": records["exit_price"],
            "entry_fee": records["entry_fee"],
            "exit_fee": records["exit_fee"],
            "fees": records["entry_fee"] + records["exit_fee"],
            "gross_pnl": records["gross_pnl"],
            "net_pnl": records["net_pnl"],
            "return": records["trade_return"],
            "bars_held": exit_ - entry,
            "is_open": records["is_open"],
            "exit_reason": np.asarray(EXIT_REASONS, dtype=object)[records["exit_reason"]],
        },
        columns=list(TRADE_COLUMNS),
    )
    return frame


def equity_frame(
    simulation: Simulation, prices: pd.DataFrame, initial_cash: float
) -> pd.DataFrame:
    """Per-bar equity, returns, drawdown (<= 0), units and buy-and-hold equity."""
    equity = pd.Series(simulation.equity, index=prices.index)
    previous = equity.shift(1).fillna(initial_cash)
    peak = np.maximum(equity.cummax().to_numpy(), initial_cash)
    close = prices["close"].to_numpy()
    return pd.DataFrame(
        {
            "equity": equity,
            "returns": equity / previous - 1.0,
            "drawdown": equity.to_numpy() / peak - 1.0,
            "units": simulation.units,
            "benchmark_equity": initial_cash * close / close[0],
        },
        index=prices.index,
    )


def _strategy_name(given: str | type[Strategy], cls: type[Strategy]) -> str:
    if isinstance(given, str):
        return given
    from ivybt.strategies import BUILTIN

    if BUILTIN.get(cls.name) is cls:
        return cls.name
    return f"{cls.__module__}:{cls.__qualname__}"
