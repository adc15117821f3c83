"""Target positions -> fills with costs -> equity, held units and round-trip trades.

One account, one instrument: the single-symbol case of the portfolio simulation that later
issues extend to bars x symbols with a shared account. Conventions (also in each docstring):

- A target is the side wanted after bar t's close: -1 short, 0 flat, +1 long (int8).
- Fill "next_open" (default): a target decided with bar t's data fills at bar t+1's open; the
  last bar's target never fills. Fill "close": it fills at bar t's own close (vectorbt's default,
  for comparisons; it assumes you can trade at the price that made the decision).
- Costs: slippage moves the fill price against the trader (buy at price x (1 + slippage), sell at
  price x (1 - slippage)); commission is `fee_rate` x traded notional at the fill price, per side.
- Sizing: a new position's notional plus its commission equals `size` x equity (equity = cash
  after closing the previous position), so `size=1` is all-in with nothing left to pay; units are
  fractional. A flip (long -> short) closes, then opens at the same fill price.
- Equity is marked to market at each bar's close. An open position at the end is marked at the
  last close and recorded as an open trade (no exit fee, `is_open=True`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ivybt._typing import Float64Array1D, Int8Array1D, RecordArray1D

TRADE_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("side", np.int64),
        ("units", np.float64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("entry_fee", np.float64),
        ("exit_fee", np.float64),
        ("gross_pnl", np.float64),
        ("net_pnl", np.float64),
        ("trade_return", np.float64),
        ("is_open", np.bool_),
        ("exit_reason", np.int8),
    ]
)
"""One round trip. Bars are indices into the simulated arrays; prices are fill prices with
slippage; fees and PnL are in the account currency; `trade_return` = net_pnl / entry notional
(units x entry_price); `exit_reason` a code of `ivybt.kernels.stops.EXIT_REASONS` (0: the
signal, also for an open trade)."""


class Stops(NamedTuple):
    """Exits next to the signal (`ivybt.kernels.stops`); 0 switches one off.

    stop_loss, take_profit, trailing : fractions of the entry fill (0.05 = 5 %).
    stop_atr : the stop-loss distance in multiples of the ATR at entry.
    max_bars : bars a position may be held (time stop), counted from its entry bar.
    """

    stop_loss: float
    take_profit: float
    trailing: float
    stop_atr: float
    max_bars: int


NO_STOPS = Stops(0.0, 0.0, 0.0, 0.0, 0)


class Execution(NamedTuple):
    """Execution settings as a Numba-friendly tuple (the wrapper builds it from the config).

    fee_rate, slippage_rate : fractions of notional per side (0.001 = 0.1 %).
    size : fraction of equity committed to a position, > 0.
    fill_on_close : True fills at the signal bar's close, False at the next bar's open.
    initial_cash : starting equity in the account currency, > 0.
    stop_loss, take_profit, trailing, stop_atr, max_bars : the exits, the fields of `Stops`
        (`stops_of_nb`; 0: off). `simulate_nb` ignores them (`ivybt.kernels.stops` trades
        them); the grid kernels read them here. Scalars, not a nested `Stops`: a parallel
        loop cannot take a tuple inside a tuple as an argument.
    """

    fee_rate: float
    slippage_rate: float
    size: float
    fill_on_close: bool
    initial_cash: float
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing: float = 0.0
    stop_atr: float = 0.0
    max_bars: int = 0


@njit(cache=True)
def stops_of_nb(execution: Execution) -> Stops:
    """The exits `execution` carries, as `Stops`."""
    return Stops(execution.stop_loss, execution.take_profit, execution.trailing,
                 execution.stop_atr, execution.max_bars)  # fmt: skip


@njit(cache=True)
def count_entries_nb(target: Int8Array1D) -> int:
    """Upper bound on the number of round trips `simulate_nb` can record for `target`.

    Counts bars whose target is non-zero and differs from the previous bar's (the first bar
    counts if non-zero): each entry opens at most one trade. Used to size `out_trades`.
    """
    count = 0
    previous = 0
    for t in range(target.shape[0]):
        side = target[t]
        if side != 0 and side != previous:
            count += 1
        previous = side
    return count


@njit(cache=True)
def restrict_side_nb(side: int, direction: int) -> int:
    """`side` (-1, 0, +1), or 0 where `direction` forbids it (+1 long, -1 short only, 0 both)."""
    if (direction == 1 and side < 0) or (direction == -1 and side > 0):
        return 0
    return side


@njit(cache=True)
def restrict_direction_nb(target: Int8Array1D, direction: int, out_target: Int8Array1D) -> None:
    """Write `target` into `out_target` with the sides `direction` forbids set to flat.

    direction : +1 long-only, -1 short-only, 0 both. `out_target` may be `target` itself.
    """
    for t in range(target.shape[0]):
        out_target[t] = restrict_side_nb(target[t], direction)


@njit(cache=True)
def open_fill_nb(
    price: float, side: int, cash: float, execution: Execution
) -> tuple[float, float, float, float]:
    """Open `side` at raw `price` with `cash` x size: (cash after, units > 0, fill, commission).

    The fill price carries the slippage; notional + commission = size x cash.
    """
    fill = price * (1.0 + execution.slippage_rate * side)
    notional = execution.size * cash / (1.0 + execution.fee_rate)
    fee = execution.fee_rate * notional
    return cash - side * notional - fee, notional / fill, fill, fee


@njit(cache=True)
def close_fill_nb(
    price: float, side: int, units: float, cash: float, execution: Execution
) -> tuple[float, float, float]:
    """Close `units` (> 0) held on `side` at raw `price`: (cash after, fill, commission)."""
    fill = price * (1.0 - execution.slippage_rate * side)
    notional = units * fill
    fee = execution.fee_rate * notional
    return cash + side * notional - fee, fill, fee


@njit(cache=True)
def trade_pnl_nb(
    side: int, units: float, entry_price: float, exit_price: float, entry_fee: float,
    exit_fee: float,
) -> tuple[float, float, float]:  # fmt: skip
    """(gross PnL, net PnL, return on entry notional) of one round trip."""
    gross = side * units * (exit_price - entry_price)
    net = gross - entry_fee - exit_fee
    return gross, net, net / (units * entry_price)


@njit(cache=True)
def _record_entry(
    out_trades: RecordArray1D, k: int, bar: int, side: int, units: float, fill: float, fee: float
) -> None:
    record = out_trades[k]
    record["entry_bar"] = bar
    record["exit_bar"] = -1
    record["side"] = side
    record["units"] = units
    record["entry_price"] = fill
    record["entry_fee"] = fee
    record["is_open"] = True
    record["exit_reason"] = 0


@njit(cache=True)
def _record_exit(
    out_trades: RecordArray1D, k: int, bar: int, exit_price: float, exit_fee: float,
    is_open: bool,
) -> None:  # fmt: skip
    """Complete trade k's exit fields and its PnL."""
    record = out_trades[k]
    gross, net, trade_return = trade_pnl_nb(
        record["side"], record["units"], record["entry_price"], exit_price,
        record["entry_fee"], exit_fee,
    )  # fmt: skip
    record["exit_bar"] = bar
    record["exit_price"] = exit_price
    record["exit_fee"] = exit_fee
    record["gross_pnl"] = gross
    record["net_pnl"] = net
    record["trade_return"] = trade_return
    record["is_open"] = is_open


