"""One strategy on a universe, as arrays: per-symbol signals -> union targets -> one account.

The portfolio twin of `ivybt.engine.simulation`: each symbol runs the strategy's signal on its
own bars (the same kernels as one symbol), its sides are put on the union bars
(`ivybt.kernels.portfolio_grid.expand_symbol_nb`), and `ivybt.kernels.portfolio.portfolio_nb`
trades them in one account under the rules of docs/portfolio.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array2D
from ivybt.config import DIRECTION_CODES, ExecutionConfig, PortfolioConfig
from ivybt.data.panel import Panel
from ivybt.engine.simulation import strategy_targets
from ivybt.engine.tables import indicator_table
from ivybt.errors import ConfigError
from ivybt.kernels.cross_section import rank_sides_nb, score_strength_nb
from ivybt.kernels.cross_section_grid import Selection, sides_in_direction_nb
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.kernels.portfolio import (
    EQUAL,
    FIXED,
    INVERSE_VOL,
    SCORE,
    PortfolioRules,
    Universe,
    portfolio_nb,
    records,
    scratch,
)
from ivybt.kernels.portfolio_grid import SymbolTables, expand_symbol_nb
from ivybt.strategies.base import Indicator, ParamValue, Strategy, signal_kernel_errors
from ivybt.strategies.cross_sectional import SELECTIONS, is_cross_sectional

WEIGHTING_CODES = {"equal": EQUAL, "fixed": FIXED, "inverse_vol": INVERSE_VOL, "score": SCORE}
_PERIODS = {"daily": "D", "weekly": "W", "monthly": "M"}


@dataclass(frozen=True)
class UniverseBars:
    """A universe's bars with its account's rules: what a study takes where it takes one
    symbol's columns (`ivybt.studies.grid` evaluates either). `bars["close"]` is the
    (n_bars, n_symbols) close, so `len(bars["close"])` is the number of union bars."""

    panel: Panel
    portfolio: PortfolioConfig

    def __getitem__(self, name: str) -> Float64Array2D:
        return getattr(self.panel, name)  # type: ignore[no-any-return]

    @property
    def n_bars(self) -> int:
        return self.panel.n_bars

    @property
    def memory_bars(self) -> int:
        """Bars the tables and buffers of a study scale with: every symbol's own bars."""
        return int(np.isfinite(self.panel.close).sum())

    def with_vol_window(self, window: int) -> UniverseBars:
        """These bars with the inverse-volatility window `window` (a study's `vol_window`)."""
        return UniverseBars(self.panel, self.portfolio.model_copy(update={"vol_window": window}))

    def upto(self, end: int) -> UniverseBars:
        """The bars [0, end): what exists at the close of bar end - 1."""
        return UniverseBars(self.panel.window(0, end), self.portfolio)


def bars_upto(
    columns: Mapping[str, Float64Array1D] | UniverseBars, end: int
) -> Mapping[str, Float64Array1D] | UniverseBars:
    """One symbol's columns, or a universe's bars, cut to the bars [0, end)."""
    if isinstance(columns, UniverseBars):
        return columns.upto(end)
    return {name: values[:end] for name, values in columns.items()}


@dataclass(frozen=True)
class PortfolioSimulation:
    """Arrays of one simulated portfolio over the union bars `window` of a panel.

    target : int8 (n_window, n_symbols), the side each symbol wanted after each bar's close.
    equity, traded : float64 (n_window,), equity at each close and notional traded at each bar.
    units : float64 (n_window, n_symbols), signed units held at each close.
    trades : PORTFOLIO_TRADE_DTYPE, every trade (bars relative to the window).
    """

    window: slice
    target: Int8Array1D
    equity: Float64Array1D
    units: Float64Array2D
    traded: Float64Array1D
    trades: np.ndarray
    metrics: dict[str, float]


def portfolio_rules(portfolio: PortfolioConfig, execution: ExecutionConfig) -> PortfolioRules:
    """The kernel's view of the portfolio and execution settings."""
    return PortfolioRules(
        weighting=WEIGHTING_CODES[portfolio.weights],
        size=float(execution.size),
        max_leverage=float(portfolio.max_leverage),
        max_weight=float(portfolio.max_weight) if portfolio.max_weight is not None else np.inf,
        band=float(portfolio.band),
        scheduled=portfolio.rebalance != "signal",
        fill_on_close=execution.fill == "close",
        initial_cash=float(execution.initial_cash),
        stop_loss=float(execution.sl or 0.0),
        take_profit=float(execution.tp or 0.0),
        trailing=float(execution.trail or 0.0),
        stop_atr=float(execution.sl_atr or 0.0),
        max_bars=int(execution.max_bars or 0),
    )


