"""One account trading a universe: per-symbol sides -> target weights -> fills -> equity.

The portfolio case of `ivybt.kernels.simulate`: bars x symbols, one cash account. Every rule
is stated in docs/portfolio.md; in short, with t a bar of the window [a, b):

- Inputs are aligned on the union of the symbols' timestamps. `open`/`close` are NaN where a
  symbol has no bar; `mark` is the close carried forward inside the listing (a held symbol
  with no bar is valued at its last close) and 0 outside it; `first[s]`/`last[s]` bound the
  listing.
- Decisions: `target[d, s]` is the side wanted after bar d's close (0 outside the listing).
  With next-open fills (default) the decision of bar t - 1 trades at bar t's open; with close
  fills, bar t's decision trades at bar t's close. A symbol without a bar at t does not trade.
- Rebalance trigger (`rules.scheduled` False, default): a tradable symbol whose decision
  differs from the side the last rebalance gave it. Scheduled: the decision bar is flagged in
  `rebalance_at` (the first bar of each day, week or month); nothing trades in between.
- Weights at a rebalance, from the decision bar: equal (side x size / number of listed
  symbols with a non-flat side), fixed (side x `fixed[s]`) or inverse volatility (side x
  size x (1 / vol) / sum of 1 / vol over the symbols with a non-flat side and a finite,
  positive vol; weight 0 without one) or score-proportional (the same with the score
  strength in place of 1 / vol: a cross-sectional strategy's `score_strength_nb`). Then |w|
  is capped at `max_weight`, and when sum |w| exceeds
  `max_leverage` every weight scales by max_leverage / sum |w| (never refused).
- Order of a rebalance: (1) close every position whose side changes (to flat or the other
  side); (2) equity E = cash + units x price (the fill bar's raw price, or the mark for a
  symbol without a bar); the target notional is |w| x E / (1 + commission), so a new
  position's notional plus its commission is |w| x E as in the single-symbol sizing;
  (3) reduce the positions above their target (sells first, freed cash funds the buys);
  (4) increase those below it, in symbol order, each scaled down to the buying power left,
  max_leverage x the equity after the reductions (their costs paid) minus the gross notional
  held (plus the commission), so cash never goes below what the leverage allows. A held
  symbol whose holding differs from its target by at most `band` x E of notional is left
  alone; an order of at most `DUST` x E (rounding) is not made, so a target equal to the
  holding makes no trade.
- Fills and costs follow the single-symbol conventions per symbol (`fee[s]`, `slip[s]`): a
  buy pays price x (1 + slippage), a sell gets price x (1 - slippage), commission is a
  fraction of the traded notional. `lot[s]` > 0 rounds target units down to whole lots.
  Shorts: the sale's proceeds are credited to cash, the position counts in gross exposure,
  no margin interest or borrow fee is charged.
- A symbol whose listing ends inside the window is closed at the first bar after its last
  one, at its last close, with costs (the end of a listing is known when the next bar comes
  without it); it gets no weight from then on. Positions open at the window's end are
  marked at the last close, without exit fees, and recorded as open trades.
- A trade is one holding of one side in one symbol, from the fill that opened it to the one
  that closed it: `units` are all the units bought (sold, for a short) into it, prices are
  unit-weighted averages of the fills in and out, fees are summed; rebalancing adds and trims
  belong to the trade. Trade metrics count closed trades over every symbol.
- Stops (`PortfolioRules.stop_loss` ... `max_bars`; docs/stops.md, "Stops on a universe"):
  each symbol's position follows the single-symbol rules of `ivybt.kernels.stops` on its own
  bars. Its levels come from the fill that opened the trade (adds and trims by later
  rebalances move none of them) and the ATR of the decision bar; inside a bar where it has
  one (after the open's fills with next-open fills, before the close's with close fills) a
  stop closes the whole position alone, at its level or the gapped open, with the symbol's
  costs; the cash stays in the account until the next rebalance. A time stop closes a
  position held `max_bars` union bars at the fill of decision bar d, unless a rebalance at
  that bar closes it for its own signal. After either, the symbol's side stays flat until its
  target leaves it, and the side the last rebalance gave it becomes flat, so the exit itself
  triggers no rebalance. Order within bar t: delistings, [close fills: stops inside the
  bar], blocked sides and time stops, the rebalance, [next-open fills: stops inside the
  bar], the valuation.

With one symbol and the default rules this performs the same operations in the same order as
`simulate_nb` (with stops, `ivybt.kernels.stops.simulate_stops_nb`), so it gives its results
bit for bit (tests/test_portfolio_kernel.py, tests/test_portfolio_stops.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ivybt._typing import (
    Float64Array1D,
    Float64Array2D,
    Float64Array3D,
    Int8Array1D,
    Int64Array1D,
    Int64Array2D,
    RecordArray1D,
)
from ivybt.kernels._config import NO_REFCOUNTS
from ivybt.kernels.metrics import (
    N_METRICS,
    return_start_nb,
    return_step_nb,
    trade_start_nb,
    trade_step_nb,
    write_return_metrics_nb,
    write_trade_metrics_nb,
)
from ivybt.kernels.simulate import TRADE_DTYPE, Stops, trade_pnl_nb
from ivybt.kernels.stops import (
    EXIT_SIGNAL,
    EXIT_TIME,
    bar_exit_nb,
    entry_levels_nb,
    stops_active_nb,
    trail_reference_nb,
)

PORTFOLIO_TRADE_DTYPE = np.dtype([*TRADE_DTYPE.descr, ("symbol", np.int64)])
"""`TRADE_DTYPE` plus the symbol's column index. Bars are relative to the window's start."""

EQUAL, FIXED, INVERSE_VOL, SCORE = 0, 1, 2, 3
"""`PortfolioRules.weighting` codes."""

DUST = 1e-9
"""Orders whose notional is at most DUST x equity are not made: differences of rounding
size between a holding and its target, or buying power used up but for rounding."""

FUNDING_SLACK = 1e-12
"""Relative slack of the buying-power test: an order that needs its notional times
(1 + commission) is not scaled down for the last bit of rounding in that product."""

# rows of the float scratch (`_FLOAT_ROWS`, n_symbols) and the int scratch (`_INT_ROWS`, ...)
_UNITS, _UNITS_IN, _ENTRY, _ENTRY_FEES, _UNITS_OUT, _EXIT, _EXIT_FEES, _WEIGHT, _PRICE = range(9)
_ENTRY_SUM, _EXIT_SUM = 9, 10  # notional of the fills in and out (unit-weighted averages)
_WANTED = 11  # a holding's target units at the rebalance
_LOSS, _PROFIT, _REFERENCE = 12, 13, 14  # an open trade's stop levels (stops on)
_FLOAT_ROWS = 15
_SIDE, _INTENDED, _ENTRY_BAR, _SLOT, _SKIP = range(5)
_ORDER = 5  # the symbols a rebalance trades or values (held or with a weight), in order
_BLOCKED = 6  # the side a stop closed, blocked until the symbol's target leaves it
_INT_ROWS = 7

_HIGH, _LOW, _ATR = 3, 4, 5  # rows of `Universe.prices` after open, close, mark (stops on)


class PortfolioRules(NamedTuple):
    """The account's rules as a Numba-friendly tuple (built from the config's portfolio and
    execution sections).

    weighting : EQUAL, FIXED, INVERSE_VOL or SCORE.
    size : fraction of equity the equal and inverse-volatility weights add up to, in (0, 1].
    max_leverage : the most sum |w| may be; larger weights scale down to it.
    max_weight : the most |w| one symbol may have (inf: no cap).
    band : a held symbol whose |weight| is within `band` of its target is not traded.
    scheduled : True trades only at decision bars flagged in `rebalance_at`.
    fill_on_close : True fills at the decision bar's close, False at the next bar's open.
    initial_cash : starting equity, > 0.
    stop_loss, take_profit, trailing, stop_atr, max_bars : the exits of each symbol's
        position (`ivybt.kernels.simulate.Stops`; 0: off, the default): with any on,
        `Universe.prices` needs the high, low and ATR rows. Flat fields, not a nested
        `Stops`: a parallel loop cannot take a tuple inside a tuple as an argument.
    """

    weighting: int
    size: float
    max_leverage: float
    max_weight: float
    band: float
    scheduled: bool
    fill_on_close: bool
    initial_cash: float
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing: float = 0.0
    stop_atr: float = 0.0
    max_bars: int = 0


class Universe(NamedTuple):
    """The aligned bars and per-symbol settings of a universe (see the module docstring).

    prices : float64, (3, n_bars, n_symbols): open, close, mark; open and close are NaN
        where there is no bar, the mark is finite everywhere: 0.0 outside the listing (where
        nothing is held, so the valuation adds 0 x 0 without a branch). With stops
        (`PortfolioRules.stop_loss` ...) (6, n_bars, n_symbols): then high, low (NaN where
        there is no bar) and the ATR known at each close (Wilder, over the symbol's own
        bars, carried over its missing bars; NaN where undefined; read only with `stop_atr`).
    first, last : int64, (n_symbols,): union bars of each symbol's first and last bar.
    fee, slip, lot, fixed : float64, (n_symbols,): commission and slippage rates, lot size
        (0: fractional units) and fixed weight (FIXED weighting) of each symbol.
    vol : float64, (n_bars, n_symbols) or (0, 0): the weighting's basis at each decision
        bar: the volatility (INVERSE_VOL, weight in proportion to 1 / vol) or the score
        strength (SCORE, weight in proportion to it;
        `ivybt.kernels.cross_section.score_strength_nb`); NaN or <= 0 where undefined.
    rebalance_at : int8, (n_bars,): 1 on the decision bars of a rebalancing schedule.
    """

    prices: Float64Array3D
    first: Int64Array1D
    last: Int64Array1D
    fee: Float64Array1D
    slip: Float64Array1D
    lot: Float64Array1D
    fixed: Float64Array1D
    vol: Float64Array2D
    rebalance_at: Int8Array1D


class Books(NamedTuple):
    """Per-symbol scratch of `portfolio_nb`: floats (15, n_symbols) float64 (units, the open
    trade's fills, the target weight, the rebalance price, the fills' notional sums, the
    target units, the stop-loss, take-profit and trailing reference), ints (7, n_symbols)
    int64 (held side, side given by the last rebalance, entry bar, trade slot, skip flag,
    the rebalance's list of symbols held or wanted, the side a stop blocked), `decided`
    (n_symbols,) int8 (the sides a rebalance trades towards when stops are on)."""

    floats: Float64Array2D
    ints: Int64Array2D
    decided: Int8Array1D


class Records(NamedTuple):
    """What `portfolio_nb` writes: metrics always, the per-bar arrays and trades when
    `equity` is not empty (see `records` and `metrics_only`)."""

    metrics: Float64Array1D
    equity: Float64Array1D
    units: Float64Array2D
    traded: Float64Array1D
    trades: RecordArray1D


Account = tuple[float, int, tuple[int, int, int, float, float, float, float]]
"""(cash, trades opened so far, the closed-trade accumulators of `trade_step_nb`)."""


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _sign(value: float) -> int:
    return int(value > 0.0) - int(value < 0.0)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _round_lot(units: float, lot: float) -> float:
    """`units` (>= 0) rounded down to whole lots; unchanged when `lot` is 0 (fractional)."""
    if lot > 0.0:
        return math.floor(units / lot) * lot
    return units


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def target_weights_nb(
    universe: Universe, rules: PortfolioRules, target: Int8Array1D, d: int, t: int,
    out_weight: Float64Array1D,
) -> None:  # fmt: skip
    """Write each symbol's target weight for the decisions `target` (int8, (n_symbols,)) of
    decision bar d, filled at bar t: the weighting, then the `max_weight` cap, then the
    leverage scaling. A symbol counts when it is listed at both (first <= d, t <= last)."""
    n_symbols = target.shape[0]
    first = universe.first
    last = universe.last
    if rules.weighting == EQUAL:
        count = 0
        for s in range(n_symbols):  # branch-free: which symbols hold a side is data
            count += (target[s] != 0) & (first[s] <= d) & (t <= last[s])
        share = rules.size / count if count > 0 else 0.0  # side x share = side x size / count
        for s in range(n_symbols):
            listed = (first[s] <= d) & (t <= last[s])
            out_weight[s] = target[s] * share if listed else 0.0
    else:
        basis_sum = 0.0
        for s in range(n_symbols if rules.weighting != FIXED else 0):
            if target[s] != 0 and first[s] <= d and t <= last[s]:
                basis_sum += _basis_nb(universe.vol[d, s], rules.weighting)
        for s in range(n_symbols):
            out_weight[s] = 0.0
            side = target[s]
            if side == 0 or not (first[s] <= d and t <= last[s]):
                continue
            if rules.weighting == FIXED:
                out_weight[s] = side * universe.fixed[s]
            else:
                basis = _basis_nb(universe.vol[d, s], rules.weighting)
                if basis > 0.0:
                    out_weight[s] = side * rules.size * basis / basis_sum
    gross = 0.0
    for s in range(n_symbols):
        if abs(out_weight[s]) > rules.max_weight:
            out_weight[s] = _sign(out_weight[s]) * rules.max_weight
        gross += abs(out_weight[s])
    if gross > rules.max_leverage:
        scale = rules.max_leverage / gross
        for s in range(n_symbols):
            out_weight[s] *= scale


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _basis_nb(value: float, weighting: int) -> float:
    """A held symbol's share of the weights before normalising: 1 / vol (INVERSE_VOL) or the
    score strength (SCORE); 0 where the value is not finite and positive."""
    if not (value > 0.0 and math.isfinite(value)):
        return 0.0
    return 1.0 / value if weighting == INVERSE_VOL else value


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _open_trade(books: Books, s: int, side: int, bar: int, slot: int) -> None:
    ints = books.ints
    floats = books.floats
    ints[_SIDE, s] = side
    ints[_ENTRY_BAR, s] = bar
    ints[_SLOT, s] = slot
    for row in (_UNITS_IN, _ENTRY, _ENTRY_FEES, _UNITS_OUT, _EXIT, _EXIT_FEES, _ENTRY_SUM,
                _EXIT_SUM):  # fmt: skip
        floats[row, s] = 0.0


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _add_fill(books: Books, s: int, units: float, fill: float, fee: float, entry: bool) -> None:
    """Fold a fill of `units` at `fill` with commission `fee` into symbol s's open trade: the
    first fill's price exactly, NaN once there are more (then the price is the unit-weighted
    average, the notional sum / units, made when the trade is written: `_average_nb`)."""
    floats = books.floats
    count, price, fees, total = (_UNITS_IN, _ENTRY, _ENTRY_FEES, _ENTRY_SUM) if entry else (
        _UNITS_OUT, _EXIT, _EXIT_FEES, _EXIT_SUM)  # fmt: skip
    held = floats[count, s]
    if held == 0.0:
        floats[price, s] = fill
        floats[total, s] = units * fill
    else:
        floats[price, s] = np.nan
        floats[total, s] += units * fill
    floats[count, s] = held + units
    floats[fees, s] += fee


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _average_nb(books: Books, s: int, price: int, total: int, count: int) -> float:
    """A trade's entry or exit price: its one fill's, or the unit-weighted average."""
    value = books.floats[price, s]
    if math.isnan(value):
        return books.floats[total, s] / books.floats[count, s]
    return value


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _write_trade(
    books: Books, s: int, exit_bar: int, is_open: bool, reason: int, out_trades: RecordArray1D
) -> tuple[float, float]:
    """(net PnL, return) of symbol s's trade; written to its record when it fits, with the
    exit `reason` (`ivybt.kernels.stops.EXIT_REASONS` code; EXIT_SIGNAL for an open one)."""
    ints = books.ints
    floats = books.floats
    side = ints[_SIDE, s]
    units = floats[_UNITS_IN, s]
    entry = _average_nb(books, s, _ENTRY, _ENTRY_SUM, _UNITS_IN)
    exit_price = _average_nb(books, s, _EXIT, _EXIT_SUM, _UNITS_OUT)
    gross, net, trade_return = trade_pnl_nb(
        side, units, entry, exit_price, floats[_ENTRY_FEES, s], floats[_EXIT_FEES, s]
    )
    k = ints[_SLOT, s]
    if k < out_trades.shape[0]:
        record = out_trades[k]
        record["entry_bar"] = ints[_ENTRY_BAR, s]
        record["exit_bar"] = exit_bar
        record["side"] = side
        record["units"] = units
        record["entry_price"] = entry
        record["exit_price"] = exit_price
        record["entry_fee"] = floats[_ENTRY_FEES, s]
        record["exit_fee"] = floats[_EXIT_FEES, s]
        record["gross_pnl"] = gross
        record["net_pnl"] = net
        record["trade_return"] = trade_return
        record["is_open"] = is_open
        record["exit_reason"] = reason
        record["symbol"] = s
    return net, trade_return


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _sell(
    universe: Universe, books: Books, s: int, units: float, price: float, cash: float
) -> tuple[float, float]:
    """Take `units` (> 0) off symbol s's position at raw `price`: (cash after, notional).

    The arithmetic of `close_fill_nb`: fill = price x (1 - slippage x side), commission on
    the notional at the fill."""
    side = books.ints[_SIDE, s]
    fill = price * (1.0 - universe.slip[s] * side)
    notional = units * fill
    fee = universe.fee[s] * notional
    cash = cash + side * notional - fee
    _add_fill(books, s, units, fill, fee, False)
    return cash, notional


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _close_position(
    universe: Universe, books: Books, s: int, price: float, bar: int, account: Account,
    reason: int, out_trades: RecordArray1D,
) -> tuple[Account, float]:  # fmt: skip
    """Close symbol s's whole position at raw `price` for `reason` (an `EXIT_REASONS`
    code): (account after, notional traded)."""
    cash, n_trades, trades = account
    cash, notional = _sell(universe, books, s, abs(books.floats[_UNITS, s]), price, cash)
    net, trade_return = _write_trade(books, s, bar, False, reason, out_trades)
    books.floats[_UNITS, s] = 0.0
    books.ints[_SIDE, s] = 0
    return (cash, n_trades, trade_step_nb(trades, net, trade_return)), notional


@njit(cache=True, **NO_REFCOUNTS)
def portfolio_nb(
    universe: Universe,
    target: Int8Array1D,
    rules: PortfolioRules,
    a: int,
    b: int,
    periods_per_year: float,
    books: Books,
    out: Records,
) -> int:
    """Simulate the account on bars [a, b), write its metrics and return the trade count.

    Parameters
    ----------
    universe : Universe
        Aligned prices and per-symbol settings (module docstring).
    target : int8, shape (n_bars, n_symbols)
        Side wanted after each bar's close, direction applied, 0 outside the listing; decided
        with data up to that bar only.
    rules : PortfolioRules
        Weighting, sizing, leverage, band, schedule, fill timing and initial cash.
    a, b : int
        The traded window [a, b) of union bars; the account starts flat with the initial cash.
    periods_per_year : float
        Bars per year, for annualising.
    books : Books
        Scratch, overwritten (`scratch`; the caller allocates it once per thread).
    out : Records
        `metrics` (N_METRICS,) is always written: the metrics in `METRIC_NAMES` order
        (docs/metrics.md) over [a, b). When `equity` is not empty, `equity` (b - a,),
        `units` (b - a, n_symbols) and `traded` (b - a,) get the equity and signed units at
        each close and the notional traded at each bar (at fill prices); `trades`
        (PORTFOLIO_TRADE_DTYPE, any length) gets the trades in the order they opened, as many
        as fit, the open ones marked at the last close with `is_open=True`.

    Returns
    -------
    n_trades : int
        Trades made (may exceed len(out.trades): call again with room for them all).

    Notes
    -----
    No look-ahead: a fill at bar t uses decisions of bar t - 1 (t with close fills), prices
    of bar t and the marks up to t (with stops, bar t's high and low and the ATR of the
    decision bar); the equity at t depends on nothing after t. Trades record their
    `exit_reason` (EXIT_SIGNAL without stops). Reference twin: tests/portfolio_reference.py.
    """
    n_symbols = target.shape[1]
    fills = universe.prices[1] if rules.fill_on_close else universe.prices[0]
    close = universe.prices[1]
    mark = universe.prices[2]
    last = universe.last
    floats = books.floats
    ints = books.ints
    units_held = floats[_UNITS]  # views made once, not at every bar
    intended = ints[_INTENDED]
    record = out.equity.shape[0] > 0
    stopping = stops_active_nb(_stops_of(rules))
    for s in range(n_symbols):
        units_held[s] = 0.0
        ints[_SIDE, s] = 0
        intended[s] = 0
        ints[_BLOCKED, s] = 0
    account = (rules.initial_cash, 0, trade_start_nb())
    returns = return_start_nb(rules.initial_cash)
    held = 0
    holding = False  # any position held: known after each event, none between events
    leave = _next_leave_nb(last, a)  # the next bar after a listing's last one
    for t in range(a, b):
        traded = 0.0
        if t == leave:  # delisted at t - 1: leaves at that last close
            for s in range(n_symbols):
                if last[s] == t - 1 and ints[_SIDE, s] != 0:
                    account, notional = _close_position(
                        universe, books, s, close[t - 1, s], t - a, account, EXIT_SIGNAL,
                        out.trades,
                    )  # fmt: skip
                    traded += notional
            leave = _next_leave_nb(last, t + 1)
            holding = _holds_nb(units_held)
        if stopping and rules.fill_on_close and holding:  # inside bar t, before its close
            account, notional = _stop_exits_nb(universe, rules, (t, a), account, books,
                                               out.trades)  # fmt: skip
            traded += notional
            holding = _holds_nb(units_held)
        d = t if rules.fill_on_close else t - 1
        if d >= a:
            decision = target[d]
            if stopping:  # blocked sides and time stops: the sides the account trades to
                account, notional = _decide_nb(universe, rules, decision, (t, a, d), account,
                                               books, out.trades)  # fmt: skip
                decision = books.decided
                traded += notional
                holding = _holds_nb(units_held)
            if rules.scheduled:
                trigger = universe.rebalance_at[d] != 0
            else:
                differs = 0
                for s in range(n_symbols):  # branch-free first: most bars change nothing
                    differs |= decision[s] ^ intended[s]
                trigger = False
                for s in range(n_symbols if differs != 0 else 0):
                    if not math.isnan(fills[t, s]) and decision[s] != intended[s]:
                        trigger = True
                        break
            if trigger:
                account, notional = _rebalance_nb(universe, rules, decision, (t, a, d),
                                                  account, books, out.trades)  # fmt: skip
                traded += notional
                holding = _holds_nb(units_held)
        if stopping and not rules.fill_on_close and holding:  # inside bar t, after its open
            account, notional = _stop_exits_nb(universe, rules, (t, a), account, books,
                                               out.trades)  # fmt: skip
            traded += notional
            holding = _holds_nb(units_held)
        value = _holdings_value_nb(units_held, mark[t]) if holding else 0.0
        equity = account[0] + value
        returns = return_step_nb(returns, equity)
        if holding:
            held += 1
        if record:
            out.equity[t - a] = equity
            out.traded[t - a] = traded
            for s in range(n_symbols):
                out.units[t - a, s] = units_held[s]
    for s in range(n_symbols):  # open at the end: marked at the last close, no exit fee
        if ints[_SIDE, s] != 0:
            _add_fill(books, s, abs(floats[_UNITS, s]), mark[b - 1, s], 0.0, False)
            _write_trade(books, s, b - 1 - a, True, EXIT_SIGNAL, out.trades)
    out.metrics[:] = np.nan
    write_return_metrics_nb(returns, b - a, held, rules.initial_cash, periods_per_year,
                            out.metrics)  # fmt: skip
    write_trade_metrics_nb(account[2], out.metrics)
    return account[1]


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _next_leave_nb(last: Int64Array1D, t: int) -> int:
    """The first bar >= t that follows some symbol's last bar (-1: none)."""
    leave = -1
    for s in range(last.shape[0]):
        bar = last[s] + 1
        if bar >= t and (leave < 0 or bar < leave):
            leave = bar
    return leave


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _holdings_value_nb(units: Float64Array1D, mark: Float64Array1D) -> float:
    """Sum of units x mark over every symbol (0 x the mark 0 of an unlisted one adds 0), in
    four partial sums over the symbols s = k mod 4, added as (p0 + p1) + (p2 + p3): no branch
    per symbol, and no chain of n dependent additions. With one symbol it is units x mark."""
    n = units.shape[0]
    p0 = p1 = p2 = p3 = 0.0
    n4 = n - n % 4
    for q in range(n4 // 4):
        s = 4 * q
        p0 += units[s] * mark[s]
        p1 += units[s + 1] * mark[s + 1]
        p2 += units[s + 2] * mark[s + 2]
        p3 += units[s + 3] * mark[s + 3]
    for s in range(n4, n):
        p0 += units[s] * mark[s]
    return (p0 + p1) + (p2 + p3)


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _holds_nb(units: Float64Array1D) -> bool:
    """Whether any symbol is held."""
    for s in range(units.shape[0]):
        if units[s] != 0.0:
            return True
    return False


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _rebalance_nb(
    universe: Universe, rules: PortfolioRules, decision: Int8Array1D, bars: tuple[int, int, int],
    account: Account, books: Books, out_trades: RecordArray1D,
) -> tuple[Account, float]:  # fmt: skip
    """Trade every tradable symbol towards its target weight at bar t, `bars` = (t, a, d):
    exits, then reductions, then increases (module docstring). Returns (account, notional
    traded).

    Passes after the exits visit only the symbols held or given a weight, listed in symbol
    order without a branch (`_ORDER`): whether a symbol is held is data, so a test per symbol
    would be mispredicted about half the time, while the list's sums run in the same order."""
    t, a, d = bars
    floats = books.floats
    ints = books.ints
    price = universe.prices[1, t] if rules.fill_on_close else universe.prices[0, t]
    mark = universe.prices[2, t]
    n_symbols = decision.shape[0]
    weight = floats[_WEIGHT]
    target_weights_nb(universe, rules, decision, d, t, weight)
    traded = 0.0
    value = 0.0
    order = ints[_ORDER]
    n_active = 0
    for s in range(n_symbols):  # (1) positions whose side changes close first
        tradable = not math.isnan(price[s])
        ints[_SKIP, s] = 0 if tradable else 1
        floats[_PRICE, s] = price[s] if tradable else mark[s]
        side = ints[_SIDE, s]
        if tradable:
            ints[_INTENDED, s] = decision[s]
        if tradable & (side != 0) & (_sign(weight[s]) != side):
            account, notional = _close_position(universe, books, s, price[s], t - a,
                                                account, EXIT_SIGNAL, out_trades)  # fmt: skip
            traded += notional
        order[n_active] = s  # kept (the count moves on) when held or wanted after the exits
        n_active += (ints[_SIDE, s] != 0) | (weight[s] != 0.0)
    for i in range(n_active):  # (2) what is held after the exits, at this bar's prices
        s = order[i]
        units = floats[_UNITS, s]
        if units != 0.0:
            value += units * floats[_PRICE, s]
    cash, n_trades, trades = account
    equity = cash + value
    gross = 0.0  # after the reductions, whose costs the buying power must not lend
    value = 0.0
    for i in range(n_active):  # (3) reductions: a smaller holding on the same side
        s = order[i]
        side = ints[_SIDE, s]
        if ints[_SKIP, s] == 0 and side != 0:
            wanted = _wanted_units(universe, weight[s], equity, price[s], s)
            floats[_WANTED, s] = wanted  # an add (pass 4) buys up to it
            units = abs(floats[_UNITS, s])
            if abs(units - wanted) * price[s] <= max(rules.band, DUST) * max(equity, 0.0):
                ints[_SKIP, s] = 1  # on target, within the band, or a dust order
            elif wanted < units:
                cash, notional = _sell(universe, books, s, units - wanted, price[s], cash)
                floats[_UNITS, s] = side * wanted
                traded += notional
                ints[_SKIP, s] = 1
                if wanted == 0.0:  # whole lots rounded the holding away
                    net, trade_return = _write_trade(books, s, t - a, False, EXIT_SIGNAL,
                                                     out_trades)  # fmt: skip
                    trades = trade_step_nb(trades, net, trade_return)
                    ints[_SIDE, s] = 0
        units = floats[_UNITS, s]
        if units != 0.0:
            value += units * floats[_PRICE, s]
            gross += abs(units) * floats[_PRICE, s]
    power = rules.max_leverage * (cash + value) - gross
    stops = _stops_of(rules)
    stopping = stops_active_nb(stops)
    for i in range(n_active):  # (4) increases and new positions, in symbol order
        s = order[i]
        if ints[_SKIP, s] != 0 or weight[s] == 0.0:
            continue
        side = _sign(weight[s])
        fee_rate = universe.fee[s]
        fill = price[s] * (1.0 + universe.slip[s] * side)
        lot = universe.lot[s]
        if ints[_SIDE, s] != 0:  # an add: the target units of the reductions pass, less held
            units = floats[_WANTED, s] - abs(floats[_UNITS, s])
            notional = units * fill
        else:  # a new position: notional + commission = |w| x E, the single-symbol sizing
            notional = abs(weight[s]) * equity / (1.0 + fee_rate)
            units = _round_lot(notional / fill, lot) if lot > 0.0 else notional / fill
            notional = units * fill if lot > 0.0 else notional
        if notional * (1.0 + fee_rate) > power * (1.0 + FUNDING_SLACK):
            notional = max(power, 0.0) / (1.0 + fee_rate)
            units = _round_lot(notional / fill, lot) if lot > 0.0 else notional / fill
            notional = units * fill if lot > 0.0 else notional
        if notional <= DUST * abs(equity):  # nothing to buy, or an account at or below 0
            continue
        fee = fee_rate * notional
        cash = cash - side * notional - fee
        power -= notional + fee
        traded += notional
        if ints[_SIDE, s] == 0:
            _open_trade(books, s, side, t - a, n_trades)
            n_trades += 1
            if stopping:  # the levels of docs/stops.md, from this opening fill
                loss, profit = entry_levels_nb(side, fill, universe.prices[_ATR, d, s], stops)
                floats[_LOSS, s] = loss
                floats[_PROFIT, s] = profit
                # with next-open fills the trailing reference starts at this bar's close
                floats[_REFERENCE, s] = universe.prices[1, t, s] if rules.fill_on_close else (
                    np.nan)  # fmt: skip
        _add_fill(books, s, units, fill, fee, True)
        floats[_UNITS, s] += side * units
    return (cash, n_trades, trades), traded


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _stops_of(rules: PortfolioRules) -> Stops:
    """The exits `rules` carries, as `Stops`."""
    return Stops(rules.stop_loss, rules.take_profit, rules.trailing, rules.stop_atr,
                 rules.max_bars)  # fmt: skip


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _stop_exits_nb(
    universe: Universe, rules: PortfolioRules, bars: tuple[int, int], account: Account,
    books: Books, out_trades: RecordArray1D,
) -> tuple[Account, float]:  # fmt: skip
    """The stops inside bar t, `bars` = (t, a), of every held symbol with a bar at t
    (`ivybt.kernels.stops.bar_exit_nb` on its open, high and low): a triggered one closes
    the whole position at its level or the gapped open (with the symbol's slippage and
    commission), blocks that side (`_BLOCKED`) and forgets the side the last rebalance gave
    it, so the account does not rebalance for it; the cash stays in the account until the
    next rebalance. Otherwise the trailing reference moves with the bar (it starts at the
    entry bar's close). Returns (account, notional traded)."""
    t, a = bars
    prices = universe.prices
    floats = books.floats
    ints = books.ints
    stops = _stops_of(rules)
    traded = 0.0
    for s in range(ints.shape[1]):
        side = ints[_SIDE, s]
        open_ = prices[0, t, s]
        if side == 0 or math.isnan(open_):
            continue
        entered = ints[_ENTRY_BAR, s] == t - a  # at this bar's open: no gap, no move yet
        reason, price = bar_exit_nb(
            side, (open_, prices[_HIGH, t, s], prices[_LOW, t, s]), not entered,
            (floats[_LOSS, s], floats[_PROFIT, s], floats[_REFERENCE, s]), stops,
        )  # fmt: skip
        if reason == EXIT_SIGNAL:
            floats[_REFERENCE, s] = prices[1, t, s] if entered else trail_reference_nb(
                side, floats[_REFERENCE, s], prices[_HIGH, t, s], prices[_LOW, t, s])  # fmt: skip
            continue
        account, notional = _close_position(universe, books, s, price, t - a, account, reason,
                                            out_trades)  # fmt: skip
        traded += notional
        ints[_BLOCKED, s] = side
        ints[_INTENDED, s] = 0
    return account, traded


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _decide_nb(
    universe: Universe, rules: PortfolioRules, decision: Int8Array1D,
    bars: tuple[int, int, int], account: Account, books: Books, out_trades: RecordArray1D,
) -> tuple[Account, float]:  # fmt: skip
    """With stops: write into `books.decided` the sides of decision bar d the account
    trades towards at bar t, `bars` = (t, a, d), and make the time stops due there.

    A side a stop closed stays blocked (flat) until the symbol's target leaves it (a flat
    bar, or the other side, which is wanted at once). A position held `max_bars` bars
    (d - entry bar >= max_bars) by a symbol with a bar at t is closed at t's fill price
    (reason EXIT_TIME, its side then blocked) unless a rebalance at t closes it for its
    own signal (its side changed, and the account rebalances on signals or d is a
    scheduled bar). Returns (account, notional traded)."""
    t, a, d = bars
    ints = books.ints
    decided = books.decided
    fills = universe.prices[1, t] if rules.fill_on_close else universe.prices[0, t]
    rebalancing = not rules.scheduled or universe.rebalance_at[d] != 0
    due = d - a - rules.max_bars  # entry bars (of the window) at or before it are due
    traded = 0.0
    for s in range(decision.shape[0]):
        wanted = decision[s]
        blocked = ints[_BLOCKED, s]
        if blocked != 0 and wanted != blocked:
            ints[_BLOCKED, s] = 0  # a fresh signal
        elif blocked != 0:
            wanted = 0
        decided[s] = wanted
        side = ints[_SIDE, s]
        if (rules.max_bars > 0 and side != 0 and ints[_ENTRY_BAR, s] <= due
                and not math.isnan(fills[s]) and (wanted == side or not rebalancing)):  # fmt: skip
            account, notional = _close_position(universe, books, s, fills[s], t - a, account,
                                                EXIT_TIME, out_trades)  # fmt: skip
            traded += notional
            ints[_BLOCKED, s] = side
            ints[_INTENDED, s] = 0
            if wanted == side:
                decided[s] = 0
    return account, traded


@njit(cache=True, inline="always", **NO_REFCOUNTS)
def _wanted_units(universe: Universe, weight: float, equity: float, price: float, s: int) -> float:
    """Units (>= 0) of symbol s at its target: |weight| x equity / (1 + commission) of
    notional at the price an increase would pay, in whole lots when it has a lot size."""
    side = _sign(weight)
    fill = price * (1.0 + universe.slip[s] * side)
    units = abs(weight) * max(equity, 0.0) / ((1.0 + universe.fee[s]) * fill)
    return _round_lot(units, universe.lot[s])


def scratch(n_symbols: int) -> Books:
    """The scratch `portfolio_nb` takes, for `n_symbols`."""
    return Books(
        np.zeros((_FLOAT_ROWS, n_symbols), dtype=np.float64),
        np.zeros((_INT_ROWS, n_symbols), dtype=np.int64),
        np.zeros(n_symbols, dtype=np.int8),
    )


def records(n_bars: int, n_symbols: int, n_trades: int) -> Records:
    """Output arrays of `portfolio_nb` that keep every bar and up to `n_trades` trades."""
    return Records(
        np.empty(N_METRICS), np.empty(n_bars), np.empty((n_bars, n_symbols)),
        np.empty(n_bars), np.empty(n_trades, dtype=PORTFOLIO_TRADE_DTYPE),
    )  # fmt: skip


def metrics_only(n_symbols: int) -> Records:
    """Output arrays of `portfolio_nb` that keep only the metrics."""
    return Records(
        np.empty(N_METRICS), np.empty(0), np.empty((0, n_symbols)), np.empty(0),
        np.empty(0, dtype=PORTFOLIO_TRADE_DTYPE),
    )  # fmt: skip
