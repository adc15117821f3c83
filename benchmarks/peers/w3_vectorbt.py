"""W3 on vectorbt: one cash-sharing group per pair, Portfolio.from_orders with targetpercent.

    bash benchmarks/peers/setup.sh                       # once: benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/python benchmarks/peers/w3_vectorbt.py [--chunk N]

W3 (benchmarks/w3_data.py): 20 symbols x 2,520 bars x 1,000 sma_cross pairs. The vectorbt
program, per chunk of pairs (columns: pair-major, the 20 symbols of a pair side by side):

- SMAs: `vbt.MA.run(close, window=[fast of each pair])` and the same for slow, on the
  (2,520 x 20) close frame: (2,520 x 20 x pairs) columns.
- Sides, IvyBT's sma_cross rule (flat until the first cross, then long while the last
  strict sign of fast - slow is positive; long only): entries = `ma_crossed_above`, exits
  = `ma_crossed_below` (the same bars as IvyBT's crossovers, benchmarks/README.md W1
  parity), side = 1 from an entry until the next exit, 0 before the first entry.
- Orders: at a bar where some symbol's side changes (the first bar with a long side
  included), every symbol of the pair gets size = side / (number of long symbols), NaN
  size elsewhere (no order). `Portfolio.from_orders(size_type="targetpercent",
  direction="longonly", group_by=<pair>, cash_sharing=True, call_seq="auto",
  fees=0.001, price=close (default), val_price=inf (default: the order price),
  init_cash=10_000, freq="1D")`, year_freq = 252 days and ddof=1 for Sharpe, as W1.
- Metrics: `pf.total_return()` and `pf.sharpe_ratio()` of each group.

Timed: everything above from the close frame to the two metric arrays (SMAs included), in
a fresh process after an untimed warm-up on 300 bars and 2 pairs (compiles or loads
Numba's cache); peak RSS is the process's VmHWM. --chunk pairs per from_orders call (0 =
all 1,000 pairs, 20,000 columns, in one call: it fits, ~7.5 GB, but is slower than chunks
of 100 pairs, the default). Between chunks the script runs `gc.collect()`: vectorbt's
objects keep their (bars x columns) arrays in reference cycles, so without it RSS grows by
~0.4 GB a chunk until Python's cyclic collector happens to run.

Parity runs (untimed, written to benchmarks/results/ for check_parity_w3.py):
w3_vectorbt_fee<f>.parquet with fees f = 0 and 0.001 on vectorbt's own SMAs (its SMA of
each window for each symbol in w3_vectorbt_sma.npy), and
w3_vectorbt_on_ivybt_sma_fee<f>.parquet on IvyBT's SMA values (w3_ivybt_sma.npy, written by
benchmarks/w3_portfolio.py), which isolates the account from SMA rounding.
"""

from __future__ import annotations

import argparse
import gc
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
import w3_data

DEFAULT_CHUNK = 100  # pairs (2,000 columns) per call: faster than all 1,000 at once (below)


def configure() -> None:
    vbt.settings.returns["year_freq"] = w3_data.PERIODS_PER_YEAR * pd.Timedelta("1D")
    vbt.settings.returns["defaults"]["ddof"] = 1