def universe_arrays(
    panel: Panel, portfolio: PortfolioConfig, execution: ExecutionConfig,
    basis: Float64Array2D | None = None, *, varied_exits: Sequence[str] = (),
) -> Universe:  # fmt: skip
    """The kernel's view of `panel` with the per-symbol settings of `portfolio`; `basis` is
    the score strength of "score" weights (`account_plan`; an empty array in a grid, whose
    kernel writes each combination's own).

    Commission and slippage come from the portfolio's per-symbol mappings, else the execution
    section's rates; lot sizes default to 0 (fractional units). Inverse-volatility weights use
    the sample standard deviation (ddof 1) of the last `vol_window` close-to-close returns of
    the symbol's own bars, known at the close of the latest of them. With stops the prices
    add the high, the low and the ATR (`stop_rows`): the execution's, or those a study varies
    per combination (`varied_exits`, `ParamSpace.exit_names`: `sl_atr` among them gives the
    ATR row of `atr_length` even when the execution has no `sl_atr`).
    """
    symbols = panel.symbols
    _check_known(portfolio, symbols)
    mark = np.nan_to_num(panel.mark, nan=0.0)  # the kernel's mark: 0 outside the listing
    rows = [panel.open, panel.close, mark]
    if execution.has_stops or varied_exits:
        rows.extend(stop_rows(panel, execution, with_atr="sl_atr" in varied_exits))
    prices = np.ascontiguousarray(np.stack(rows))
    per = {
        "fee": (portfolio.commission, execution.commission),
        "slip": (portfolio.slippage, execution.slippage),
        "lot": (portfolio.lot_size, 0.0),
        "fixed": (portfolio.fixed_weights, 0.0),
    }
    arrays = {
        name: np.array([float(mapping.get(s, default)) for s in symbols], dtype=np.float64)
        for name, (mapping, default) in per.items()
    }
    if portfolio.weights == "score":
        if basis is None:
            raise ValueError("score weights need the strategy's score strength (account_plan)")
        vol = np.ascontiguousarray(basis, dtype=np.float64)
    elif portfolio.weights == "inverse_vol":
        vol = rolling_volatility(panel, portfolio.vol_window)
    else:
        vol = np.zeros((0, 0), dtype=np.float64)
    return Universe(
        prices=prices,
        first=np.ascontiguousarray(panel.first, dtype=np.int64),
        last=np.ascontiguousarray(panel.last, dtype=np.int64),
        vol=vol,
        rebalance_at=rebalance_flags(panel.index, portfolio.rebalance),
        **arrays,
    )


def stop_rows(
    panel: Panel, execution: ExecutionConfig, *, with_atr: bool = False
) -> list[Float64Array2D]:
    """The stop kernel's extra rows of a universe (`ivybt.kernels.portfolio.Universe`),
    float64 (n_bars, n_symbols) each: the high, the low (NaN where a symbol has no bar) and
    the ATR(`atr_length`, Wilder) of each symbol over its own bars, as
    `ivybt.engine.simulation.stop_bars` computes it for one symbol, known at each of its
    closes and carried over its missing bars inside the listing (NaN outside it, and
    everywhere when `sl_atr` is off, unless `with_atr`: a study that varies `sl_atr`)."""
    atr_row = np.full((panel.n_bars, panel.n_symbols), np.nan)
    if execution.sl_atr is not None or with_atr:
        from ivybt.indicators.volatility import atr

        for s in range(panel.n_symbols):
            rows = panel.bars_of(s)
            if len(rows) == 0:
                continue
            own = panel.columns(s)
            values = np.asarray(atr(own["high"], own["low"], own["close"],
                                    window=execution.atr_length), dtype=np.float64)  # fmt: skip
            spread = np.searchsorted(rows, np.arange(rows[0], rows[-1] + 1), side="right") - 1
            atr_row[rows[0] : rows[-1] + 1, s] = values[spread]
    return [panel.high, panel.low, atr_row]


def _check_known(portfolio: PortfolioConfig, symbols: Sequence[str]) -> None:
    """ConfigError when a per-symbol mapping names a symbol outside the universe, or fixed
    weights leave one out."""
    for field in ("fixed_weights", "lot_size", "commission", "slippage"):
        unknown = sorted(set(getattr(portfolio, field)) - set(symbols))
        if unknown:
            raise ConfigError(
                f"portfolio.{field} names {', '.join(unknown)}, not in the universe "
                f"({', '.join(symbols)}); fix the symbol or drop it"
            )
    if portfolio.weights == "fixed":
        missing = [s for s in symbols if s not in portfolio.fixed_weights]
        if missing:
            raise ConfigError(
                f"portfolio.fixed_weights has no weight for {', '.join(missing)}; give every "
                "symbol of the universe a weight (0 to leave one out)"
            )


