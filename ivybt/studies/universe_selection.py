"""Choosing a universe's traded symbols by their in-sample results (`--select-universe`).

The research hub's "Save Optimized Universe" kept the tickers an optimization liked; judged on
the same bars, that figure is selection bias. Here the choice is a fitted step like any other:
a walk-forward fold makes it on its in-sample window and trades it out of sample.

- A symbol's in-sample result is the strategy's own trades in that symbol alone in the
  account: the universe's targets with the given parameters (per-symbol signals, or a
  cross-sectional strategy's ranking over every symbol), every other symbol's target set
  flat, traded under the portfolio's rules (weights, caps, costs, schedule) over the window.
  For a per-symbol strategy with equal weights that is the symbol's single-symbol backtest;
  for a cross-sectional one it is the P&L of holding the symbol when the ranking picked it.
  Its metrics are those of docs/metrics.md; `by` names the one that ranks.
- The rule (`PortfolioConfig.select_universe`): "top:N" keeps the N symbols with the highest
  metric, "min:X" those with the metric at least X, "top:N,min:X" at most N of those. Higher is
  better, as for a study's objective (`max_drawdown` is <= 0: the shallowest wins). A symbol
  whose metric is undefined (NaN: never held, no volatility) is not chosen. Ties go to the
  symbol listed first in the universe. The chosen symbols keep the universe's order.
- An empty choice (no symbol qualifies) trades nothing: the account holds cash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D
from ivybt.config import ExecutionConfig, PortfolioConfig, parse_universe_rule
from ivybt.data.panel import Panel
from ivybt.engine.portfolio import account_plan, simulate_portfolio, simulate_targets
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies.base import ParamValue, Strategy

IN_SAMPLE_NOTE = (
    "the universe was chosen on the same bars this figure is measured on, so it is in-sample "
    "(selection bias); `ivybt walkforward --select-universe` judges the choice out of sample"
)


@dataclass(frozen=True)
class UniverseChoice:
    """The symbols a rule chose, and every symbol's in-sample result.

    symbols : the chosen tickers, in the universe's order; columns : their columns.
    results : float64 (n_symbols, n_metrics), each symbol's in-sample metrics (METRIC_NAMES
        order; NaN rows for symbols not listed in the window).
    universe : every ticker of the universe, in order.
    rule, by : the rule ("top:3") and the metric that ranked.
    """

    symbols: tuple[str, ...]
    columns: tuple[int, ...]
    results: Float64Array2D
    universe: tuple[str, ...]
    rule: str
    by: str

    @property
    def values(self) -> Float64Array1D:
        """Each symbol's ranking metric (`by`)."""
        return self.results[:, METRIC_NAMES.index(self.by)]

    def to_record(self) -> dict[str, Any]:
        """As JSON: the rule, the chosen symbols and every symbol's ranking metric."""
        return {
            "rule": self.rule,
            "by": self.by,
            "symbols": list(self.symbols),
            "values": {s: _plain(v) for s, v in zip(self.universe, self.values, strict=True)},
        }


def check_selectable(strategy: type[Strategy]) -> None:
    """Refuse a strategy whose parameters name symbols by position (`positional`)."""
    if getattr(strategy, "positional", False):
        raise ConfigError(
            f"{strategy.name} names a symbol by its position in the universe, which "
            "--select-universe renumbers; drop --select-universe, or give the universe you "
            "want with --symbols"
        )


def describe_rule(rule: str, by: str) -> str:
    """'top 3 by sharpe', 'sharpe >= 0.5', 'top 3 by sharpe with sharpe >= 0.5'."""
    top, minimum = parse_universe_rule(rule)
    at_least = None if minimum is None else f"{by} >= {minimum:g}"
    if top is None:
        return str(at_least)
    return f"top {top} by {by}" + ("" if at_least is None else f" with {at_least}")


def symbol_results(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue],
    execution: ExecutionConfig, portfolio: PortfolioConfig, window: slice,
    periods_per_year: float,
) -> Float64Array2D:  # fmt: skip
    """float64 (n_symbols, n_metrics): each symbol's result alone in the account over `window`
    (union bars of `panel`; signals see every bar of `panel`), as the module docstring says."""
    a, b = window.indices(panel.n_bars)[:2]
    target, portfolio, basis = account_plan(panel, strategy, params, execution.direction,
                                            portfolio)  # fmt: skip
    listed = np.isfinite(panel.close[a:b]).any(axis=0)
    out = np.full((panel.n_symbols, len(METRIC_NAMES)), np.nan)
    alone = np.zeros_like(target)
    for s in np.flatnonzero(listed):
        alone[:, s] = target[:, s]
        run = simulate_targets(panel, alone, execution, portfolio, a, b, periods_per_year,
                               basis)  # fmt: skip
        out[s] = [run.metrics[name] for name in METRIC_NAMES]
        alone[:, s] = 0
    return out