@njit(cache=True)
def simulate_nb(
    open_: Float64Array1D,
    close: Float64Array1D,
    target: Int8Array1D,
    execution: Execution,
    out_equity: Float64Array1D,
    out_units: Float64Array1D,
    out_trades: RecordArray1D,
) -> int:
    """Simulate one account trading `target` and return the number of trades recorded.

    Parameters
    ----------
    open_, close : float64, shape (n_bars,)
        Bar open and close prices, oldest first, finite and > 0.
    target : int8, shape (n_bars,)
        Side wanted after bar t's close (-1, 0, +1), decided with data up to bar t only.
    execution : Execution
        Costs, sizing, fill timing and initial cash (see the module docstring).
    out_equity : float64, shape (n_bars,), written
        Account value at each bar's close, after costs.
    out_units : float64, shape (n_bars,), written
        Signed units held at each bar's close (0.0 when flat).
    out_trades : TRADE_DTYPE, shape (>= count_entries_nb(target),), written
        Round trips in entry order; rows past the returned count are left untouched.

    Returns
    -------
    n_trades : int
        Trades written, the open one (if any) last with `is_open=True`, marked at the last
        close without an exit fee.

    Notes
    -----
    No look-ahead: with `fill_on_close=False` the fill at bar t uses target[t - 1] and open[t];
    nothing at bar t depends on any value after t. Reference: tests/test_backtest_reference.py.
    """
    n_bars = close.shape[0]
    cash = execution.initial_cash
    units = 0.0
    side = np.int64(0)  # not the literal 0, for which Numba compiles each callee again
    n_trades = np.int64(0)
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
                _record_exit(out_trades, n_trades - 1, t, fill, fee, np.bool_(False))
                units = 0.0
                side = np.int64(0)
            if wanted != 0 and cash > 0.0:
                cash, size, fill, fee = open_fill_nb(price, wanted, cash, execution)
                _record_entry(out_trades, n_trades, t, wanted, size, fill, fee)
                units = wanted * size
                side = wanted
                n_trades += 1
        out_equity[t] = cash + units * close[t]
        out_units[t] = units
    if side != 0:
        _record_exit(out_trades, n_trades - 1, n_bars - 1, close[n_bars - 1], 0.0, np.bool_(True))
    return n_trades
