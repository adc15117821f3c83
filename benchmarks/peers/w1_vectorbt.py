"""W1 on vectorbt: MA.run, ma_crossed_above / ma_crossed_below, Portfolio.from_signals.

    bash benchmarks/peers/setup.sh                       # once: benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/python benchmarks/peers/w1_vectorbt.py [--data spy|eurusd|all]

The idiomatic vectorbt program: one MA column per pair for the fast and for the slow window
(MA.run computes each distinct window once and copies it to its columns), entries where the
fast MA crosses above the slow one, exits where it crosses below, one from_signals portfolio
with fees=0.001, size=inf (all-in: size x price x (1 + fees) = cash), long only, fills at
the signal bar's close. Sharpe is made to match IvyBT's (mean / std(ddof=1) of per-bar
returns x sqrt(periods_per_year)): vectorbt's ann_factor = year_freq / freq, so freq is the
bar interval and year_freq is periods_per_year such intervals; ddof=1 (vectorbt's default).

Every vectorbt array is (bars x pairs), so pairs run in chunks of --chunk columns (0 = all
at once; W1 at 74,439 bars in one call would need about 9 GB per float array). Each timed run
is a fresh process: untimed warm-up on a few bars (compiles or loads Numba's cache), then one
full W1 run, timed, with its peak RSS (VmHWM). Writes per-pair total_return and sharpe to
benchmarks/results/w1_vectorbt_<data>.parquet, vectorbt's SMA of every window to
w1_vectorbt_<data>_sma.npy, and, with IvyBT's SMA table from w1_grid.py, the same signals and
portfolio on IvyBT's SMA values to w1_vectorbt_on_ivybt_sma_<data>.parquet (check_parity.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import vectorbt as vbt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import w1_data

DEFAULT_CHUNK = {"spy": 0, "eurusd": 500}  # pairs per call (peak RSS ~5.5 GB and ~9 GB)
DEFAULT_REPEATS = {"spy": 5, "eurusd": 1}  # a run at 74,439 bars takes about 10 minutes


def configure(name: str) -> None:
    spec = w1_data.DATASETS[name]
    vbt.settings.returns["year_freq"] = float(spec["periods_per_year"]) * pd.Timedelta(
        str(spec["freq"])
    )
    vbt.settings.returns["defaults"]["ddof"] = 1


def portfolio_metrics(close, entries, exits, freq: str) -> dict[str, np.ndarray]:
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, fees=w1_data.COMMISSION, size=np.inf, direction="longonly",
        init_cash=10_000.0, freq=freq,
    )  # fmt: skip
    return {"total_return": np.atleast_1d(np.asarray(pf.total_return())),
            "sharpe": np.atleast_1d(np.asarray(pf.sharpe_ratio()))}  # fmt: skip


def run_pairs(close: pd.Series, fast: np.ndarray, slow: np.ndarray, freq: str) -> dict:
    """total_return and sharpe of every (fast[j], slow[j]) pair, in pair order."""
    fast_ma = vbt.MA.run(close, window=list(fast), short_name="fast")
    slow_ma = vbt.MA.run(close, window=list(slow), short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    return portfolio_metrics(close, entries, exits, freq)


def run_pairs_on_table(close: pd.Series, table: np.ndarray, fast, slow, freq: str) -> dict:
    """Same signals and portfolio, on given SMA rows (table[w - 2] is the SMA of window w)."""
    fast_ma = pd.DataFrame(table[fast - 2].T, index=close.index)
    slow_ma = pd.DataFrame(table[slow - 2].T, index=close.index)
    entries = fast_ma.vbt.crossed_above(slow_ma)
    exits = fast_ma.vbt.crossed_below(slow_ma)
    return portfolio_metrics(close, entries.to_numpy(), exits.to_numpy(), freq)


def run_all(name: str, close: pd.Series, chunk: int, table: np.ndarray | None = None):
    fast, slow = w1_data.pairs()
    step = chunk or len(fast)
    freq = str(w1_data.DATASETS[name]["freq"])
    parts = []
    for i in range(0, len(fast), step):
        f, s = fast[i : i + step], slow[i : i + step]
        got = (run_pairs(close, f, s, freq) if table is None
               else run_pairs_on_table(close, table, f, s, freq))  # fmt: skip
        parts.append(pd.DataFrame({"fast": f, "slow": s, **got}))
    return pd.concat(parts, ignore_index=True)


def one_run(name: str, chunk: int, write: bool) -> None:
    """Child mode: warm up, one timed full W1 run, print JSON with time and peak RSS."""
    configure(name)
    close = w1_data.load_close(name)
    freq = str(w1_data.DATASETS[name]["freq"])
    run_pairs(close.iloc[:300], np.array([2, 3]), np.array([5, 6]), freq)  # warm-up, untimed
    before = w1_data.peak_rss_mb()
    start = time.perf_counter()
    table = run_all(name, close, chunk)
    seconds = time.perf_counter() - start
    peak = w1_data.peak_rss_mb()
    if write:
        w1_data.RESULTS_DIR.mkdir(exist_ok=True)
        table.to_parquet(w1_data.RESULTS_DIR / f"w1_vectorbt_{name}.parquet")
        sma = vbt.MA.run(close, window=list(range(2, 205))).ma.to_numpy().T
        np.save(w1_data.RESULTS_DIR / f"w1_vectorbt_{name}_sma.npy", np.ascontiguousarray(sma))
    print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak}))


def on_ivybt_sma(name: str, chunk: int) -> None:
    """Parity aid: vectorbt's signals and portfolio on IvyBT's SMA table (not timed)."""
    configure(name)
    path = w1_data.RESULTS_DIR / f"w1_ivybt_{name}_sma.npy"
    if not path.exists():
        print(f"skipped vectorbt on IvyBT's SMA for {name}: run benchmarks/w1_grid.py first")
        return
    table = run_all(name, w1_data.load_close(name), chunk, np.load(path))
    table.to_parquet(w1_data.RESULTS_DIR / f"w1_vectorbt_on_ivybt_sma_{name}.parquet")
    print(f"wrote vectorbt on IvyBT's SMA table for {name}")


def bench(name: str, repeats: int, chunk: int) -> None:
    n_bars, n_pairs = len(w1_data.load_close(name)), len(w1_data.pairs()[0])
    runs = []
    for r in range(repeats):
        command = [sys.executable, __file__, "--one-run", name, "--chunk", str(chunk)]
        done = subprocess.run(command + (["--write"] if r == 0 else []), capture_output=True,
                              text=True, check=True)  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = float(np.median([run["seconds"] for run in runs]))
    print(
        f"\n== W1 {name} on vectorbt: {n_bars:,} bars x {n_pairs:,} pairs, "
        f"{'all pairs in one call' if not chunk else f'chunks of {chunk} pairs'}"
    )
    print(
        f"warm runs, one fresh process each (s): "
        f"{', '.join(f'{run["seconds"]:.2f}' for run in runs)}"
    )
    print(f"median {median:.2f} s, {n_bars * n_pairs / median / 1e6:,.1f} M bar-combinations/s")
    print(
        f"peak RSS {max(run['peak_rss_mb'] for run in runs):,.0f} MiB "
        f"({runs[0]['rss_before_mb']:.0f} MiB after imports and warm-up)"
    )
    on_ivybt_sma(name, chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["spy", "eurusd", "all"], default="all")
    parser.add_argument("--repeats", type=int, help="fresh timed runs (default: 5 spy, 1 eurusd)")
    parser.add_argument("--chunk", type=int, help="pairs per call (default: 0 spy, 500 eurusd)")
    parser.add_argument("--one-run", choices=list(w1_data.DATASETS), help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.one_run, args.chunk or 0, args.write)
        return
    import numba

    print(w1_data.machine())
    print(f"vectorbt {vbt.__version__}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"pandas {pd.__version__}")  # fmt: skip
    for name in ["spy", "eurusd"] if args.data == "all" else [args.data]:
        chunk = DEFAULT_CHUNK[name] if args.chunk is None else args.chunk
        repeats = DEFAULT_REPEATS[name] if args.repeats is None else args.repeats
        bench(name, repeats, chunk)


if __name__ == "__main__":
    main()