def choose(values: Float64Array1D, rule: str) -> tuple[int, ...]:
    """The columns `rule` keeps given each symbol's metric (module docstring), ascending."""
    top, minimum = parse_universe_rule(rule)
    values = np.asarray(values, dtype=np.float64)
    eligible = np.isfinite(values)
    if minimum is not None:
        eligible &= values >= minimum
    columns = np.flatnonzero(eligible)
    ranked = columns[np.lexsort((columns, -values[columns]))]  # best first, ties by column
    kept = ranked if top is None else ranked[:top]
    return tuple(int(j) for j in np.sort(kept))


def select_universe(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue],
    execution: ExecutionConfig, portfolio: PortfolioConfig, window: slice,
    periods_per_year: float,
) -> UniverseChoice:  # fmt: skip
    """The symbols `portfolio.select_universe` keeps by their results over `window`."""
    rule = portfolio.select_universe
    if rule is None:
        raise ValueError("select_universe needs a rule (portfolio.select_universe)")
    check_selectable(strategy)
    results = symbol_results(panel, strategy, params, execution, portfolio, window,
                             periods_per_year)  # fmt: skip
    columns = choose(results[:, METRIC_NAMES.index(portfolio.select_by)], rule)
    return UniverseChoice(
        tuple(panel.symbols[j] for j in columns), columns, results, panel.symbols, rule,
        portfolio.select_by,
    )  # fmt: skip


def chosen_metrics(
    panel: Panel, columns: tuple[int, ...], strategy: type[Strategy],
    params: Mapping[str, ParamValue], execution: ExecutionConfig,
    portfolio: PortfolioConfig, window: slice, periods_per_year: float,
) -> dict[str, float]:  # fmt: skip
    """The metrics of trading only `columns` of `panel` over `window` (all of an empty choice:
    the account holds cash)."""
    if not columns:  # nothing traded: the cash account's metrics (on any one column)
        a, b = window.indices(panel.n_bars)[:2]
        flat = np.zeros((panel.n_bars, 1), dtype=np.int8)
        cash = portfolio.model_copy(update={"weights": "equal"})  # nothing held: any weights
        run = simulate_targets(panel.subset((0,)), flat, execution, cash, a, b,
                               periods_per_year)  # fmt: skip
        return dict(run.metrics)
    run = simulate_portfolio(panel.subset(columns), strategy, params, execution, portfolio,
                             window=window, periods_per_year=periods_per_year)  # fmt: skip
    return dict(run.metrics)


def _plain(value: float) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def choose_and_measure(
    config: Any, strategy: type[Strategy], frame: Any, columns: Any,
    chosen: Mapping[str, Any], *, choose_end: int, choose: slice, trade: slice,
    periods_per_year: float,
) -> tuple[UniverseChoice, dict[str, float]]:  # fmt: skip
    """The choice a study's combination `chosen` (bar parameters such as vol_window and
    exits varied by `-p sl=...` included) makes over the union bars `choose`, seeing bars
    [0, `choose_end`) only, and the metrics of trading it over `trade`. `columns` are the
    study's `UniverseBars`, `frame` its (empty) frame on their timestamps."""
    from ivybt.bars.timeline import signal_bars, split_combination
    from ivybt.studies.space import execution_with, split_exits

    exits, chosen = split_exits(strategy, chosen)
    execution = execution_with(config.execution, exits)  # the combination's own exits
    bar, params = split_combination(strategy, chosen)
    bars = signal_bars(config, frame, columns, override=bar).columns
    panel = bars.panel
    seen = panel.window(0, choose_end) if choose_end < panel.n_bars else panel
    choice = select_universe(seen, strategy, params, execution, bars.portfolio, choose,
                             periods_per_year)  # fmt: skip
    metrics = chosen_metrics(panel, choice.columns, strategy, params, execution,
                             bars.portfolio, trade, periods_per_year)  # fmt: skip
    return choice, metrics


def best_combination_universe(
    config: Any, strategy: type[Strategy], inputs: Any, chosen: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The universe a study's best combination `chosen` (bar parameters such as vol_window
    included) would choose on the study's own traded bars, and that combination's metrics on
    it: in-sample twice over (an `InSampleWarning` says so). `inputs` are `PanelInputs`."""
    import warnings

    from ivybt.errors import InSampleWarning

    check_selectable(strategy)
    choice, metrics = choose_and_measure(
        config, strategy, inputs.frame.iloc[: inputs.history_bars], inputs.columns, chosen,
        choose_end=inputs.history_bars, choose=inputs.window, trade=inputs.window,
        periods_per_year=inputs.periods_per_year,
    )  # fmt: skip
    rule = describe_rule(choice.rule, choice.by)
    warnings.warn(InSampleWarning(
        f"{', '.join(choice.symbols) or 'no symbol'} chosen by {rule} for the best combination "
        f"on the bars of this study: {IN_SAMPLE_NOTE}"
    ), stacklevel=3)  # fmt: skip
    return choice.to_record() | {
        "described": rule, "in_sample": True, "params": dict(chosen),
        "metrics": {name: _plain(metrics[name]) for name in METRIC_NAMES},
    }  # fmt: skip
