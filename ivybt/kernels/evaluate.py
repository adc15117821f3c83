"""From targets to metrics in one pass: the simulation of `simulate_nb` and the reductions of
`metrics_nb` fused, with no per-bar arrays and no trade records.

This is what a grid, a search and a single backtest's metrics evaluate per combination. The
account steps (`account_step_nb`, shared with `simulate_nb`'s arithmetic) happen only on the
bars where the wanted side changes; the bars between are settled at once (`hold_nb`,
`ivybt.kernels.holding`), which is what makes a combination cost its signal scan plus O(1)
per trade. The metrics equal the per-bar account's to 1e-12 relative, the trade statistics,
total return, CAGR and exposure bit for bit (`ivybt.kernels.holding` says why). A kernel
that follows a crossover's moves (`ivybt.kernels.grid.follow_moves_metrics_nb`) calls the same
`trade_at_nb` on the same bars, so its metrics equal `target_metrics_nb`'s bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array1D
from ivybt.kernels.holding import USABLE, CloseTables, hold_returns_nb, next_trade_bar_nb
from ivybt.kernels.metrics import (
    ReturnState,
    TradeState,
    return_start_nb,
    return_step_nb,
    trade_start_nb,
    trade_step_nb,
    write_return_metrics_nb,
    write_trade_metrics_nb,
)
from ivybt.kernels.simulate import Execution, close_fill_nb, open_fill_nb, trade_pnl_nb

Position = tuple[float, float, float, int, float, float, int]
"""(cash, signed units, units, side, entry fill, entry commission, bars held so far)."""
AccountState = tuple[Position, ReturnState, TradeState]


@njit(cache=True)
def account_start_nb(initial_cash: float) -> AccountState:
    """A flat account holding `initial_cash`, before the first bar."""
    zero = np.int64(0)  # not the literal 0, for which Numba compiles every callee again
    position = (initial_cash, 0.0, 0.0, zero, 0.0, 0.0, zero)
    return position, return_start_nb(initial_cash), trade_start_nb()


@njit(cache=True)
def account_step_nb(
    state: AccountState, wanted: int, price: float, mark: float, execution: Execution
) -> AccountState:
    """One bar: trade to side `wanted` at raw `price` if it differs, then mark at `mark`.

    The same order as `simulate_nb`: close the held side, open the wanted one with what cash is
    left (not when it is <= 0), then add the bar's equity to the return accumulators.
    """
    position, returns, trades = state
    cash, units, size, side, entry_price, entry_fee, held = position
    if wanted != side:
        if side != 0:
            cash, fill, fee = close_fill_nb(price, side, abs(units), cash, execution)
            _, net, trade_return = trade_pnl_nb(side, size, entry_price, fill, entry_fee, fee)
            trades = trade_step_nb(trades, net, trade_return)
            units = 0.0
            side = np.int64(0)
        if wanted != 0 and cash > 0.0:
            cash, size, entry_price, entry_fee = open_fill_nb(price, wanted, cash, execution)
            units = wanted * size
            side = wanted
    returns = return_step_nb(returns, cash + units * mark)
    if units != 0.0:
        held += 1
    return (cash, units, size, side, entry_price, entry_fee, held), returns, trades


@njit(cache=True)
def write_account_metrics_nb(
    state: AccountState, n_bars: int, execution: Execution, periods_per_year: float,
    out_metrics: Float64Array1D,
) -> None:  # fmt: skip
    """Write every metric of an account after `n_bars` steps, in `METRIC_NAMES` order."""
    position, returns, trades = state
    out_metrics[:] = np.nan
    write_return_metrics_nb(
        returns, n_bars, position[6], execution.initial_cash, periods_per_year, out_metrics
    )
    write_trade_metrics_nb(trades, out_metrics)


@njit(cache=True, inline="always")
def hold_nb(
    state: AccountState, close: Float64Array1D, a: int, b: int, tables: CloseTables
) -> AccountState:
    """The account after bars [a, b) on which it does not trade (`hold_returns_nb`): a flat
    account's equity is its cash, so nothing moves; a held one settles the run at once."""
    position, returns, trades = state
    cash, units, size, side, entry_price, entry_fee, held = position
    if b <= a or (units == 0.0 and tables[USABLE]):
        return state
    returns = hold_returns_nb(returns, close, a, b, cash, units, tables)
    if units != 0.0:
        held += b - a
    return (cash, units, size, side, entry_price, entry_fee, held), returns, trades


@njit(cache=True, inline="always")
def trade_at_nb(
    state: AccountState, t: int, wanted: int, prices: Float64Array2D, done: int,
    execution: Execution, tables: CloseTables,
) -> AccountState:  # fmt: skip
    """Hold bars [done, t), then step bar t towards side `wanted` (`account_step_nb`), filled
    at bar t's close or open as `execution` says."""
    close = prices[1]
    price = close[t] if execution.fill_on_close else prices[0][t]
    state = hold_nb(state, close, done, t, tables)
    return account_step_nb(state, wanted, price, close[t], execution)


@njit(cache=True)
def target_metrics_nb(
    prices: Float64Array2D,
    target: Int8Array1D,
    window: Int64Array1D,
    execution: Execution,
    tables: CloseTables,
    periods_per_year: float,
    out_metrics: Float64Array1D,
) -> None:
    """Metrics of one account trading `target` on the bars [a, b) of `window` (see
    `simulate_nb` for every convention), one step per change of the wanted side.

    Parameters
    ----------
    prices : float64, shape (2+, n_bars)
        Bar open and close prices (rows 0 and 1).
    target : int8, shape (n_bars,)
        Side wanted after each bar's close, direction already applied (bars before the
        window are not read with close fills; bar a - 1 is not read either: the account
        starts flat at bar a, and with next-open fills bar a's decision fills at a + 1).
    window : int64, shape (2,)
        [a, b): the traded bars; the account starts flat with the initial cash at bar a.
    execution : Execution
        Costs, sizing, fill timing and initial cash.
    tables : CloseTables
        `close_tables_nb(prices[1])`.
    periods_per_year : float
        Bars per year, for annualising.
    out_metrics : float64, shape (N_METRICS,), written
        The metrics in `METRIC_NAMES` order: those of `simulate_nb` then `metrics_nb` on the
        window, to 1e-12 relative (bit for bit for the trade statistics, total return, CAGR
        and exposure; `ivybt.kernels.holding` says why).
    """
    a = window[0]
    b = window[1]
    lag = 0 if execution.fill_on_close else 1
    state = account_start_nb(execution.initial_cash)
    done = a
    wanted = np.int64(0)  # not the literal 0, for which Numba compiles every callee again
    t = next_trade_bar_nb(target, a + lag, b, lag, wanted)
    while t < b:
        wanted = np.int64(target[t - lag])
        state = trade_at_nb(state, t, wanted, prices, done, execution, tables)
        done = t + 1
        t = next_trade_bar_nb(target, t + 1, b, lag, wanted)
    state = hold_nb(state, prices[1], done, b, tables)
    write_account_metrics_nb(state, b - a, execution, periods_per_year, out_metrics)
