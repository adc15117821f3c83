"""`ivybt.backtest` on a universe: one strategy, one account across the symbols.

`run_portfolio_backtest` is what `ivybt backtest --symbols ...` and `ivybt.backtest(...,
symbols=[...])` call; the result writes the run folder of a backtest plus `weights.parquet`,
with a `symbol` column in the trades and per-symbol contributions in metrics.json
(docs/portfolio.md).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.config import ExecutionConfig, RunConfig
from ivybt.data.panel import Panel
from ivybt.engine.panel_inputs import PanelInputs, prepare_panel_inputs
from ivybt.engine.portfolio import (
    PortfolioSimulation,
    cross_section_scores,
    cross_section_selection,
    equal_weight_buy_and_hold,
    simulate_portfolio,
)
from ivybt.engine.simulation import BENCHMARK_METRICS, check_enough_bars
from ivybt.errors import ConfigError, InSampleWarning
from ivybt.files import write_json, write_table, write_text
from ivybt.kernels.metrics import METRIC_NAMES, N_METRICS, return_metrics_nb
from ivybt.report.exits import exits_record
from ivybt.runs.backtest import TRADE_COLUMNS
from ivybt.runs.backtest import trades_frame as single_trades_frame
from ivybt.runs.folder import open_run_folder, utc_now
from ivybt.strategies import Strategy, get_strategy, is_cross_sectional
from ivybt.studies.factor import FactorView, factor_view
from ivybt.studies.universe_selection import IN_SAMPLE_NOTE

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures

PORTFOLIO_TRADE_COLUMNS = ("symbol", *TRADE_COLUMNS)


@dataclass
class PortfolioResult:
    """What a backtest on a universe produced; `write()` saves it as a run folder.

    metrics : the account's headline numbers (docs/metrics.md), trade metrics over every
        symbol's closed trades.
    exposure : turnover (one-way, per year), average and maximum gross and net exposure.
    contributions : per symbol: net PnL (closed and open trades), its share of the initial
        cash, closed trades, win rate, fraction of bars held, first and last bar listed.
    trades : one row per trade (one holding of one side in one symbol), with its symbol.
    equity : per union bar: equity, returns, drawdown, gross, net, benchmark_equity (the
        equal-weight buy-and-hold of the universe), traded notional.
    weights : per union bar and symbol, the held weight at the close (signed).
    benchmark : return metrics of the equal-weight buy-and-hold, without costs.
    factor : for a cross-sectional strategy, its factor view (`ivybt.studies.factor`: the
        information coefficient per selection, quantile returns), else None.
    universe : with `--select-universe`, the choice (`UniverseChoice.to_record()`) with the
        bars it was made on and `in_sample` (true unless a test split chose on the training
        bars); the run trades only the chosen symbols.
    """

    config: RunConfig
    strategy: type[Strategy]
    metrics: dict[str, float]
    exposure: dict[str, float]
    contributions: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    weights: pd.DataFrame
    data: list[dict[str, Any]]
    periods_per_year: float
    periods_per_year_source: str
    split: dict[str, Any] | None
    benchmark: dict[str, float] = field(default_factory=dict)
    factor: FactorView | None = None
    universe: dict[str, Any] | None = None
    started: datetime = field(default_factory=utc_now)
    folder: Path | None = None

    @property
    def params(self) -> dict[str, float | int]:
        return dict(self.config.strategy.params)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.weights.columns)

    def __repr__(self) -> str:
        from ivybt.report.backtest import metrics_text

        params = " ".join(f"{name}={value}" for name, value in self.params.items())
        span = f"{self.equity.index[0]:%Y-%m-%d}..{self.equity.index[-1]:%Y-%m-%d}"
        shown = metrics_text(self.metrics, ("total_return", "sharpe", "max_drawdown", "n_trades"))
        return (
            f"<PortfolioResult {self.config.strategy.name} {params} on "
            f"{', '.join(self.symbols)} {self.config.data.interval}, {span} "
            f"({len(self.equity):,} bars): {shown}>"
        )

    def plot(self) -> ReportFigures:
        """The figures of report.html as plotly figures (`ivybt.report.portfolio`)."""
        from ivybt.report.factor import factor_sections
        from ivybt.report.figures import ReportFigures
        from ivybt.report.portfolio import portfolio_sections

        sections = portfolio_sections(self.equity, self.weights, self.contributions, self.trades)
        if self.factor is not None:  # before the trades, as in report.html
            sections[-1:-1] = factor_sections(self.factor)
        if self.config.execution.has_stops:  # before the trades, as in report.html
            from ivybt.report.exits import exits_section

            sections[-1:-1] = [exits_section(self.trades)]
        return ReportFigures(sections)

    def headline(self) -> dict[str, Any]:
        """metrics.json: the metrics with what they are metrics of."""
        contributions = self.contributions.copy()
        for column in ("first", "last"):
            contributions[column] = contributions[column].map(
                lambda stamp: None if pd.isna(stamp) else stamp.isoformat()
            )
        return {
            "strategy": self.config.strategy.name,
            "params": self.params,
            "symbols": list(self.symbols),
            "interval": self.config.data.interval,
            "first": self.equity.index[0].isoformat(),
            "last": self.equity.index[-1].isoformat(),
            "n_bars": len(self.equity),
            "periods_per_year": self.periods_per_year,
            "periods_per_year_source": self.periods_per_year_source,
            "split": self.split,
            "portfolio": self.config.portfolio.model_dump(mode="json"),
            "metrics": self.metrics,
            "exposure": self.exposure,
            "contributions": {
                symbol: dict(row) for symbol, row in contributions.to_dict("index").items()
            },
            "buy_and_hold": self.benchmark,
            **({"factor": self.factor.to_dict()} if self.factor is not None else {}),
            **({"universe_selection": self.universe} if self.universe is not None else {}),
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
        """Write the run folder (manifest, metrics, trades, equity, weights, report)."""
        from ivybt.report.portfolio import portfolio_report_html

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
            write_table(target / "weights.parquet", self.weights)
            if self.factor is not None:
                write_table(target / "factor.parquet", self.factor.ic)
            html = portfolio_report_html(
                title=f"{self.config.strategy.name} on {', '.join(self.symbols)}",
                equity=self.equity,
                weights=self.weights,
                contributions=self.contributions,
                trades=self.trades,
                metrics=self.metrics,
                portfolio_metrics={**self.exposure, "n_symbols": len(self.symbols)},
                notes=self._notes(),
                factor=self.factor,
                exits=self.config.execution.has_stops,
            )
            write_text(target / "report.html", html)
        self.folder = target
        return target

    def _notes(self) -> list[str]:
        execution = self.config.execution
        portfolio = self.config.portfolio
        params = ", ".join(f"{key}={value}" for key, value in self.params.items())
        cap = "" if portfolio.max_weight is None else f", max weight {portfolio.max_weight:g}"
        notes = [
            f"Parameters: {params}. One account across {len(self.symbols)} symbols: "
            f"{portfolio.weights} weights, max leverage {portfolio.max_leverage:g}{cap}, "
            f"rebalance {portfolio.rebalance}"
            + (f" (band {portfolio.band:g})" if portfolio.band else "")
            + f". Fill {execution.fill}, {execution.direction}, size {execution.size:g}, "
            f"commission {execution.commission:.4%} and slippage {execution.slippage:.4%} per "
            "side unless set per symbol.",
            f"Annualised with {self.periods_per_year:g} periods a year "
            f"({self.periods_per_year_source}). Buy-and-hold: equal weights, each symbol's "
            "share bought at its first close and sold at its last, no costs.",
        ]
        if execution.has_stops:
            notes.append(
                f"Exits per symbol ({stops_text(execution)}), from each symbol's entry fill "
                "and bars: a stopped symbol is sold alone, its cash waits until the next "
                "rebalance, and its side stays flat until its signal leaves it."
            )
        if self.universe is not None:
            universe = self.universe
            notes.append(
                f"Universe chosen by {universe['described']} on bars {universe['first']}.."
                f"{universe['last']}: {', '.join(universe['symbols'])} of "
                f"{', '.join(universe['values'])}. "
                + ("Warning: " + IN_SAMPLE_NOTE + "." if universe["in_sample"] else
                   "Chosen on the training bars, judged on the test bars: out of sample.")
            )  # fmt: skip
        if self.split:
            notes.append(
                f"{self.split['run_mode']} part of a {self.split['train_split']:g} train/test "
                f"split at {self.split['split_time']} (bar {self.split['split_index']})."
            )
        return notes


def stops_text(execution: ExecutionConfig) -> str:
    """'stop-loss 5%, trailing 8%, time 60 bars': the exits `execution` switches on."""
    parts = []
    if execution.sl is not None:
        parts.append(f"stop-loss {execution.sl:.4g}")
    if execution.sl_atr is not None:
        parts.append(f"ATR stop {execution.sl_atr:g} x ATR({execution.atr_length})")
    if execution.tp is not None:
        parts.append(f"take-profit {execution.tp:.4g}")
    if execution.trail is not None:
        parts.append(f"trailing {execution.trail:.4g}")
    if execution.max_bars is not None:
        parts.append(f"time {execution.max_bars} bars")
    return ", ".join(parts)


def run_portfolio_backtest(
    config: RunConfig,
    *,
    data: Panel | Mapping[str, pd.DataFrame] | None = None,
    cache_dir: str | Path | None = None,
) -> PortfolioResult:
    """Run the backtest `config` describes on its universe (bars from `data` when given)."""
    started = utc_now()
    strategy = get_strategy(config.strategy.name)
    params = strategy.resolve_params(config.strategy.params)
    config = config.model_copy(
        update={"strategy": config.strategy.model_copy(update={"params": params})}
    )
    inputs = prepare_panel_inputs(config, data=data, cache_dir=cache_dir)
    # each symbol's signal runs on its own bars, not on the union rows its listing spans
    most = int(np.isfinite(inputs.panel.close).sum(axis=0).max(initial=0))
    check_enough_bars(
        strategy, params, most, f"the symbol with the most bars of {inputs.describe()}"
    )
    universe = None
    if config.portfolio.select_universe is not None:
        universe, inputs = _chosen_universe(config, strategy, params, inputs)
    simulation = simulate_portfolio(
        inputs.panel, strategy, params, config.execution, config.portfolio,
        window=inputs.window, periods_per_year=inputs.periods_per_year,
    )  # fmt: skip
    result = portfolio_result(config, strategy, inputs, simulation, started)
    if universe is not None:
        result.universe = universe
        result.data = [dict(record) for record in universe.pop("records")]
    return result


def _chosen_universe(
    config: RunConfig, strategy: type[Strategy], params: Mapping[str, Any], inputs: PanelInputs
) -> tuple[dict[str, Any], PanelInputs]:
    """The `--select-universe` choice of a backtest, and the inputs cut to it.

    A test split chooses on the training bars (out of sample for the test part); otherwise
    the choice is made on the traded bars themselves, and an `InSampleWarning` says so."""
    from ivybt.studies.universe_selection import describe_rule, select_universe

    test = inputs.split is not None and inputs.split["run_mode"] == "test"
    window = slice(0, inputs.window.start) if test else inputs.window
    if window.stop is not None and window.stop <= (window.start or 0):
        raise ConfigError("--select-universe on a test split needs training bars before it")
    choice = select_universe(inputs.panel, strategy, params, config.execution, config.portfolio,
                             window, inputs.periods_per_year)  # fmt: skip
    rule = describe_rule(choice.rule, choice.by)
    if not choice.symbols:
        raise ConfigError(
            f"no symbol of {inputs.describe()} meets {rule}; lower the minimum or rank by "
            "another metric (--by)"
        )
    index = inputs.full.index[window]
    record = choice.to_record() | {
        "described": rule, "in_sample": not test, "first": index[0].isoformat(),
        "last": index[-1].isoformat(), "records": inputs.records,
    }  # fmt: skip
    if not test:
        warnings.warn(InSampleWarning(
            f"{', '.join(choice.symbols)} chosen by {rule} on the bars of this backtest: "
            + IN_SAMPLE_NOTE
        ), stacklevel=3)  # fmt: skip
    columns = choice.columns
    return record, replace(inputs, full=inputs.full.subset(columns),
                           panel=inputs.panel.subset(columns))  # fmt: skip


def portfolio_result(
    config: RunConfig, strategy: type[Strategy], inputs: PanelInputs,
    simulation: PortfolioSimulation, started: datetime,
) -> PortfolioResult:  # fmt: skip
    """Label the simulation's arrays with timestamps and symbols, and measure them."""
    panel = inputs.full
    index = panel.index[inputs.window]
    symbols = list(panel.symbols)
    initial_cash = config.execution.initial_cash
    mark = np.nan_to_num(panel.mark[inputs.window])
    weights = pd.DataFrame(
        simulation.units * mark / simulation.equity[:, None], index=index, columns=symbols
    )
    benchmark = equal_weight_buy_and_hold(panel, inputs.window, initial_cash)
    equity = equity_frame(simulation, weights, benchmark, index, initial_cash)
    trades = trades_frame(simulation, index, symbols)
    ppy = inputs.periods_per_year
    return PortfolioResult(
        config=config,
        strategy=strategy,
        metrics=simulation.metrics,
        exposure=exposure_metrics(equity, ppy),
        contributions=contributions_frame(
            simulation, trades, panel, inputs.window, symbols, initial_cash
        ),
        trades=trades,
        equity=equity,
        weights=weights,
        data=inputs.records,
        periods_per_year=ppy,
        periods_per_year_source=inputs.periods_per_year_source,
        split=inputs.split,
        benchmark=_return_metrics(benchmark, initial_cash, ppy),
        factor=_factor(config, strategy, panel, inputs.window),
        started=started,
    )


