"""The account's state after its last complete bar: what `ivybt signals` reports per symbol.

The state comes from the backtest's own account kernel (`ivybt.kernels.portfolio.portfolio_nb`,
through `ivybt.engine.portfolio`'s builders), so a signal and a backtest cannot drift: one
symbol runs as a one-symbol universe, which that kernel trades exactly as the single-symbol
kernels do (tests/test_portfolio_kernel.py, tests/test_portfolio_stops.py).

With next-open fills (default) the decision of the last bar t is traded at bar t + 1's open,
which has not happened yet. The account is therefore run on the bars plus one *pending bar*
after t whose open is the last close (a symbol without a bar at t: its mark), so the kernel
itself applies the decision of bar t: blocked sides after a stop, time stops, the rebalance
trigger, the weights (normalised, capped, levered) and the new positions. Its high and low
are NaN, so no stop triggers inside it and no trailing reference moves: the state read after
it is the position held from the next open on, before anything happens inside that bar. A
position opened there has its levels from a fill at the last close (with slippage); the real
fill, at the next open, sets the real ones. With close fills the decision of bar t was traded
at its close, and the state after bar t is the answer.

Per symbol: the side held (after the pending fill), the strategy's own side at bar t (before
stops and the rebalancing schedule), the target weight of the last rebalance (0 when flat),
the stop-loss and take-profit levels and the trailing stop's level of the open position, the
bars left until its time stop decides, and since when the side is held: the bar whose
decision gave it (for an exit by a stop inside a bar, that bar). `change` says what the last
bar's decision did: enter, exit, flip or hold; `reason` why an exit happened.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ivybt._typing import Float64Array1D, Int8Array1D, Int64Array1D
from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data.panel import Panel
from ivybt.engine.portfolio import portfolio_rules, universe_arrays
from ivybt.kernels.portfolio import (  # the scratch rows of `Books`: read after the run
    _LOSS,
    _PROFIT,
    _REFERENCE,
    _WEIGHT,
    Universe,
    portfolio_nb,
    records,
    scratch,
)
from ivybt.kernels.stops import EXIT_REASONS

SIDES = {1: "long", -1: "short", 0: "flat"}
_INTRABAR = {EXIT_REASONS.index(name) for name in ("stop_loss", "take_profit", "trailing")}


@dataclass(frozen=True)
class LatestState:
    """Per symbol (arrays of n_symbols), the account after the last bar's decision.

    side : int8, the side held from the next fill on. signal : int8, the strategy's side at
    the last bar. weight : float64, signed target weight (0 when flat). stop_loss,
    take_profit, trailing_stop : float64 levels of the open position (NaN: none).
    time_stop_bars : int64, bars after the last one whose close decides the time stop (-1:
    none). since : int64, the bar index the side is held since (-1: never held). change,
    reason : what the last bar's decision did and why (module docstring).
    """

    side: Int8Array1D
    signal: Int8Array1D
    weight: Float64Array1D
    stop_loss: Float64Array1D
    take_profit: Float64Array1D
    trailing_stop: Float64Array1D
    time_stop_bars: Int64Array1D
    since: Int64Array1D
    change: tuple[str, ...]
    reason: tuple[str, ...]


def one_symbol_panel(
    symbol: str, interval: str, index: object, columns: dict[str, Float64Array1D],
    record: dict[str, object],
) -> Panel:  # fmt: skip
    """A one-symbol `Panel` of bars that are all present (one symbol's loaded bars)."""
    n = len(columns["close"])
    fields = {name: np.ascontiguousarray(np.asarray(columns[name], dtype=np.float64)
                                         .reshape(n, 1))
              for name in ("open", "high", "low", "close", "volume")}  # fmt: skip
    return Panel(
        (symbol,), interval, index,  # type: ignore[arg-type]
        **fields,
        first=np.zeros(1, dtype=np.int64),
        last=np.full(1, n - 1, dtype=np.int64),
        records=(dict(record),),
    )  # fmt: skip


def latest_state(
    panel: Panel,
    target: Int8Array1D,
    execution: ExecutionConfig,
    portfolio: PortfolioConfig,
    *,
    basis: np.ndarray | None = None,
    listed_to_end: np.ndarray | None = None,
) -> LatestState:
    """The account's state after the last bar of `panel` (module docstring).

    target : int8 (n_bars, n_symbols), each symbol's side after each bar's close
        (`ivybt.engine.portfolio.account_plan`, or one symbol's `strategy_targets`), decided
        with data up to that bar. `portfolio` and `basis` as `account_plan` returns them.
    listed_to_end : bool (n_symbols,), symbols still listed at the last bar although their
        own bars end before it (a missing bar there, not a delisting); default none.
        Symbols whose bars reach the last bar stay listed through the pending bar.
    """
    n, n_symbols = panel.n_bars, panel.n_symbols
    t = n - 1
    if listed_to_end is not None:
        last = panel.last.copy()
        extend = listed_to_end & (panel.first >= 0) & (panel.first <= t) & (last < t)
        last[extend] = t
        panel = replace(panel, last=last)
    universe = universe_arrays(panel, portfolio, execution, basis)
    rules = portfolio_rules(portfolio, execution)
    target = np.ascontiguousarray(target, dtype=np.int8)
    pending = execution.fill == "next_open"
    if pending:
        universe, target = _with_pending_bar(universe, target, t)
    b = target.shape[0]
    books = scratch(n_symbols)
    capacity = int((np.diff(target, axis=0) != 0).sum()) + 2 * n_symbols + 1
    while True:
        out = records(b, n_symbols, capacity)
        n_trades = portfolio_nb(universe, target, rules, 0, b, 1.0, books, out)
        if n_trades <= capacity:
            break
        capacity = n_trades
    trades = out.trades[:n_trades]
    side = np.sign(out.units[b - 1]).astype(np.int8)
    held = side != 0
    weight = np.where(held, books.floats[_WEIGHT], 0.0)
    nan = np.full(n_symbols, np.nan)
    stop_loss, take_profit, trailing = nan.copy(), nan.copy(), nan.copy()
    if execution.has_stops:
        stop_loss = np.where(held, books.floats[_LOSS], np.nan)
        take_profit = np.where(held, books.floats[_PROFIT], np.nan)
        if execution.trail is not None:
            level = books.floats[_REFERENCE] * (1.0 - side * execution.trail)
            trailing = np.where(held, level, np.nan)
    since = np.full(n_symbols, -1, dtype=np.int64)
    time_stop = np.full(n_symbols, -1, dtype=np.int64)
    change, reason = ["hold"] * n_symbols, [""] * n_symbols
    for s in range(n_symbols):
        mine = trades[trades["symbol"] == s]
        if len(mine) == 0:
            continue
        latest = mine[-1]  # the trade opened last: the open one, or the last closed
        if held[s]:
            entry = int(latest["entry_bar"])
            since[s] = entry - 1 if pending else entry  # the decision bar
            if execution.max_bars is not None:
                time_stop[s] = max(entry + execution.max_bars - t, 0)
            if since[s] == t:
                flipped = mine[:-1][(mine[:-1]["exit_bar"] == entry)
                                    & (mine[:-1]["side"] == -side[s])]  # fmt: skip
                change[s], reason[s] = ("flip" if len(flipped) else "enter"), "signal"
            continue
        code = int(latest["exit_reason"])
        exit_bar = int(latest["exit_bar"])
        since[s] = exit_bar if code in _INTRABAR or not pending else exit_bar - 1
        if since[s] == t:
            change[s], reason[s] = "exit", EXIT_REASONS[code]
    return LatestState(
        side=side,
        signal=np.asarray(target[t], dtype=np.int8).copy(),
        weight=weight,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing,
        time_stop_bars=time_stop,
        since=since,
        change=tuple(change),
        reason=tuple(reason),
    )


def _with_pending_bar(
    universe: Universe, target: Int8Array1D, t: int
) -> tuple[Universe, Int8Array1D]:
    """`universe` and `target` with the pending bar after bar t (module docstring): open,
    close and mark at the last mark of every symbol listed at t, high and low NaN, the ATR,
    volatility and targets of bar t repeated (never read for a decision), no scheduled
    rebalance; the symbols listed at t stay listed through it."""
    prices = universe.prices
    listed = (universe.first <= t) & (t <= universe.last)
    mark = prices[2, t].copy()
    row = np.full((prices.shape[0], 1, prices.shape[2]), np.nan)
    row[0, 0] = np.where(listed, mark, np.nan)  # open
    row[1, 0] = np.where(listed, mark, np.nan)  # close
    row[2, 0] = np.where(listed, mark, 0.0)  # mark: 0 outside the listing, as the kernel's
    if prices.shape[0] > 5:
        row[5, 0] = prices[5, t]  # the ATR known at bar t (read for the decision bar only)
    last = np.where(universe.last == t, t + 1, universe.last).astype(np.int64)
    vol = universe.vol
    if vol.shape[0] > 0:
        vol = np.ascontiguousarray(np.concatenate([vol, vol[t : t + 1]]))
    extended = universe._replace(
        prices=np.ascontiguousarray(np.concatenate([prices, row], axis=1)),
        last=np.ascontiguousarray(last),
        vol=vol,
        rebalance_at=np.ascontiguousarray(np.append(universe.rebalance_at, np.int8(0))),
    )
    pending_target = np.ascontiguousarray(np.concatenate([target, target[t : t + 1]]))
    return extended, pending_target