def rolling_volatility(panel: Panel, window: int) -> Float64Array2D:
    """float64 (n_bars, n_symbols): the standard deviation (ddof 1) of each symbol's last
    `window` close-to-close returns over its own bars, carried over the bars it misses; NaN
    before `window` returns exist and outside the listing."""
    out = np.full((panel.n_bars, panel.n_symbols), np.nan)
    for s in range(panel.n_symbols):
        rows = panel.bars_of(s)
        if len(rows) == 0:
            continue
        close = pd.Series(panel.close[rows, s])
        vol = close.pct_change().rolling(window, min_periods=window).std(ddof=1).to_numpy()
        spread = np.searchsorted(rows, np.arange(rows[0], rows[-1] + 1), side="right") - 1
        out[rows[0] : rows[-1] + 1, s] = vol[spread]
    return np.ascontiguousarray(out)


def rebalance_flags(index: pd.DatetimeIndex, rebalance: str) -> Int8Array1D:
    """int8 (n_bars,): 1 at the first bar of each day, week or month, or at every N-th bar
    from the first for "<N>bars" (the decision bars of a schedule), 0 elsewhere; all 0 for
    "signal". Causal: a bar's flag compares its own timestamp with the previous bar's."""
    flags = np.zeros(len(index), dtype=np.int8)
    if rebalance == "signal" or len(index) == 0:
        return flags
    if rebalance.endswith("bars"):  # every N union bars from the first: 0, N, 2N, ...
        flags[:: int(rebalance.removesuffix("bars"))] = 1
        return flags
    naive = index.tz_localize(None) if index.tz is not None else index
    periods = naive.to_period(_PERIODS[rebalance]).asi8
    flags[0] = 1
    flags[1:] = periods[1:] != periods[:-1]
    return flags


def panel_targets(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue], direction: str,
    rebalance: str = "signal",
) -> Int8Array1D:  # fmt: skip
    """int8 (n_bars, n_symbols): each symbol's side after each union bar's close, from the
    strategy's signal on its own bars (`strategy_targets`), 0 outside its listing; for a
    cross-sectional strategy, from its ranks at the selection bars of `rebalance`
    (`cross_section_targets`)."""
    if is_cross_sectional(strategy):
        return cross_section_targets(panel, strategy, params, direction, rebalance)
    target = np.zeros((panel.n_bars, panel.n_symbols), dtype=np.int8)
    for s in range(panel.n_symbols):
        rows = panel.bars_of(s)
        if len(rows) == 0:
            continue
        own = strategy_targets(panel.columns(s), strategy, params, direction)
        expand_symbol_nb(own, rows, s, 0, target)  # the direction is applied already
    return target


def cross_section_targets(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue], direction: str,
    rebalance: str,
) -> Int8Array1D:  # fmt: skip
    """int8 (n_bars, n_symbols): a cross-sectional strategy's sides: its score kernel on the
    panel's closes (carried over gaps, NaN outside a listing), ranked at each selection bar
    (`rank_sides_nb`), `direction` applied. The selection bars are `rebalance`'s schedule,
    or the strategy's own `schedule` when the portfolio rebalances on a signal."""
    return _cross_section_sides(panel, strategy, params, direction, rebalance)[2]


def _cross_section_sides(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue], direction: str,
    rebalance: str,
) -> tuple[Float64Array2D, Selection, Int8Array1D]:  # fmt: skip
    """(scores, selection, sides) of `cross_section_targets`."""
    selection = cross_section_selection(panel, strategy, rebalance, -1)
    scores = _scores(panel, strategy, params, selection.at)
    target = np.empty(scores.shape, dtype=np.int8)
    rank_sides_nb(scores, selection.at, np.ascontiguousarray(panel.first, dtype=np.int64),
                  np.ascontiguousarray(panel.last, dtype=np.int64), int(params["k"]),
                  selection.mode, target)  # fmt: skip
    sides_in_direction_nb(target, DIRECTION_CODES[direction])  # as the grid kernel does
    return scores, selection, target


