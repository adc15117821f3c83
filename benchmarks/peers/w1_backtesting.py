"""W1 on backtesting.py: Backtest.optimize over the SMA-cross grid (timing only, no parity).

    bash benchmarks/peers/setup.sh                       # once: benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/python benchmarks/peers/w1_backtesting.py [--data spy|eurusd|all]

The idiomatic backtesting.py program: `self.I` SMAs, `crossover()` to buy and to close,
Backtest(commission=0.001, trade_on_close=True, exclusive_orders=True), and
`optimize(fast=range(2, 102), slow=range(5, 205), constraint=fast < slow)`, which runs one
Python event loop per combination in a process pool (one process per core).

At 2,520 bars the full grid takes about 6 minutes here, so it runs whole, once. At 74,439
bars it would take hours, so each timed run is a randomized grid search: optimize's own
`max_tries` fraction keeps each admissible pair with that probability (`random_state`
fixed), and the time per pair is extrapolated to all 15,247 pairs (pool start-up is inside
the timing, so the extrapolation slightly overstates).
Not a parity peer: backtesting.py buys whole units, its crossover() needs a strict cross on
consecutive bars (IvyBT and vectorbt carry the last strict side over equal bars), and its
Sharpe is annualised from geometric daily returns.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py draws a progress bar per run

import backtesting
import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import w1_data

SEED = 0
FRACTION = {"spy": 1.0, "eurusd": 0.01}  # share of the 15,247 pairs timed (all, ~150)
REPEATS = {"spy": 1, "eurusd": 3}


def sma(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).mean().to_numpy()


class SmaCross(Strategy):
    fast = 10
    slow = 50

    def init(self) -> None:
        self.fast_ma = self.I(sma, self.data.Close, self.fast)
        self.slow_ma = self.I(sma, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_ma, self.slow_ma):
            self.buy()
        elif crossover(self.slow_ma, self.fast_ma):
            self.position.close()


def make_backtest(name: str) -> Backtest:
    bars = w1_data.load_bars(name).rename(columns=str.capitalize)[
        ["Open", "High", "Low", "Close", "Volume"]
    ]
    if bars.index.tz is not None:  # backtesting.py wants a naive index
        bars.index = bars.index.tz_localize(None)
    return Backtest(
        bars,
        SmaCross,
        cash=10_000_000,
        commission=w1_data.COMMISSION,
        trade_on_close=True,
        exclusive_orders=True,
        finalize_trades=True,
    )


def bench(name: str, repeats: int) -> None:
    bt = make_backtest(name)
    n_bars, n_pairs = len(bt._data), len(w1_data.pairs()[0])
    start = time.perf_counter()
    bt.run(fast=10, slow=50)  # warm-up, and the cost of one run in this process
    single = time.perf_counter() - start
    times, counts = [], []
    for r in range(repeats):
        start = time.perf_counter()
        _, heatmap = bt.optimize(fast=range(2, 102), slow=range(5, 205),
                                 constraint=lambda p: p.fast < p.slow, maximize="Sharpe Ratio",
                                 max_tries=FRACTION[name] if FRACTION[name] < 1 else None,
                                 random_state=SEED + r,
                                 return_heatmap=True)  # fmt: skip
        times.append(time.perf_counter() - start)
        counts.append(len(heatmap))
    per_pair = float(np.median([t / c for t, c in zip(times, counts, strict=True)]))
    full = per_pair * n_pairs
    how = (
        "full grid"
        if FRACTION[name] == 1
        else f"randomized grid search (max_tries="
        f"{FRACTION[name]}, random_state {SEED}..{SEED + repeats - 1}), extrapolated"
    )
    print(f"\n== W1 {name} on backtesting.py: {n_bars:,} bars, {how}")
    print(f"one bt.run in this process: {single:.3f} s")
    print(
        "optimize runs: "
        + ", ".join(f"{c} pairs in {t:.1f} s" for c, t in zip(counts, times, strict=True))
    )
    print(
        f"median {per_pair * 1e3:.1f} ms per pair -> full grid of {n_pairs:,} pairs "
        f"{full:,.0f} s ({full / 60:.1f} min); "
        f"{n_bars * n_pairs / full / 1e6:.2f} M bar-combinations/s"
    )
    print(
        f"peak RSS: main process {w1_data.peak_rss_mb():,.0f} MiB, largest pool worker "
        f"{w1_data.children_peak_rss_mb():,.0f} MiB (includes pages shared with the parent)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["spy", "eurusd", "all"], default="all")
    parser.add_argument("--repeats", type=int, help="optimize runs (default: 1 spy, 3 eurusd)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Searching for best of")
    # whole-unit sizing: a pair that has lost almost everything cannot buy one unit any more
    warnings.filterwarnings("ignore", message=".*insufficient margin")
    print(w1_data.machine())
    print(f"backtesting.py {backtesting.__version__}, numpy {np.__version__}, "
          f"pandas {pd.__version__}")  # fmt: skip
    for name in ["spy", "eurusd"] if args.data == "all" else [args.data]:
        bench(name, args.repeats or REPEATS[name])


if __name__ == "__main__":
    main()
