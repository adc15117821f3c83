"""PBO by CSCV (issue #8): `probability_of_overfitting` with 16 blocks (12,870 splits) on a
W1-sized return matrix, 2,520 periods x 15,247 combinations, and on 2,520 x 1,000.

    .venv/bin/python benchmarks/pbo.py [--repeats 5] [--skip-full]

The matrix is synthetic but shaped like a long-only grid's daily returns (seed 0): one market
series, SPY-like (mean 0.04%, std 1.1% a day), which every combination holds on a random 60%
of the days and sits out (return 0) on the rest, plus 0.2% of idiosyncratic noise when in the
market. The grid engine does not keep per-bar returns of every combination yet (issue #8), and
the cost of CSCV does not depend on the values, only on the shape. Before timing, the result
on a 2,520 x 40 slice (10 blocks, 252 splits) is checked against the slow twin in
tests/test_pbo.py. Prints the machine, the warm times (after an untimed call that loads the
Numba cache or compiles) and the peak RSS of this process; asserts no time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

from ivybt.stats.pbo import probability_of_overfitting

N_PERIODS = 2520
N_COMBINATIONS = 15_247  # W1's pairs


def grid_like_returns(n_periods: int, n_columns: int, seed: int = 0) -> np.ndarray:
    """float64 (n_periods, n_columns): a shared market series, held 60% of the days. Built a
    few rows at a time, so no temporary as large as the matrix inflates the peak RSS."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.011, size=n_periods)
    returns = np.empty((n_periods, n_columns), dtype=np.float64)
    for start in range(0, n_periods, 64):
        rows = slice(start, min(start + 64, n_periods))
        chunk = rng.normal(0.0, 0.002, size=(rows.stop - rows.start, n_columns))
        chunk += market[rows, None]
        chunk *= rng.random(chunk.shape) < 0.6
        returns[rows] = chunk
    return returns


def check_parity(returns: np.ndarray) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests/
    from tests.test_pbo import cscv_reference

    sample = np.ascontiguousarray(returns[:, :40])
    got = probability_of_overfitting(sample, blocks=10)
    logits, is_sharpe, oos_sharpe, winners = cscv_reference(sample, 10)
    assert np.array_equal(got.winners, winners) and np.array_equal(got.logits, logits)
    assert np.allclose(got.is_sharpe, is_sharpe, rtol=1e-12, atol=0.0)
    assert np.allclose(got.oos_sharpe, oos_sharpe, rtol=1e-12, atol=0.0, equal_nan=True)
    print(f"parity: {len(logits)} splits x 40 columns equal the twin (logits, winners exact)")


def run(returns: np.ndarray, repeats: int) -> None:
    n_periods, n_columns = returns.shape
    result = probability_of_overfitting(returns, blocks=16)  # warm-up: cache load / compile
    median, times = w1_data.median_time(
        lambda: probability_of_overfitting(returns, blocks=16), repeats
    )
    print(f"{n_periods:,} x {n_columns:,}, 16 blocks, {result.n_splits:,} splits: warm (s) "
          f"{', '.join(f'{t:.3f}' for t in times)}; median {median:.3f} s; "
          f"PBO {result.pbo:.3f}; peak RSS so far {w1_data.peak_rss_mb():.0f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true", help="only 2,520 x 1,000")
    args = parser.parse_args()
    print(w1_data.machine())
    before = w1_data.peak_rss_mb()
    returns = grid_like_returns(N_PERIODS, N_COMBINATIONS)
    matrix_mb = returns.nbytes / 2**20
    print(f"imports {before:.0f} MiB; return matrix {matrix_mb:.0f} MiB")
    check_parity(returns)
    run(np.ascontiguousarray(returns[:, :1000]), args.repeats)
    if not args.skip_full:
        run(returns, args.repeats)
    print(f"peak RSS {w1_data.peak_rss_mb():.0f} MiB (imports + matrix: "
          f"{before + matrix_mb:.0f} MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