def check_weighting(strategy: type[Strategy], portfolio: PortfolioConfig) -> PortfolioConfig:
    """The portfolio settings `strategy` trades with: "score" weights need a cross-sectional
    strategy (ConfigError otherwise) and re-weight at every selection bar, so a "signal"
    rebalance becomes the strategy's own schedule."""
    if portfolio.weights != "score":
        return portfolio
    if not is_cross_sectional(strategy):
        raise ConfigError(
            f"--weights score weighs symbols by a cross-sectional strategy's scores; "
            f"{strategy.name} decides per symbol and has none: use equal, fixed or inverse_vol"
        )
    if portfolio.rebalance == "signal":
        schedule = strategy.schedule  # type: ignore[attr-defined]
        return portfolio.model_copy(update={"rebalance": schedule})
    return portfolio


def account_plan(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue],
    direction: str, portfolio: PortfolioConfig,
) -> tuple[Int8Array1D, PortfolioConfig, Float64Array2D | None]:  # fmt: skip
    """What the account trades: the sides (`panel_targets`), the portfolio settings to trade
    them with (`check_weighting`) and, for "score" weights, the score strength
    (`score_strength_nb`: the weights' basis), else None."""
    portfolio = check_weighting(strategy, portfolio)
    if portfolio.weights != "score":
        return (
            panel_targets(panel, strategy, params, direction, portfolio.rebalance),
            portfolio,
            None,
        )
    scores, selection, target = _cross_section_sides(panel, strategy, params, direction,
                                                     portfolio.rebalance)  # fmt: skip
    strength = np.empty(scores.shape, dtype=np.float64)
    score_strength_nb(scores, selection.at, target,
                      np.ascontiguousarray(panel.first, dtype=np.int64),
                      np.ascontiguousarray(panel.last, dtype=np.int64), strength)  # fmt: skip
    return target, portfolio, strength


def cross_section_selection(
    panel: Panel, strategy: type[Strategy], rebalance: str, code: int
) -> Selection:
    """How a cross-sectional strategy's scores become sides on `panel`: its `k` column,
    selection mode and selection bars (`rebalance`'s schedule, or the strategy's own when
    the portfolio rebalances on a signal); `code` is its score kernel's `SCORE_CODES` value."""
    schedule = strategy.schedule if rebalance == "signal" else rebalance  # type: ignore[attr-defined]
    return Selection(
        code=code,
        k_column=strategy.param_names().index("k"),
        mode=SELECTIONS[strategy.selection],  # type: ignore[attr-defined]
        at=rebalance_flags(panel.index, schedule),
        corr=np.zeros((0, 0, 0)),
    )


def cross_section_scores(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue], rebalance: str
) -> Float64Array2D:
    """float64 (n_bars, n_symbols): a cross-sectional strategy's score of each symbol after
    each union bar's close (its score kernel on `Panel.mark`, given the selection bars of
    `rebalance`), NaN where it has none."""
    at = cross_section_selection(panel, strategy, rebalance, -1).at
    return _scores(panel, strategy, params, at)


def _scores(
    panel: Panel, strategy: type[Strategy], params: Mapping[str, ParamValue], at: Int8Array1D
) -> Float64Array2D:
    """`cross_section_scores` given the selection bars `at`."""
    strategy.check_universe(params, panel.symbols)  # type: ignore[attr-defined]
    close = np.ascontiguousarray(panel.mark, dtype=np.float64)
    scores = np.full_like(close, np.nan)
    values = np.array([float(params[name]) for name in strategy.param_names()])
    with signal_kernel_errors(strategy):
        strategy.score_kernel(close, values, at, scores)  # type: ignore[attr-defined]
    return scores


def symbol_tables(panel: Panel, indicators: Sequence[Indicator]) -> tuple[SymbolTables, list[int]]:
    """Every symbol's indicator table over its own bars, for the same `indicators`, and each
    indicator's row in them (the same row in every symbol's table). The tables are written
    into one array allocated once (memory: it, plus one symbol's table while it is built)."""
    own_bars = [panel.bars_of(s) for s in range(panel.n_symbols)]
    bars_at = np.zeros(panel.n_symbols + 1, dtype=np.int64)
    bars_at[1:] = np.cumsum([len(own) for own in own_bars])
    rows: dict[Indicator, int] = {}
    n_rows = 0
    values = np.empty(0, dtype=np.float64)
    table_at = np.zeros(panel.n_symbols, dtype=np.int64)
    for s, own in enumerate(own_bars):
        if len(own) == 0:
            continue
        table, found = indicator_table(panel.columns(s), list(indicators))
        if not rows:  # the first symbol's table sizes them all
            rows, n_rows = dict(found), table.shape[0]
            table_at = n_rows * bars_at[:-1]
            values = np.empty(n_rows * int(bars_at[-1]), dtype=np.float64)
        elif found != rows:  # the builder orders rows by kind: the same for every symbol
            raise AssertionError("indicator rows differ between symbols")
        values[table_at[s] : table_at[s] + table.size] = table.reshape(-1)
        del table
    tables = SymbolTables(
        values=values,
        table_at=np.ascontiguousarray(table_at, dtype=np.int64),
        n_rows=n_rows,
        bar_of=np.ascontiguousarray(
            np.concatenate(own_bars) if own_bars else np.zeros(0), dtype=np.int64
        ),
        bars_at=bars_at,
    )
    return tables, [rows[indicator] for indicator in indicators]