def sides_from_crosses(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """float64 (bars, columns): 1 from an entry until the next exit, 0 before the first entry
    and after an exit (entries and exits never fall on one bar)."""
    state = np.where(entries, 1.0, np.where(exits, 0.0, np.nan))
    return pd.DataFrame(state).ffill().fillna(0.0).to_numpy()


def target_sizes(side: np.ndarray, n_symbols: int) -> np.ndarray:
    """Targetpercent sizes (bars, columns): side / long symbols of the pair at a bar where
    some symbol of the pair changes side, NaN elsewhere."""
    n_bars, n_columns = side.shape
    by_pair = side.reshape(n_bars, n_columns // n_symbols, n_symbols)
    previous = np.concatenate([np.zeros_like(by_pair[:1]), by_pair[:-1]])
    rebalance = (by_pair != previous).any(axis=2, keepdims=True)
    n_long = np.maximum(by_pair.sum(axis=2, keepdims=True), 1.0)
    sizes = np.where(rebalance, by_pair / n_long, np.nan)
    return sizes.reshape(n_bars, n_columns)


def run_pairs(close: pd.DataFrame, fast: np.ndarray, slow: np.ndarray, fees: float,
              sma: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """total_return and sharpe of each (fast[j], slow[j]) pair's portfolio, in pair order.
    `sma` (symbols, windows, bars) with `windows` replaces vectorbt's MA (parity aid)."""
    n_symbols = close.shape[1]
    if sma is None:
        fast_ma = vbt.MA.run(close, window=list(fast), short_name="fast")
        slow_ma = vbt.MA.run(close, window=list(slow), short_name="slow")
        entries = fast_ma.ma_crossed_above(slow_ma).to_numpy()
        exits = fast_ma.ma_crossed_below(slow_ma).to_numpy()
    else:
        table, windows = sma
        at = {int(w): k for k, w in enumerate(windows)}
        fast_values = np.concatenate([table[:, at[int(f)], :].T for f in fast], axis=1)
        slow_values = np.concatenate([table[:, at[int(s)], :].T for s in slow], axis=1)
        fast_frame = pd.DataFrame(fast_values, index=close.index)
        slow_frame = pd.DataFrame(slow_values, index=close.index)
        entries = fast_frame.vbt.crossed_above(slow_frame).to_numpy()
        exits = fast_frame.vbt.crossed_below(slow_frame).to_numpy()
    side = sides_from_crosses(entries, exits)
    sizes = target_sizes(side, n_symbols)
    columns = pd.MultiIndex.from_arrays(
        [np.repeat(np.arange(len(fast)), n_symbols), np.tile(close.columns, len(fast))],
        names=["pair", "symbol"],
    )
    tiled = pd.DataFrame(np.tile(close.to_numpy(), (1, len(fast))), index=close.index,
                         columns=columns)  # fmt: skip
    pf = vbt.Portfolio.from_orders(
        tiled, size=pd.DataFrame(sizes, index=close.index, columns=columns),
        size_type="targetpercent", direction="longonly", fees=fees, slippage=0.0,
        group_by="pair", cash_sharing=True, call_seq="auto",
        init_cash=w3_data.INITIAL_CASH, freq="1D",
    )  # fmt: skip
    return {"total_return": np.atleast_1d(np.asarray(pf.total_return())),
            "sharpe": np.atleast_1d(np.asarray(pf.sharpe_ratio()))}  # fmt: skip


def run_all(close: pd.DataFrame, chunk: int, fees: float, sma=None) -> pd.DataFrame:
    fast, slow = w3_data.pairs()
    step = chunk or len(fast)
    parts = []
    for i in range(0, len(fast), step):
        f, s = fast[i : i + step], slow[i : i + step]
        parts.append(pd.DataFrame({"fast": f, "slow": s, **run_pairs(close, f, s, fees, sma)}))
        gc.collect()  # vectorbt's objects hold their arrays in reference cycles
    return pd.concat(parts, ignore_index=True)


def one_run(chunk: int, write: bool) -> None:
    """Child mode: warm up, one timed full W3 run, print JSON with time and peak RSS."""
    configure()
    close = w3_data.field_matrix(w3_data.frames(w3_data.N_SYMBOLS))
    run_pairs(close.iloc[:300], np.array([5, 10]), np.array([15, 20]), w3_data.COMMISSION)
    before = w1_data.peak_rss_mb()
    start = time.perf_counter()
    table = run_all(close, chunk, w3_data.COMMISSION)
    seconds = time.perf_counter() - start
    peak = w1_data.peak_rss_mb()
    if write:
        w3_data.RESULTS_DIR.mkdir(exist_ok=True)
        table.to_parquet(w3_data.RESULTS_DIR / f"w3_vectorbt_fee{w3_data.COMMISSION:g}.parquet")
    print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak}))


def parity_runs(chunk: int) -> None:
    """Untimed: fees 0 on vectorbt's SMAs, and both fees on IvyBT's SMA values."""
    configure()
    close = w3_data.field_matrix(w3_data.frames(w3_data.N_SYMBOLS))
    out = w3_data.RESULTS_DIR
    run_all(close, chunk, 0.0).to_parquet(out / "w3_vectorbt_fee0.parquet")
    windows = np.unique(np.r_[w3_data.pairs()])
    ma = vbt.MA.run(close, window=list(windows)).ma.to_numpy()  # (bars, windows x symbols)
    np.save(
        out / "w3_vectorbt_sma.npy",
        np.ascontiguousarray(ma.reshape(len(close), len(windows), -1).transpose(2, 1, 0)),
    )
    path = out / "w3_ivybt_sma.npy"
    if not path.exists():
        print("skipped vectorbt on IvyBT's SMA: run benchmarks/w3_portfolio.py first")
        return
    sma = (np.load(path), np.load(out / "w3_ivybt_sma_windows.npy"))
    for fees in (0.0, w3_data.COMMISSION):
        run_all(close, chunk, fees, sma).to_parquet(
            out / f"w3_vectorbt_on_ivybt_sma_fee{fees:g}.parquet"
        )
    print(f"wrote the parity runs to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh timed runs")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                        help="pairs per from_orders call (0: all)")  # fmt: skip
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.chunk, args.write)
        return
    import numba

    print(w1_data.machine())
    print(f"vectorbt {vbt.__version__}, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"pandas {pd.__version__}")  # fmt: skip
    print(w3_data.describe(w3_data.N_SYMBOLS))
    print(w3_data.grid_line())
    runs = []
    for r in range(args.repeats):
        command = [sys.executable, __file__, "--one-run", "--chunk", str(args.chunk)]
        done = subprocess.run(command + (["--write"] if r == 0 else []), capture_output=True,
                              text=True, check=True)  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    n_pairs = len(w3_data.pairs()[0])
    work = w3_data.N_BARS * w3_data.N_SYMBOLS * n_pairs
    median = float(np.median([run["seconds"] for run in runs]))
    print(
        f"\n== W3 on vectorbt: {w3_data.N_BARS:,} bars x {w3_data.N_SYMBOLS} symbols x "
        f"{n_pairs:,} pairs, "
        f"{'all pairs in one call' if not args.chunk else f'chunks of {args.chunk} pairs'}"
    )
    print(f"fresh processes (s): {', '.join(f'{run["seconds"]:.2f}' for run in runs)}")
    print(f"median {median:.2f} s, {work / median / 1e6:,.2f} M bar-symbol-combinations/s")
    print(
        f"peak RSS {max(run['peak_rss_mb'] for run in runs):,.0f} MiB "
        f"({runs[0]['rss_before_mb']:.0f} MiB after imports and warm-up)"
    )
    print(f"load average after: {w1_data.machine().rsplit('load average ', 1)[1]}")
    if not args.skip_parity:
        parity_runs(args.chunk)


if __name__ == "__main__":
    main()
