"""One pass from targets to metrics: the simulation of `simulate_nb` and the reductions of
`metrics_nb` fused, with no per-bar arrays and no trade records.

This is what a grid or a search evaluates per combination. It performs the same arithmetic in
the same order as `simulate_nb` followed by `metrics_nb` (shared helpers), so its metrics are
bit-identical to a single backtest's; a test checks that for every strategy.

The per-bar work is one `account_step_nb` on an `AccountState` tuple, so a kernel that makes
its signal bar by bar (`ivybt.kernels.grid.follow_sign_metrics_nb`) feeds the same step without
writing a target array.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Int8Array1D
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
    position = (initial_cash, 0.0, 0.0, 0, 0.0, 0.0, 0)
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
            side = 0
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


@njit(cache=True)
def simulate_metrics_nb(
    open_: Float64Array1D,
    close: Float64Array1D,
    target: Int8Array1D,
    execution: Execution,
    periods_per_year: float,
    out_metrics: Float64Array1D,
) -> None:
    """Metrics of one account trading `target` (see `simulate_nb` for every convention).

    Parameters
    ----------
    open_, close : float64, shape (n_bars,)
        Bar open and close prices of the traded window.
    target : int8, shape (n_bars,)
        Side wanted after each bar's close, direction already applied.
    execution : Execution
        Costs, sizing, fill timing and initial cash.
    periods_per_year : float
        Bars per year, for annualising.
    out_metrics : float64, shape (N_METRICS,), written
        The metrics in `METRIC_NAMES` order; equals `metrics_nb` after `simulate_nb`.
    """
    n_bars = close.shape[0]
    state = account_start_nb(execution.initial_cash)
    for t in range(n_bars):
        side = state[0][3]
        wanted = side
        price = 0.0
        if execution.fill_on_close:
            wanted = target[t]
            price = close[t]
        elif t >= 1:
            wanted = target[t - 1]
            price = open_[t]
        state = account_step_nb(state, wanted, price, close[t], execution)
    write_account_metrics_nb(state, n_bars, execution, periods_per_year, out_metrics)