def _factor(
    config: RunConfig, strategy: type[Strategy], panel: Panel, window: slice
) -> FactorView | None:
    """The factor view of a cross-sectional strategy's scores over the traded bars."""
    if not is_cross_sectional(strategy):
        return None
    rebalance = config.portfolio.rebalance
    scores = cross_section_scores(panel, strategy, config.strategy.params, rebalance)
    at = cross_section_selection(panel, strategy, rebalance, -1).at
    return factor_view(scores[window], panel.mark[window], at[window], panel.index[window])


def equity_frame(
    simulation: PortfolioSimulation, weights: pd.DataFrame, benchmark: np.ndarray,
    index: pd.DatetimeIndex, initial_cash: float,
) -> pd.DataFrame:  # fmt: skip
    """Per-bar equity, returns, drawdown (<= 0), gross and net exposure, the buy-and-hold
    equity and the notional traded."""
    equity = pd.Series(simulation.equity, index=index)
    previous = equity.shift(1).fillna(initial_cash)
    peak = np.maximum(equity.cummax().to_numpy(), initial_cash)
    values = weights.to_numpy()
    return pd.DataFrame(
        {
            "equity": equity,
            "returns": equity / previous - 1.0,
            "drawdown": equity.to_numpy() / peak - 1.0,
            "gross": np.abs(values).sum(axis=1),
            "net": values.sum(axis=1),
            "benchmark_equity": benchmark,
            "traded": simulation.traded,
        },
        index=index,
    )


