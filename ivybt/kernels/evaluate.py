"""One pass from targets to metrics: the simulation of `simulate_nb` and the reductions of
`metrics_nb` fused, with no per-bar arrays and no trade records.

This is what a grid or a search evaluates per combination. It performs the same arithmetic in
the same order as `simulate_nb` followed by `metrics_nb` (shared helpers), so its metrics are
bit-identical to a single backtest's; a test checks that for every strategy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Int8Array1D
from ivybt.kernels.metrics import (
    return_start_nb,
    return_step_nb,
    trade_start_nb,
    trade_step_nb,
    write_return_metrics_nb,
    write_trade_metrics_nb,
)
from ivybt.kernels.simulate import Execution, close_fill_nb, open_fill_nb, trade_pnl_nb


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
    cash = execution.initial_cash
    units = 0.0
    size = 0.0
    side = 0
    entry_price = 0.0
    entry_fee = 0.0
    held = 0
    returns = return_start_nb(execution.initial_cash)
    trades = trade_start_nb()
    for t in range(n_bars):
        wanted = side
        price = 0.0
        if execution.fill_on_close:
            wanted = target[t]
            price = close[t]
        elif t >= 1:
            wanted = target[t - 1]
            price = open_[t]
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
        returns = return_step_nb(returns, cash + units * close[t])
        if units != 0.0:
            held += 1
    out_metrics[:] = np.nan
    write_return_metrics_nb(
        returns, n_bars, held, execution.initial_cash, periods_per_year, out_metrics
    )
    write_trade_metrics_nb(trades, out_metrics)