def simulate_portfolio(
    panel: Panel,
    strategy: type[Strategy],
    params: Mapping[str, ParamValue],
    execution: ExecutionConfig,
    portfolio: PortfolioConfig,
    *,
    window: slice | None = None,
    periods_per_year: float,
) -> PortfolioSimulation:
    """Run `strategy` on every symbol of `panel` and trade them in one account over `window`
    (union bars; default all). Signals see every bar of the panel up to each decision."""
    window = window or slice(0, panel.n_bars)
    a, b = window.indices(panel.n_bars)[:2]
    target, portfolio, basis = account_plan(panel, strategy, params, execution.direction,
                                            portfolio)  # fmt: skip
    return simulate_targets(panel, target, execution, portfolio, a, b, periods_per_year, basis)


def simulate_targets(
    panel: Panel, target: Int8Array1D, execution: ExecutionConfig, portfolio: PortfolioConfig,
    a: int, b: int, periods_per_year: float, basis: Float64Array2D | None = None,
) -> PortfolioSimulation:  # fmt: skip
    """Trade `target` (int8 (n_bars, n_symbols)) on bars [a, b) and keep every array
    (`basis`: the score strength of "score" weights, `account_plan`)."""
    universe = universe_arrays(panel, portfolio, execution, basis)
    rules = portfolio_rules(portfolio, execution)
    books = scratch(panel.n_symbols)
    capacity = _trade_room(target[a:b])
    while True:
        out = records(b - a, panel.n_symbols, capacity)
        n_trades = portfolio_nb(universe, target, rules, a, b, periods_per_year, books, out)
        if n_trades <= capacity:
            break
        capacity = n_trades  # deterministic: the second run records every trade
    values = dict(zip(METRIC_NAMES, (float(value) for value in out.metrics), strict=True))
    return PortfolioSimulation(
        slice(a, b), target[a:b].copy(), out.equity, out.units, out.traded,
        out.trades[:n_trades].copy(), values,
    )  # fmt: skip


def _trade_room(target: Int8Array1D) -> int:
    """A first guess of the trades `target` makes: its entries per symbol, plus one each."""
    if target.shape[0] == 0:
        return 1
    changes = (target[1:] != target[:-1]) & (target[1:] != 0)
    return int(changes.sum() + (target[0] != 0).sum()) + target.shape[1] + 1


def grid_slots(slot_rows: Sequence[int], slot_ids: Int64Array2D) -> Int64Array2D:
    """Each combination's rows in the symbols' tables from its distinct-indicator ids."""
    return np.ascontiguousarray(np.asarray(slot_rows, dtype=np.int64)[slot_ids])


def equal_weight_buy_and_hold(panel: Panel, window: slice, initial_cash: float) -> np.ndarray:
    """Equity of the equal-weight buy-and-hold of the universe over `window`, no costs.

    Each symbol listed in the window gets 1 / n of the initial cash; its share waits in cash
    until the symbol's first close in the window, is invested there, and returns to cash at
    its last close (a delisting)."""
    close = panel.close[window]
    mark = panel.mark[window]
    n_bars, n_symbols = close.shape
    listed = [s for s in range(n_symbols) if np.isfinite(close[:, s]).any()]
    if not listed:
        return np.full(n_bars, initial_cash)
    share = initial_cash / len(listed)
    total = np.zeros(n_bars)
    for s in listed:
        rows = np.flatnonzero(np.isfinite(close[:, s]))
        first, last = rows[0], rows[-1]
        sleeve = np.full(n_bars, share)
        sleeve[first : last + 1] = share * mark[first : last + 1, s] / close[first, s]
        sleeve[last + 1 :] = share * close[last, s] / close[first, s]
        total += sleeve
    return total
