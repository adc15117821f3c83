"""A slow, obvious twin of `ivybt.kernels.stops.simulate_stops_nb`, written from the rules of
docs/stops.md as an event list per bar, sharing no code with the kernels.

Each bar is walked in time order: the open (next-open fills of yesterday's decision, time
stops), the inside of the bar (stops against the bar's low and high), the close (close
fills, time stops), then the mark. A trade is a dict; the result is (equity, units, trades).
"""

from __future__ import annotations

import math
from typing import Any

NAN = float("nan")
REASONS = {"signal": 0, "stop_loss": 1, "take_profit": 2, "trailing": 3, "time": 4}


def _finite(x: float) -> bool:
    return not math.isnan(x)


def simulate_stops(
    open_: list[float], high: list[float], low: list[float], close: list[float],
    atr: list[float], target: list[int], *, commission: float, slippage: float, size: float,
    fill_on_close: bool, initial_cash: float, stop_loss: float = 0.0,
    take_profit: float = 0.0, trailing: float = 0.0, stop_atr: float = 0.0, max_bars: int = 0,
) -> tuple[list[float], list[float], list[dict[str, Any]]]:  # fmt: skip
    cash = initial_cash
    pos: dict[str, Any] | None = None  # the open position
    trades: list[dict[str, Any]] = []
    blocked = 0
    equity, units_held = [], []

    def exit_at(raw: float, bar: int, reason: str) -> None:
        nonlocal cash, pos, blocked
        assert pos is not None
        side = pos["side"]
        fill = raw * (1.0 - slippage * side)
        notional = pos["units"] * fill
        fee = commission * notional
        cash = cash + side * notional - fee
        gross = side * pos["units"] * (fill - pos["entry_price"])
        net = gross - pos["entry_fee"] - fee
        trades.append({**pos, "exit_bar": bar, "exit_price": fill, "exit_fee": fee,
                       "gross_pnl": gross, "net_pnl": net,
                       "trade_return": net / (pos["units"] * pos["entry_price"]),
                       "is_open": False, "exit_reason": REASONS[reason]})  # fmt: skip
        if reason != "signal":
            blocked = side
        pos = None

    def enter(raw: float, bar: int, side: int, atr_at_decision: float, at_open: bool) -> None:
        nonlocal cash, pos
        fill = raw * (1.0 + slippage * side)
        notional = size * cash / (1.0 + commission)
        fee = commission * notional
        cash = cash - side * notional - fee
        loss = fill * (1.0 - side * stop_loss) if stop_loss > 0 else NAN
        if stop_atr > 0 and _finite(atr_at_decision):
            by_atr = fill - side * stop_atr * atr_at_decision
            if not _finite(loss) or (by_atr > loss if side > 0 else by_atr < loss):
                loss = by_atr
        profit = fill * (1.0 + side * take_profit) if take_profit > 0 else NAN
        pos = {"entry_bar": bar, "side": side, "units": notional / fill, "entry_price": fill,
               "entry_fee": fee, "loss": loss, "profit": profit,
               "reference": NAN if at_open else close[bar]}  # fmt: skip

    def decide(bar: int, decision: int, raw: float, at_open: bool) -> None:
        nonlocal blocked
        wanted = target[decision]
        if blocked and wanted != blocked:
            blocked = 0
        if blocked and wanted == blocked:
            wanted = 0
        side = pos["side"] if pos else 0
        reason = "signal"
        if pos and wanted == side and max_bars > 0 and decision - pos["entry_bar"] >= max_bars:
            wanted, reason = 0, "time"
        if wanted == side:
            return
        if pos:
            exit_at(raw, bar, reason)
        if wanted != 0 and cash > 0:
            enter(raw, bar, wanted, atr[decision], at_open)

    for t in range(len(close)):
        entered_now = False
        if not fill_on_close and t >= 1:
            before = pos
            decide(t, t - 1, open_[t], True)
            entered_now = pos is not None and pos is not before
        if pos is not None and (entered_now or pos["entry_bar"] < t):
            side = pos["side"]
            trail = NAN
            if trailing > 0 and _finite(pos["reference"]):
                trail = pos["reference"] * (1.0 - side * trailing)
            # which protective level a move against the position meets first
            candidates = ((pos["loss"], "stop_loss"), (trail, "trailing"))
            levels = [(level, name) for level, name in candidates if _finite(level)]
            protect = None
            if levels:
                best = max(levels, key=lambda x: x[0] * side)  # the highest for a long
                ties = [x for x in levels if x[0] == best[0]]
                protect = ties[0]  # equal levels: stop-loss (listed first)
            adverse = low[t] if side > 0 else high[t]
            favourable = high[t] if side > 0 else low[t]
            gap = not entered_now
            done = False
            if protect is not None and (adverse <= protect[0] if side > 0 else
                                        adverse >= protect[0]):  # fmt: skip
                beyond = open_[t] <= protect[0] if side > 0 else open_[t] >= protect[0]
                exit_at(open_[t] if gap and beyond else protect[0], t, protect[1])
                done = True
            elif _finite(pos["profit"]) and (favourable >= pos["profit"] if side > 0 else
                                             favourable <= pos["profit"]):  # fmt: skip
                beyond = open_[t] >= pos["profit"] if side > 0 else open_[t] <= pos["profit"]
                exit_at(open_[t] if gap and beyond else pos["profit"], t, "take_profit")
                done = True
            if not done:
                if pos["entry_bar"] == t:
                    pos["reference"] = close[t]
                else:
                    extreme = high[t] if side > 0 else low[t]
                    ref = pos["reference"]
                    pos["reference"] = max(ref, extreme) if side > 0 else min(ref, extreme)
        if fill_on_close:
            decide(t, t, close[t], False)
        u = (pos["side"] * pos["units"]) if pos else 0.0
        equity.append(cash + u * close[t])
        units_held.append(u)
    if pos is not None:
        gross = pos["side"] * pos["units"] * (close[-1] - pos["entry_price"])
        trades.append({**pos, "exit_bar": len(close) - 1, "exit_price": close[-1],
                       "exit_fee": 0.0, "gross_pnl": gross, "net_pnl": gross - pos["entry_fee"],
                       "trade_return": (gross - pos["entry_fee"]) /
                       (pos["units"] * pos["entry_price"]), "is_open": True,
                       "exit_reason": 0})  # fmt: skip
    return equity, units_held, trades