def exposure_metrics(equity: pd.DataFrame, periods_per_year: float) -> dict[str, float]:
    """Turnover (notional traded / equity at that bar's close, summed, per year: one-way, so
    buying and later selling a whole book counts 2) and the average and maximum gross and
    net exposure at the closes."""
    n_bars = len(equity)
    turnover = float((equity["traded"] / equity["equity"]).sum() * periods_per_year / n_bars)
    return {
        "turnover": turnover,
        "avg_gross": float(equity["gross"].mean()),
        "max_gross": float(equity["gross"].max()),
        "avg_net": float(equity["net"].mean()),
        "max_net": float(equity["net"].abs().max()),
    }


def trades_frame(
    simulation: PortfolioSimulation, index: pd.DatetimeIndex, symbols: list[str]
) -> pd.DataFrame:
    """The trade records as a labelled DataFrame (`PORTFOLIO_TRADE_COLUMNS`): a backtest's
    trade columns (`ivybt.runs.backtest.trades_frame`) with the symbol first."""
    frame = single_trades_frame(simulation, index)
    frame.insert(0, "symbol", np.asarray(symbols, dtype=object)[simulation.trades["symbol"]])
    return frame


def contributions_frame(
    simulation: PortfolioSimulation, trades: pd.DataFrame, panel: Panel, window: slice,
    symbols: list[str], initial_cash: float,
) -> pd.DataFrame:  # fmt: skip
    """Per symbol: net PnL, its share of the initial cash, closed trades, win rate, the
    fraction of the window's bars it was held, and its first and last listed bar."""
    closed = trades[~trades["is_open"]]
    index = panel.index[window]
    close = panel.close[window]
    rows = []
    for s, symbol in enumerate(symbols):
        mine = trades[trades["symbol"] == symbol]
        done = closed[closed["symbol"] == symbol]
        present = np.flatnonzero(np.isfinite(close[:, s]))
        pnl = float(mine["net_pnl"].sum())
        rows.append({
            "pnl": pnl,
            "return_contribution": pnl / initial_cash,
            "trades": len(done),
            "win_rate": float((done["net_pnl"] > 0).mean()) if len(done) else np.nan,
            "exposure": float(np.mean(simulation.units[:, s] != 0.0)),
            "first": index[present[0]] if len(present) else pd.NaT,
            "last": index[present[-1]] if len(present) else pd.NaT,
        })  # fmt: skip
    return pd.DataFrame(rows, index=pd.Index(symbols, name="symbol"))


def _return_metrics(equity: np.ndarray, initial_cash: float, ppy: float) -> dict[str, float]:
    out = np.full(N_METRICS, np.nan)
    return_metrics_nb(np.ascontiguousarray(equity), np.ones_like(equity), initial_cash, ppy, out)
    return {name: float(out[METRIC_NAMES.index(name)]) for name in BENCHMARK_METRICS}
