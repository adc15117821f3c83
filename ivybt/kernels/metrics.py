"""Performance metrics reduced from one simulated account in a single pass.

Every definition is written once in docs/metrics.md; this module is its implementation. Returns
are simple fractions per bar, annualised with an explicit `periods_per_year`; a ratio whose
denominator is zero (no variance, no drawdown, no losing trade) is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, RecordArray1D

METRIC_NAMES: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "n_trades",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "exposure",
    "gross_profit",
    "gross_loss",
)
"""Order of the values `metrics_nb` returns (positions are fixed: new metrics go at the end)."""

N_METRICS = len(METRIC_NAMES)
_NEW_LOW_SLACK = 1.0 + 1e-9  # margin over rounding for the multiply-only drawdown pre-test


ReturnState = tuple[float, float, float, float, float, float]
"""(previous equity, sum of returns, sum of squared returns, downside sum of squares, peak,
worst drawdown) after some bars."""
TradeState = tuple[int, int, int, float, float, float, float]
"""(closed, wins, losses, gross profit, gross loss, sum of win returns, sum of loss returns)."""


@njit(cache=True)
def return_start_nb(initial_cash: float) -> ReturnState:
    """The return accumulators before the first bar."""
    return initial_cash, 0.0, 0.0, 0.0, initial_cash, 0.0


@njit(cache=True)
def return_step_nb(state: ReturnState, value: float) -> ReturnState:
    """Add one bar's equity `value`: the return's sum and sum of squares, the downside sum
    of squares, the running peak and the worst drawdown.

    Plain sums keep every division off the loop-carried chain (Welford's update divides on
    every bar), and the two divisions left are skipped where their result is known: a flat
    bar (return exactly 0), a new high (drawdown exactly 0), or a bar a multiplication shows
    to be well above the worst drawdown so far. Per-bar returns are small and centred near
    zero, so the variance from these sums loses nothing measurable: tests check Sharpe and
    volatility against pandas' two-pass formulas to 1e-9 relative.
    """
    previous, total, squares, downside, peak, worst = state
    if value == previous:  # a flat bar: its return is exactly 0 and nothing else moves
        return state
    ret = value / previous - 1.0
    total += ret
    squares += ret * ret
    loss = min(ret, 0.0)  # branch-free: adding 0.0 leaves the sum as it was, bit for bit
    downside += loss * loss
    if value >= peak:  # at a new high the drawdown is exactly 0
        peak = value
    elif value < peak * (1.0 + worst) * _NEW_LOW_SLACK:  # cheap test first; no false negative
        drawdown = value / peak - 1.0
        if drawdown < worst:
            worst = drawdown
    return value, total, squares, downside, peak, worst


@njit(cache=True)
def write_return_metrics_nb(
    state: ReturnState, n_bars: int, held: int, initial_cash: float, periods_per_year: float,
    out: Float64Array1D,
) -> None:  # fmt: skip
    """Write total_return .. calmar (out[0:7]) and exposure (out[12]) from the accumulators."""
    final, total, squares, downside, _, worst = state
    growth = final / initial_cash
    annual = math.sqrt(periods_per_year)
    mean = total / n_bars
    variance = max(squares - total * mean, 0.0) / (n_bars - 1) if n_bars > 1 else np.nan
    std = math.sqrt(variance)
    downside_dev = math.sqrt(downside / n_bars)
    cagr = growth ** (periods_per_year / n_bars) - 1.0 if growth > 0.0 else -1.0
    out[0] = growth - 1.0
    out[1] = cagr
    out[2] = std * annual
    out[3] = mean / std * annual if std > 0.0 else np.nan
    out[4] = mean / downside_dev * annual if downside_dev > 0.0 else np.nan
    out[5] = worst
    out[6] = cagr / -worst if worst < 0.0 else np.nan
    out[12] = held / n_bars


@njit(cache=True)
def return_metrics_nb(
    equity: Float64Array1D, units: Float64Array1D, initial_cash: float, periods_per_year: float,
    out: Float64Array1D,
) -> None:  # fmt: skip
    """Write the return-based metrics of an equity curve into `out[0:7]` and `out[12]`.

    Parameters
    ----------
    equity : float64, shape (n_bars,)
        Account value at each bar's close; the return of bar 0 is measured from `initial_cash`.
    units : float64, shape (n_bars,)
        Units held at each close; exposure is the fraction of bars with units != 0.
    initial_cash : float
        Equity before the first bar, > 0.
    periods_per_year : float
        Bars per year used to annualise (252 for daily equity bars, 365 for daily crypto...).
    out : float64, shape (N_METRICS,), written
        total_return, cagr, volatility, sharpe, sortino, max_drawdown, calmar, exposure.

    Notes
    -----
    One pass of sums: mean and sample variance (ddof = 1) of per-bar simple returns;
    sharpe = mean / std x sqrt(periods_per_year) with rf = 0; sortino = mean / sqrt(mean(
    min(r, 0)^2)) x sqrt(periods_per_year) over all bars; max_drawdown = min(equity / peak - 1)
    <= 0 with the peak starting at initial_cash; cagr = (final / initial)^(periods_per_year /
    n_bars) - 1 (-1 when final <= 0); calmar = cagr / |max_drawdown|.
    """
    state = return_start_nb(initial_cash)
    held = 0
    for t in range(equity.shape[0]):
        state = return_step_nb(state, equity[t])
        if units[t] != 0.0:
            held += 1
    write_return_metrics_nb(state, equity.shape[0], held, initial_cash, periods_per_year, out)


@njit(cache=True)
def trade_start_nb() -> TradeState:
    """The trade accumulators before the first closed trade."""
    zero = np.int64(0)  # not the literal 0, for which Numba compiles every callee again
    return zero, zero, zero, 0.0, 0.0, 0.0, 0.0


@njit(cache=True)
def trade_step_nb(state: TradeState, net: float, trade_return: float) -> TradeState:
    """Add one closed trade with net PnL `net` and return `trade_return`."""
    closed, wins, losses, gross_profit, gross_loss, win_returns, loss_returns = state
    closed += 1
    if net > 0.0:
        wins += 1
        gross_profit += net
        win_returns += trade_return
    elif net < 0.0:
        losses += 1
        gross_loss += net
        loss_returns += trade_return
    return closed, wins, losses, gross_profit, gross_loss, win_returns, loss_returns


@njit(cache=True)
def write_trade_metrics_nb(state: TradeState, out: Float64Array1D) -> None:
    """Write n_trades .. avg_loss (out[7:12]) and gross profit/loss (out[13:15])."""
    closed, wins, losses, gross_profit, gross_loss, win_returns, loss_returns = state
    out[7] = closed
    out[8] = wins / closed if closed > 0 else np.nan
    out[9] = gross_profit / -gross_loss if losses > 0 else np.nan
    out[10] = win_returns / wins if wins > 0 else np.nan
    out[11] = loss_returns / losses if losses > 0 else np.nan
    out[13] = gross_profit
    out[14] = gross_loss


@njit(cache=True)
def trade_metrics_nb(trades: RecordArray1D, n_trades: int, out: Float64Array1D) -> None:
    """Write the closed-trade statistics of `trades[:n_trades]` into `out[7:12]` and `out[13:15]`.

    Open trades are skipped. A win has net_pnl > 0, a loss net_pnl < 0 (a zero trade counts in
    n_trades only). win_rate = wins / n_trades; profit_factor = gross_profit / -gross_loss;
    avg_win / avg_loss = mean `trade_return` of wins / losses (fractions of entry notional);
    gross_profit = sum of winning net PnL, gross_loss = sum of losing net PnL (<= 0), currency.
    """
    state = trade_start_nb()
    for k in range(n_trades):
        record = trades[k]
        if not record["is_open"]:
            state = trade_step_nb(state, record["net_pnl"], record["trade_return"])
    write_trade_metrics_nb(state, out)


@njit(cache=True)
def metrics_nb(
    equity: Float64Array1D, units: Float64Array1D, trades: RecordArray1D, n_trades: int,
    initial_cash: float, periods_per_year: float,
) -> Float64Array1D:  # fmt: skip
    """All metrics of one simulated account, in `METRIC_NAMES` order (float64, N_METRICS,)."""
    out = np.full(N_METRICS, np.nan)
    return_metrics_nb(equity, units, initial_cash, periods_per_year, out)
    trade_metrics_nb(trades, n_trades, out)
    return out
