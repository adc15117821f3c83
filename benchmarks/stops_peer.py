"""The stops peer check, IvyBT side (issue #16): `sma_cross` with `--sl` and `--tp` on the
GOOG bars backtesting.py ships, against backtesting.py's own `SmaCross` with `sl=`/`tp=`
orders (`benchmarks/peers/stops_backtesting.py`, run first in the peers' venv).

    benchmarks/.venv-peers/bin/python benchmarks/peers/stops_backtesting.py
    .venv/bin/python benchmarks/stops_peer.py

Same conventions on both sides (close fills, no costs, long/short on SMA 10/20 crosses,
stop-loss 5 % and take-profit 10 % of the entry price). Prints how many trades agree on side,
entry and exit bar and prices, and lists those that do not with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import ivybt

RESULTS = Path(__file__).resolve().parent / "results"
SL, TP, FAST, SLOW = 0.05, 0.10, 10, 20


def main() -> None:
    bars = pd.read_csv(RESULTS / "stops_peer_goog.csv", index_col="date", parse_dates=True)
    bars = bars.astype("float64")
    peer = pd.read_csv(RESULTS / "stops_peer_backtesting.csv")
    run = ivybt.backtest(
        "sma_cross",
        data=bars,
        params={"fast": FAST, "slow": SLOW},
        fill="close",
        commission=0.0,
        slippage=0.0,
        direction="both",
        sl=SL,
        tp=TP,
        initial_cash=10_000_000.0,
        periods_per_year=252,
    )
    ours = run.trades
    ours = ours.assign(entry_bar=bars.index.get_indexer(ours["entry_time"]),
                       exit_bar=bars.index.get_indexer(ours["exit_time"]))  # fmt: skip
    theirs = {(int(r.EntryBar), 1 if r.Size > 0 else -1): r for r in peer.itertuples()}
    same, differ = 0, []
    for trade in ours.itertuples():
        side = 1 if trade.side == "long" else -1
        match = theirs.pop((int(trade.entry_bar), side), None)
        if match is None:
            differ.append(f"IvyBT only: {trade.side} {trade.entry_bar}->{trade.exit_bar} "
                          f"({trade.exit_reason})")  # fmt: skip
            continue
        exit_price = np.isclose(match.ExitPrice, trade.exit_price, rtol=1e-12)
        agree = (int(match.ExitBar) == trade.exit_bar
                 and np.isclose(match.EntryPrice, trade.entry_price, rtol=1e-12)
                 and (trade.is_open or exit_price))  # fmt: skip
        if agree:
            same += 1
        else:
            differ.append(
                f"{trade.side} entered bar {trade.entry_bar}: IvyBT exits bar "
                f"{trade.exit_bar} at {trade.exit_price:.4f} ({trade.exit_reason}), "
                f"backtesting.py bar {match.ExitBar} at {match.ExitPrice:.4f}"
            )
    differ += [f"backtesting.py only: entered bar {k[0]} side {k[1]}" for k in theirs]
    reasons = ours["exit_reason"].value_counts().to_dict()
    print(f"IvyBT {ivybt.__version__}: {len(ours)} trades {reasons}; backtesting.py "
          f"{len(peer)} trades; {same} identical (side, entry and exit bar, entry and exit "
          f"price); {len(differ)} differ")  # fmt: skip
    for line in differ:
        print("  " + line)


if __name__ == "__main__":
    main()
