"""A slow, obvious twin of `ivybt.kernels.portfolio.portfolio_nb` (one account, many symbols).

Written from the specification (the kernel module's docstring, docs/portfolio.md), with plain
Python loops, one dict per open position and the steps named as the docstring names them. It
shares no code with `ivybt`. The rules it encodes, with t a bar of the window [a, b):

- A symbol *trades* at bar t only when it has a bar there (its fill price is not NaN). The
  decision filled at bar t is the target of bar d = t - 1 (next-open fills, at the open of t)
  or d = t (close fills, at the close of t); bar a itself fills nothing with next-open fills.
- Trigger: without a schedule, a rebalance happens at t when a tradable symbol's decision
  differs from the decision the last rebalance that traded it recorded; with a schedule, when
  `rebalance_at[d]` is set. A rebalance trades every tradable symbol towards its target.
- Weights (from the decisions of bar d, for symbols listed at d and at t): equal, fixed or
  inverse volatility; then the `max_weight` cap; then scaled down to `max_leverage` gross.
- A rebalance: (1) exits, (2) equity and targets, (3) reductions, (4) increases with buying
  power (see `_rebalance`).
- A symbol whose last bar is t - 1 is closed at bar t at that last close, with costs.
- Equity at t's close: cash plus each holding at its mark (the close carried forward).

Stops (docs/stops.md, "Stops on a universe"; `_Stops`), per symbol, on its own bars: a
position's levels come from the fill that opened it and the ATR of the decision bar; inside a
bar where the symbol has one (after the open's fills with next-open fills, before the close's
with close fills) its stop-loss or trailing stop, else its take-profit, may close it alone, at
the level or a gapped open, with the symbol's costs; its cash then waits for the next
rebalance. A stopped side stays flat until the symbol's target leaves it, and the last
rebalance's decision for it is forgotten (set to flat), so the exit triggers no rebalance. A
time stop closes a position held `max_bars` bars at the fill of decision bar d, unless a
rebalance at that bar closes it for its own signal.

Floating point. The specification is stated in exact arithmetic: "a target equal to the holding
makes no trade", "an order that cannot be funded is scaled down". In floats a holding that
equals its target in exact arithmetic can differ from it in the last bit, and buying power
used up exactly can leave 1e-16 x equity behind. The twin therefore treats a difference below
`DUST` (relative) as no difference: it makes no order whose notional is below DUST x equity,
leaves a holding within DUST of its target alone, and counts a weight within DUST of the band's
edge as inside the band. Real orders in the tests are many orders of magnitude above DUST.

Where a rule's outcome hinged on such a difference (a tie that exact arithmetic settles but a
last bit can flip, in the twin or in the kernel), the bar is listed in `ReferenceRun.ambiguous`:
from there on two correct float implementations may part, so the property test compares the
kernel with the twin on the bars before the first one. (The kernel's own handling of these ties
has its own small cases at the end of tests/test_portfolio_kernel.py.)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

REASONS = {"signal": 0, "stop_loss": 1, "take_profit": 2, "trailing": 3, "time": 4}
"""Exit reasons by name, as docs/stops.md lists them (the kernels' codes)."""

DUST = 1e-9
"""Relative size below which an order or a difference from the target is rounding (above)."""

FUNDING_SLACK = 1e-12
"""The specification's allowance in the buying-power test (an order whose notional plus
commission exceeds the power left by less than this fraction of it is not scaled down)."""


class ReferenceRun(NamedTuple):
    """What `reference_portfolio` returns; bars are counted from the window's start."""

    equity: np.ndarray  # float64 (b - a,): account value at each close
    units: np.ndarray  # float64 (b - a, n_symbols): signed units held at each close
    traded: np.ndarray  # float64 (b - a,): notional of every fill at the bar, at fill prices
    trades: list[dict[str, Any]]  # in the order they opened
    ambiguous: list[int]  # bars where a rule's outcome hinged on a rounding-sized difference


def _sign(x: float) -> int:
    return 1 if x > 0 else (-1 if x < 0 else 0)


def _is_nan(x: float) -> bool:
    return math.isnan(x)


def _round_down_to_lots(units: float, lot: float) -> float:
    """Whole lots (units >= 0); unchanged for lot 0 (fractional units)."""
    if lot > 0:
        return math.floor(units / lot) * lot
    return units


def _target_weights(
    decision: list[int], d: int, t: int, first: list[int], last: list[int], weighting: str,
    size: float, fixed: list[float], vol: Any, max_weight: float, max_leverage: float,
) -> list[float]:  # fmt: skip
    """Each symbol's target weight: the weighting, then the cap, then the leverage limit."""
    n = len(decision)
    counted = [decision[s] != 0 and first[s] <= d and t <= last[s] for s in range(n)]
    weights = [0.0] * n
    if weighting == "equal":
        count = sum(1 for s in range(n) if counted[s])
        for s in range(n):
            if counted[s]:
                weights[s] = decision[s] * size / count
    elif weighting == "fixed":
        for s in range(n):
            if counted[s]:
                weights[s] = decision[s] * fixed[s]
    elif weighting == "inverse_vol":
        inverse = {}
        for s in range(n):
            v = float(vol[d][s])
            if counted[s] and math.isfinite(v) and v > 0:
                inverse[s] = 1.0 / v
        total = sum(inverse.values())
        for s, inv in inverse.items():
            weights[s] = decision[s] * size * inv / total
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    for s in range(n):  # the cap on one symbol
        if abs(weights[s]) > max_weight:
            weights[s] = _sign(weights[s]) * max_weight
    gross = sum(abs(w) for w in weights)
    if gross > max_leverage:  # the leverage limit: scale, never refuse
        weights = [w * max_leverage / gross for w in weights]
    return weights


class _Stops(NamedTuple):
    """The exits of docs/stops.md as the twin reads them (0: off), and the bars they need."""

    stop_loss: float
    take_profit: float
    trailing: float
    stop_atr: float
    max_bars: int
    high: Any  # (n_bars, n_symbols), NaN where there is no bar
    low: Any
    atr: Any  # (n_bars, n_symbols): the ATR known at each close, NaN where undefined

    @property
    def on(self) -> bool:
        return bool(self.stop_loss or self.take_profit or self.trailing or self.stop_atr
                    or self.max_bars)  # fmt: skip


def _levels(stops: _Stops, side: int, fill: float, atr: float) -> tuple[float, float]:
    """(stop-loss, take-profit) of a position opened at `fill`, NaN where there is none."""
    loss = math.nan
    if stops.stop_loss > 0:
        loss = fill * (1 - stops.stop_loss) if side > 0 else fill * (1 + stops.stop_loss)
    if stops.stop_atr > 0 and not _is_nan(atr):
        by_atr = fill - side * stops.stop_atr * atr
        if _is_nan(loss):
            loss = by_atr
        else:  # the nearer of the two: the higher for a long, the lower for a short
            loss = max(loss, by_atr) if side > 0 else min(loss, by_atr)
    profit = math.nan
    if stops.take_profit > 0:
        profit = fill * (1 + stops.take_profit) if side > 0 else fill * (1 - stops.take_profit)
    return loss, profit


class _Account:
    """Cash, one position dict per held symbol, the trade log, the notional of this bar."""

    def __init__(self, cash: float, fee: list[float], slip: list[float]) -> None:
        self.cash = cash
        self.fee = fee
        self.slip = slip
        self.positions: dict[int, dict[str, Any]] = {}  # symbol -> {side, units, trade}
        self.trades: list[dict[str, Any]] = []
        self.traded = 0.0
        self.tie = False  # a rule's outcome at this bar hinged on a rounding-sized difference

    def buy_into(self, s: int, side: int, units: float, price: float, bar: int) -> float:
        """Add `units` (> 0) on `side` at raw `price`; open a trade if flat. Returns the cost
        (notional + commission) taken from the buying power."""
        fill = price * (1 + self.slip[s] * side)  # against the trader: a long buys higher
        notional = units * fill
        commission = self.fee[s] * notional
        self.cash = self.cash - side * notional - commission  # a short's proceeds come in
        self.traded += notional
        if s not in self.positions:
            trade = {"symbol": s, "side": side, "entry_bar": bar, "fills_in": [],
                     "fills_out": []}  # fmt: skip
            self.trades.append(trade)
            self.positions[s] = {"side": side, "units": 0.0, "trade": trade}
        position = self.positions[s]
        position["units"] += units
        position["trade"]["fills_in"].append((units, fill, commission))
        return notional + commission

    def sell_out_of(self, s: int, units: float, price: float, bar: int) -> None:
        """Take `units` (> 0) off the position at raw `price`; the trade closes when none
        are left."""
        position = self.positions[s]
        side = position["side"]
        fill = price * (1 - self.slip[s] * side)  # a long sells lower, a short buys back higher
        notional = units * fill
        commission = self.fee[s] * notional
        self.cash = self.cash + side * notional - commission
        self.traded += notional
        position["trade"]["fills_out"].append((units, fill, commission))
        position["units"] -= units
        if position["units"] <= 0:  # the whole holding went: the trade is over
            self._finish(s, bar, is_open=False)

    def close(self, s: int, price: float, bar: int, reason: str = "signal") -> None:
        self.positions[s]["trade"]["exit_reason"] = reason
        self.sell_out_of(s, self.positions[s]["units"], price, bar)

    def _finish(self, s: int, bar: int, is_open: bool) -> None:
        trade = self.positions.pop(s)["trade"]
        trade["exit_bar"] = bar
        trade["is_open"] = is_open
        trade.setdefault("exit_reason", "signal")


def _trade_record(trade: dict[str, Any]) -> dict[str, Any]:
    """A finished trade as the flat dict the tests compare: averaged prices, summed fees."""
    units_in = sum(u for u, _, _ in trade["fills_in"])
    units_out = sum(u for u, _, _ in trade["fills_out"])
    entry_price = sum(u * p for u, p, _ in trade["fills_in"]) / units_in
    exit_price = sum(u * p for u, p, _ in trade["fills_out"]) / units_out
    entry_fee = sum(f for _, _, f in trade["fills_in"])
    exit_fee = sum(f for _, _, f in trade["fills_out"])
    net_pnl = trade["side"] * units_in * (exit_price - entry_price) - entry_fee - exit_fee
    return {
        "symbol": trade["symbol"],
        "side": trade["side"],
        "entry_bar": trade["entry_bar"],
        "exit_bar": trade["exit_bar"],
        "units": units_in,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "entry_fee": entry_fee,
        "exit_fee": exit_fee,
        "net_pnl": net_pnl,
        "return": net_pnl / (units_in * entry_price),
        "is_open": trade["is_open"],
        "exit_reason": REASONS[trade["exit_reason"]],
    }


def reference_portfolio(
    open: Any, close: Any, mark: Any, first: Any, last: Any, target: Any, fee: Any, slip: Any,
    lot: Any, fixed: Any, vol: Any, rebalance_at: Any, weighting: str, size: float,
    max_leverage: float, max_weight: float, band: float, scheduled: bool, fill_on_close: bool,
    initial_cash: float, a: int, b: int, high: Any = None, low: Any = None, atr: Any = None,
    stop_loss: float = 0.0, take_profit: float = 0.0, trailing: float = 0.0,
    stop_atr: float = 0.0, max_bars: int = 0,
) -> ReferenceRun:  # fmt: skip
    """Simulate the account on bars [a, b) (see the module docstring).

    open, close, mark : (n_bars, n_symbols) prices; NaN open/close = no bar; mark = the close
        carried forward inside the listing. first, last: each symbol's listing bounds.
    target : (n_bars, n_symbols) side wanted after each bar's close (0 outside the listing).
    fee, slip, lot, fixed : per symbol. vol : (n_bars, n_symbols), read for inverse_vol.
    weighting : "equal", "fixed" or "inverse_vol".
    high, low, atr, stop_loss, take_profit, trailing, stop_atr, max_bars : the stops (0: off;
        high, low and atr (n_bars, n_symbols) are read only with a stop on).
    """
    stops = _Stops(stop_loss, take_profit, trailing, stop_atr, max_bars, high, low, atr)
    n_symbols = len(first)
    first = [int(x) for x in first]
    last = [int(x) for x in last]
    fee = [float(x) for x in fee]
    slip = [float(x) for x in slip]
    lot = [float(x) for x in lot]
    fixed = [float(x) for x in fixed]
    account = _Account(float(initial_cash), fee, slip)
    recorded = [0] * n_symbols  # the decision each symbol's last rebalance traded on
    blocked = [0] * n_symbols  # the side a stop closed, until the symbol's target leaves it
    equity_out, units_out, traded_out, ambiguous = [], [], [], []

    for t in range(a, b):
        bar = t - a
        account.traded = 0.0
        account.tie = False
        # delisting: the bar after a symbol's last one closes it at that last close
        for s in range(n_symbols):
            if last[s] == t - 1 and s in account.positions:
                account.close(s, float(close[t - 1][s]), bar)

        if stops.on and fill_on_close:  # the inside of the bar comes before its close
            _stop_exits(account, stops, open, close, t, bar, blocked, recorded)

        d = t if fill_on_close else t - 1
        fill_row = close[t] if fill_on_close else open[t]
        if d >= a:
            tradable = [not _is_nan(float(fill_row[s])) for s in range(n_symbols)]
            decision = [int(target[d][s]) for s in range(n_symbols)]
            if stops.on:
                for s in range(n_symbols):  # a stopped side waits for a fresh signal
                    if blocked[s] and decision[s] != blocked[s]:
                        blocked[s] = 0
                    if blocked[s]:
                        decision[s] = 0
                rebalancing = not scheduled or bool(rebalance_at[d])
                for s in range(n_symbols):  # time stops
                    position = account.positions.get(s)
                    if not (stops.max_bars and position and tradable[s]):
                        continue
                    held_bars = (d - a) - position["trade"]["entry_bar"]
                    side = position["side"]
                    leaves_by_signal = decision[s] != side and rebalancing
                    if held_bars >= stops.max_bars and not leaves_by_signal:
                        account.close(s, float(fill_row[s]), bar, "time")
                        blocked[s] = side
                        recorded[s] = 0
                        if decision[s] == side:
                            decision[s] = 0
            if scheduled:
                trigger = bool(rebalance_at[d])
            else:
                trigger = any(tradable[s] and decision[s] != recorded[s]
                              for s in range(n_symbols))  # fmt: skip
            if trigger:
                weights = _target_weights(decision, d, t, first, last, weighting, size, fixed,
                                          vol, max_weight, max_leverage)  # fmt: skip
                for s in range(n_symbols):
                    if tradable[s]:
                        recorded[s] = decision[s]
                before = {s: p["trade"] for s, p in account.positions.items()}
                _rebalance(account, weights, tradable, fill_row, mark[t], lot, band,
                           max_leverage, bar)  # fmt: skip
                if stops.on:  # the positions this rebalance opened get their levels
                    for s, position in account.positions.items():
                        if before.get(s) is position["trade"]:
                            continue
                        trade = position["trade"]
                        first_fill = trade["fills_in"][0][1]
                        loss, profit = _levels(stops, position["side"], first_fill,
                                               float(stops.atr[d][s]))  # fmt: skip
                        position["loss"], position["profit"] = loss, profit
                        # the trailing reference: the entry bar's close, once it is known
                        position["reference"] = float(close[t][s]) if fill_on_close else None

        if stops.on and not fill_on_close:  # the inside of the bar, after the open's fills
            _stop_exits(account, stops, open, close, t, bar, blocked, recorded)

        value = sum(p["side"] * p["units"] * float(mark[t][s])
                    for s, p in sorted(account.positions.items()))  # fmt: skip
        equity_out.append(account.cash + value)
        units_out.append([
            account.positions[s]["side"] * account.positions[s]["units"]
            if s in account.positions else 0.0
            for s in range(n_symbols)
        ])  # fmt: skip
        traded_out.append(account.traded)
        if account.tie:
            ambiguous.append(bar)

    # still open at the window's end: marked at the last close, no exit fee
    for s in sorted(account.positions):
        position = account.positions[s]
        position["trade"]["fills_out"].append((position["units"], float(mark[b - 1][s]), 0.0))
        account._finish(s, b - 1 - a, is_open=True)

    return ReferenceRun(
        np.array(equity_out, dtype=np.float64),
        np.array(units_out, dtype=np.float64).reshape(b - a, n_symbols),
        np.array(traded_out, dtype=np.float64),
        [_trade_record(trade) for trade in account.trades],
        ambiguous,
    )


def _stop_exits(
    account: _Account, stops: _Stops, open: Any, close: Any, t: int, bar: int,
    blocked: list[int], recorded: list[int],
) -> None:  # fmt: skip
    """Inside bar t: each held symbol with a bar there against its stop levels, in symbol
    order (docs/stops.md); a position opened at this bar's open has no gap and its trailing
    stop starts after this bar."""
    for s in sorted(account.positions):
        o = float(open[t][s])
        if _is_nan(o):
            continue  # no bar: nothing can trigger, the reference does not move
        position = account.positions[s]
        side = position["side"]
        hi, lo = float(stops.high[t][s]), float(stops.low[t][s])
        opened_here = position["trade"]["entry_bar"] == bar
        loss, profit, reference = position["loss"], position["profit"], position["reference"]
        trail = math.nan
        if stops.trailing > 0 and reference is not None:
            trail = reference * (1 - side * stops.trailing)
        # the protective level a move against the position meets first: the higher for a
        # long, the lower for a short; equal levels: the stop-loss
        protect, name = loss, "stop_loss"
        if not _is_nan(trail) and (_is_nan(loss) or (trail > loss if side > 0 else trail < loss)):
            protect, name = trail, "trailing"
        exit_price = None
        if not _is_nan(protect) and (lo <= protect if side > 0 else hi >= protect):
            gapped = (o <= protect if side > 0 else o >= protect) and not opened_here
            exit_price = o if gapped else protect
        elif not _is_nan(profit) and (hi >= profit if side > 0 else lo <= profit):
            gapped = (o >= profit if side > 0 else o <= profit) and not opened_here
            exit_price, name = (o if gapped else profit), "take_profit"
        if exit_price is None:
            if opened_here:
                position["reference"] = float(close[t][s])
            elif reference is not None:
                position["reference"] = max(reference, hi) if side > 0 else min(reference, lo)
            continue
        account.close(s, exit_price, bar, name)
        blocked[s] = side
        recorded[s] = 0


def _rebalance(
    account: _Account, weights: list[float], tradable: list[bool], fill_row: Any, mark_row: Any,
    lot: list[float], band: float, max_leverage: float, bar: int,
) -> None:  # fmt: skip
    n_symbols = len(weights)
    fee, slip = account.fee, account.slip

    # (1) exits: a held, tradable symbol whose target side is not its side closes
    for s in range(n_symbols):
        if tradable[s] and s in account.positions:
            if _sign(weights[s]) != account.positions[s]["side"]:
                account.close(s, float(fill_row[s]), bar)

    # (2) equity and targets: holdings at the fill bar's price, or the mark without a bar
    def price_of(s: int) -> float:
        return float(fill_row[s]) if tradable[s] else float(mark_row[s])

    equity = account.cash + sum(p["side"] * p["units"] * price_of(s)
                                for s, p in sorted(account.positions.items()))  # fmt: skip

    def target_units(s: int) -> float:
        """|w| x E / (1 + commission) of notional at the price a buy would pay, in lots."""
        side = _sign(weights[s])
        buy_fill = float(fill_row[s]) * (1 + slip[s] * side)
        notional = abs(weights[s]) * max(equity, 0.0) / (1 + fee[s])
        if lot[s] > 0:
            lots = notional / buy_fill / lot[s]
            if lots > 0 and abs(lots - round(lots)) <= DUST * lots:
                account.tie = True  # on a whole number of lots: rounding picks the side
        return _round_down_to_lots(notional / buy_fill, lot[s])

    # (3) reductions, sells first; a held symbol inside its band, or on target, is left alone
    done = set()
    for s in range(n_symbols):
        if not tradable[s] or s not in account.positions:
            continue
        held = account.positions[s]["units"]
        wanted = target_units(s)
        # the band is measured from the order's target: the holding's distance to it, as a
        # fraction of equity (at the fill bar's raw price)
        drift = abs(wanted - held) * float(fill_row[s]) / equity if equity > 0 else math.inf
        if abs(drift - max(band, DUST)) <= DUST:
            account.tie = True  # on the band's edge, or on target up to rounding
        if drift <= max(band, DUST):
            done.add(s)  # left alone
        elif wanted < held:
            account.sell_out_of(s, held - wanted, float(fill_row[s]), bar)
            done.add(s)

    # (4) increases and new positions in symbol order, within the buying power left
    gross = sum(p["units"] * price_of(s) for s, p in account.positions.items())
    after = account.cash + sum(p["side"] * p["units"] * price_of(s)
                               for s, p in sorted(account.positions.items()))  # fmt: skip
    power = max_leverage * after - gross  # the trims' costs are paid, not lent
    for s in range(n_symbols):
        if not tradable[s] or s in done or weights[s] == 0.0:
            continue
        side = _sign(weights[s])
        held = account.positions[s]["units"] if s in account.positions else 0.0
        buy_fill = float(fill_row[s]) * (1 + slip[s] * side)
        units = target_units(s) - held
        if units * buy_fill * (1 + fee[s]) > power * (1 + FUNDING_SLACK):  # cannot be funded
            units = _round_down_to_lots(max(power, 0.0) / (1 + fee[s]) / buy_fill, lot[s])
            if abs(power) <= DUST * abs(equity):
                account.tie = True  # the power is used up, up to rounding
        if units * buy_fill <= DUST * abs(equity):
            if units > 0:
                account.tie = True  # an order of rounding size
            continue
        power -= account.buy_into(s, side, units, float(fill_row[s]), bar)


def reference_metrics(
    equity: np.ndarray, units: np.ndarray, trades: list[dict[str, Any]], initial_cash: float,
    periods_per_year: float,
) -> dict[str, float]:  # fmt: skip
    """docs/metrics.md, recomputed from the curve and the log (closed trades, all symbols)."""
    values = [float(x) for x in equity]
    n = len(values)
    returns = [values[i] / (values[i - 1] if i else initial_cash) - 1 for i in range(n)]
    mean = sum(returns) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (n - 1)) if n > 1 else math.nan
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / n)
    growth = values[-1] / initial_cash
    cagr = growth ** (periods_per_year / n) - 1 if growth > 0 else -1.0
    peak, worst = initial_cash, 0.0
    for value in values:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1)
    annual = math.sqrt(periods_per_year)
    closed = [trade for trade in trades if not trade["is_open"]]
    wins = [trade for trade in closed if trade["net_pnl"] > 0]
    losses = [trade for trade in closed if trade["net_pnl"] < 0]
    nan = math.nan
    gross_profit = sum(trade["net_pnl"] for trade in wins)
    gross_loss = sum(trade["net_pnl"] for trade in losses)
    return {
        "total_return": growth - 1,
        "cagr": cagr,
        "volatility": std * annual,
        "sharpe": mean / std * annual if std > 0 else nan,
        "sortino": mean / downside * annual if downside > 0 else nan,
        "max_drawdown": worst,
        "calmar": cagr / -worst if worst < 0 else nan,
        "n_trades": float(len(closed)),
        "win_rate": len(wins) / len(closed) if closed else nan,
        "profit_factor": gross_profit / -gross_loss if losses else nan,
        "avg_win": sum(t["return"] for t in wins) / len(wins) if wins else nan,
        "avg_loss": sum(t["return"] for t in losses) / len(losses) if losses else nan,
        "exposure": sum(1 for row in units if any(u != 0 for u in row)) / n,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
    }
