"""Workload W3 (issue #14, section 3), shared by every W3 script: the universe, the grid.

Imports only numpy and pandas (and w1_data), so the peer script (run in
benchmarks/.venv-peers, where IvyBT is not installed) builds exactly the bars IvyBT gets.

W3: 20 symbols x 2,520 daily bars x 1,000 combinations of sma_cross, long only, equal weight
among the symbols holding a long side, max leverage 1, the whole account rebalanced on a bar
where some symbol's side changes, one account per combination; 0.1% commission, no
slippage; total return and Sharpe (mean / std(ddof=1) of per-bar returns x sqrt(252)) per
combination.

The universe. Only seven permissively licensed daily series with at least 2,520 bars are
bundled in ivybt/data/sample/ (SPY, SPX, MSFT, IXIC, AAPL, GOOG, IBM; BTCUSD has 1,246 bars
and is left out). Each W3 "symbol" is a window of 2,520 consecutive REAL bars of one of
them (open, high, low, close, volume unchanged), re-dated onto one common calendar: the
last 2,520 dates of SPY (2010-08-26..2020-08-28). `allocation(n)` gives each series a
number of windows proportional to its length (largest remainder, at least one each) at
offsets spread evenly from its first bar to its last possible start; windows of one series
overlap when it has fewer than that many disjoint windows. A symbol is named
SERIES_OFFSET, e.g. SPX_2796 = SPX bars 2796..5315. Every symbol has a bar on every date.

The grid: fast 5..110 step 5 x slow 15..285 step 5 with fast < slow, 1,000 pairs in
IvyBT's (fast-major) enumeration order; 57 distinct SMA windows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data  # the machine line, peak RSS, median_time, the sample folder

SERIES = ("SPY", "SPX", "MSFT", "IXIC", "AAPL", "GOOG", "IBM")
N_BARS = 2520
N_SYMBOLS = 20
N_SYMBOLS_LARGE = 100  # the memory point
FAST = np.arange(5, 111, 5)  # 5..110
SLOW = np.arange(15, 286, 5)  # 15..285
FAST_SPEC, SLOW_SPEC = "5:110:5", "15:285:5"  # the same, as IvyBT's -p specs
COMMISSION = 0.001
PERIODS_PER_YEAR = 252.0
INITIAL_CASH = 10_000.0
FIELDS = ("open", "high", "low", "close", "volume")
RESULTS_DIR = w1_data.RESULTS_DIR


def pairs() -> tuple[np.ndarray, np.ndarray]:
    """(fast, slow) int64 arrays of the 1,000 pairs, fast-major: IvyBT's enumeration order."""
    fast, slow = np.meshgrid(FAST, SLOW, indexing="ij")
    keep = fast < slow
    return fast[keep].astype(np.int64), slow[keep].astype(np.int64)


def _series(name: str) -> pd.DataFrame:
    return pd.read_parquet(w1_data.SAMPLE_DIR / f"{name}_1d.parquet")


def calendar() -> pd.DatetimeIndex:
    """The common dates: the last 2,520 dates of the bundled SPY series."""
    return pd.DatetimeIndex(_series("SPY").index[-N_BARS:], name="date")


def allocation(n_symbols: int) -> list[tuple[str, int]]:
    """(series, offset) of each of `n_symbols` windows, series by series (module docstring)."""
    lengths = {name: len(_series(name)) for name in SERIES}
    total = sum(lengths.values())
    quota = {name: n_symbols * length / total for name, length in lengths.items()}
    counts = {name: max(1, int(q)) for name, q in quota.items()}
    by_remainder = sorted(SERIES, key=lambda name: (-(quota[name] - int(quota[name])), name))
    for name in by_remainder[: n_symbols - sum(counts.values())]:
        counts[name] += 1
    out = []
    for name in SERIES:
        room = lengths[name] - N_BARS  # the last possible offset
        k = counts[name]
        offsets = [room] if k == 1 else [round(i * room / (k - 1)) for i in range(k)]
        if len(set(offsets)) != k:
            raise ValueError(f"{name}: {k} windows of {N_BARS} bars would repeat an offset")
        out += [(name, offset) for offset in offsets]
    if len(out) != n_symbols:
        raise AssertionError(f"allocated {len(out)} windows, wanted {n_symbols}")
    return out


def frames(n_symbols: int = N_SYMBOLS) -> dict[str, pd.DataFrame]:
    """Symbol -> OHLCV frame (float64) of 2,520 real bars re-dated onto `calendar()`."""
    dates = calendar()
    cache: dict[str, pd.DataFrame] = {}
    out = {}
    for name, offset in allocation(n_symbols):
        source = cache.setdefault(name, _series(name))
        window = source.iloc[offset : offset + N_BARS]
        out[f"{name}_{offset}"] = pd.DataFrame(
            {field: window[field].to_numpy(dtype=np.float64) for field in FIELDS}, index=dates
        )
    return out


def field_matrix(data: dict[str, pd.DataFrame], field: str = "close") -> pd.DataFrame:
    """(2,520 x n_symbols) frame of one field, columns in symbol order."""
    return pd.DataFrame({symbol: frame[field] for symbol, frame in data.items()})


def describe(n_symbols: int) -> str:
    """One line per series: its windows' offsets (the universe, printed by every script)."""
    by_series: dict[str, list[int]] = {}
    for name, offset in allocation(n_symbols):
        by_series.setdefault(name, []).append(offset)
    first, last = calendar()[0].date(), calendar()[-1].date()
    lines = [f"{n_symbols} symbols x {N_BARS:,} bars on {first}..{last} (SPY's last dates):"]
    for name, offsets in by_series.items():
        shown = ", ".join(map(str, offsets)) if len(offsets) <= 8 else (
            f"{', '.join(map(str, offsets[:4]))}, ..., {offsets[-1]}")  # fmt: skip
        lines.append(f"  {name}: {len(offsets)} window(s) at offsets {shown}")
    return "\n".join(lines)


def grid_line() -> str:
    fast, slow = pairs()
    return (f"grid: fast {FAST[0]}..{FAST[-1]} step 5 x slow {SLOW[0]}..{SLOW[-1]} step 5, "
            f"fast < slow: {len(fast):,} pairs, {len(np.unique(np.r_[fast, slow]))} distinct "
            "SMA windows")  # fmt: skip


def rel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|) elementwise; 0 where both are equal (NaN with NaN included),
    inf where only one is NaN."""
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    scale = np.maximum(np.abs(a), np.abs(b))
    out = np.divide(diff, scale, out=np.where(diff > 0, np.inf, 0.0), where=scale > 0)
    return np.where(np.isnan(out), np.inf, out)
