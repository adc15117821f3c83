"""Workload W1 (issue #5), shared by every W1 script: the bars, the grid and the machine.

Imports only numpy and pandas, so the peer scripts (run in benchmarks/.venv-peers, where
IvyBT is not installed) read exactly the bars IvyBT's `load_sample` reads: the bundled parquet
files in ivybt/data/sample/.

W1: long-only SMA cross, fast 2..101 x slow 5..204 with fast < slow (15,247 pairs), fill at
the signal bar's close, 0.1% commission per side, no slippage, all-in; total return and Sharpe
(mean / std(ddof=1) of per-bar returns x sqrt(periods_per_year)) per pair.
"""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
SAMPLE_DIR = ROOT.parent / "ivybt" / "data" / "sample"
RESULTS_DIR = ROOT / "results"

FAST = np.arange(2, 102)  # 2..101 inclusive
SLOW = np.arange(5, 205)  # 5..204 inclusive
COMMISSION = 0.001

# name -> bundled file, bars kept (the last n; None = all), vectorbt freq, periods per year.
# 252 is IvyBT's value for daily weekday bars; 6205 is what IvyBT infers for this 1h EURUSD
# series (`ivybt.periods.infer_periods_per_year`: bars per 365.25 days over its span).
# No longer permissively licensed 1h series exists in shared/data, so the "100,000 bars"
# workload runs on all 74,439 bars of EURUSD 1h, unscaled.
DATASETS: dict[str, dict[str, object]] = {
    "spy": {"file": "SPY_1d.parquet", "last": 2520, "freq": "1D", "periods_per_year": 252.0},
    "eurusd": {"file": "EURUSD_1h.parquet", "last": None, "freq": "1h",
               "periods_per_year": 6205.0},
}  # fmt: skip


def pairs() -> tuple[np.ndarray, np.ndarray]:
    """(fast, slow) int64 arrays of the 15,247 pairs, fast-major: IvyBT's enumeration order."""
    fast, slow = np.meshgrid(FAST, SLOW, indexing="ij")
    keep = fast < slow
    return fast[keep].astype(np.int64), slow[keep].astype(np.int64)


def load_bars(name: str) -> pd.DataFrame:
    """OHLCV bars of dataset `name`, read straight from the bundled parquet file."""
    spec = DATASETS[name]
    frame = pd.read_parquet(SAMPLE_DIR / str(spec["file"]))
    if spec["last"] is not None:
        frame = frame.iloc[-int(spec["last"]) :]  # type: ignore[call-overload]
    return frame


def load_close(name: str) -> pd.Series:
    """Close prices of dataset `name` (float64), as `load_bars` reads them."""
    return load_bars(name)["close"].astype(np.float64)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB: VmHWM of /proc/self/status.

    Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries that across exec, so a child
    started by a big parent (subprocess uses vfork) reports the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Largest peak RSS among this process's finished children, MiB (forked children count
    the pages they share with the parent)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def machine() -> str:
    """One line: CPU model, cores, NUMBA_NUM_THREADS, Python, 1-minute load average (anything
    else running on the machine skews every figure: check it is below ~0.3 before a run)."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    threads = os.environ.get("NUMBA_NUM_THREADS", "unset (numba default = cores)")
    return (
        f"{model}, {os.cpu_count()} cores, NUMBA_NUM_THREADS={threads}, "
        f"Python {platform.python_version()}, Linux {platform.release()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def median_time(run, repeats: int) -> tuple[float, list[float]]:
    """Median and all wall times (perf_counter, seconds) of `repeats` calls of `run()`."""
    from time import perf_counter

    times = []
    for _ in range(repeats):
        start = perf_counter()
        run()
        times.append(perf_counter() - start)
    return float(np.median(times)), times
