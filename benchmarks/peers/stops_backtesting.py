"""The stops peer check, backtesting.py side (issue #16): its own `SmaCross` on its own GOOG
data, with a stop-loss and a take-profit on every order, written for `benchmarks/stops_peer.py`.

    bash benchmarks/peers/setup.sh                       # once: benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/python benchmarks/peers/stops_backtesting.py
    .venv/bin/python benchmarks/stops_peer.py            # IvyBT on the same bars, compared

The conventions are chosen where the two coincide: `trade_on_close=True` (a crossover fills
at its own bar's close, IvyBT's `--fill close`), so the entry price is known when the order
is placed and `sl=price x (1 - SL)` is IvyBT's `--sl SL` from the entry fill; no commission
and no spread; long on the fast SMA crossing above the slow one, short on the opposite cross
(IvyBT's `sma_cross --direction both`); a cash large enough that whole units change nothing
but the PnL's rounding. Writes the bars and the trades to benchmarks/results/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA

SL, TP = 0.05, 0.10
FAST, SLOW = 10, 20
RESULTS = Path(__file__).resolve().parents[1] / "results"


class SmaCross(Strategy):
    def init(self):
        self.fast = self.I(SMA, self.data.Close, FAST)
        self.slow = self.I(SMA, self.data.Close, SLOW)

    def next(self):
        price = self.data.Close[-1]
        if crossover(self.fast, self.slow):
            self.position.close()
            self.buy(sl=price * (1 - SL), tp=price * (1 + TP))
        elif crossover(self.slow, self.fast):
            self.position.close()
            self.sell(sl=price * (1 + SL), tp=price * (1 - TP))


def main() -> None:
    run = Backtest(GOOG, SmaCross, cash=10_000_000, commission=0.0, trade_on_close=True)
    stats = run.run()
    trades = stats._trades[["Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "SL",
                            "TP"]]  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    GOOG.rename(columns=str.lower).rename_axis("date").to_csv(RESULTS / "stops_peer_goog.csv")
    trades.to_csv(RESULTS / "stops_peer_backtesting.csv", index=False)
    print(
        f"backtesting.py {sys.modules['backtesting'].__version__}: {len(trades)} trades on "
        f"GOOG ({len(GOOG)} bars), SL {SL:.0%}, TP {TP:.0%}; written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
