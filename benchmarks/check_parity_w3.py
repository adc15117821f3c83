"""W3 parity: IvyBT vs vectorbt, total return and Sharpe per pair's portfolio, 1e-9 relative.

    .venv/bin/python benchmarks/w3_portfolio.py --skip-large
    benchmarks/.venv-peers/bin/python benchmarks/peers/w3_vectorbt.py
    .venv/bin/python benchmarks/check_parity_w3.py

Compares benchmarks/results/w3_ivybt_fee<f>.parquet (close fills) with
  A. w3_vectorbt_fee<f>.parquet: vectorbt end to end (its own MA.run SMAs), and
  B. w3_vectorbt_on_ivybt_sma_fee<f>.parquet: vectorbt's crossovers and from_orders on
     IvyBT's SMA values, which isolates the account (sizing, order, fills) from the SMAs,
for fees f = 0 (where the conventions coincide) and f = 0.001 (where they do not: IvyBT
reserves the commission inside the target, |w| E / (1 + fee); vectorbt's targetpercent
buys |w| E of notional and pays the fee on top, so it is shown, not expected to agree).
A pair agrees when |ivybt - vectorbt| <= 1e-9 x max(|ivybt|, |vectorbt|) for both metrics.
For pairs that differ in A it counts the (symbol, bar) cells where sign(fast - slow)
differs between IvyBT's SMA values and vectorbt's (a near-tie rounded differently moves a
crossover, and so a rebalance of the whole account, by a bar).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w3_data

RTOL = 1e-9
METRICS = ("total_return", "sharpe")


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[np.ndarray, str]:
    if not (ours["fast"].equals(theirs["fast"]) and ours["slow"].equals(theirs["slow"])):
        raise SystemExit("the two result files list different pairs")
    differ = np.zeros(len(ours), dtype=bool)
    lines = []
    for metric in METRICS:
        rel = w3_data.rel_diff(ours[metric].to_numpy(), theirs[metric].to_numpy())
        differ |= rel > RTOL
        lines.append(f"{metric}: max rel {rel.max():.3g}, median rel {np.median(rel):.3g}, "
                     f"{int((rel > RTOL).sum())} differ")  # fmt: skip
    return differ, "; ".join(lines)


def sign_cells(ours: np.ndarray, theirs: np.ndarray, windows, f: int, s: int) -> np.ndarray:
    """(symbol, bar) cells of pair (f, s) where sign(fast - slow) differs between the two SMA
    tables, by kind: (vectorbt's exactly 0 and IvyBT's not, the reverse, opposite signs)."""
    at = {int(w): k for k, w in enumerate(windows)}
    a = np.sign(ours[:, at[int(f)]] - ours[:, at[int(s)]])
    b = np.sign(theirs[:, at[int(f)]] - theirs[:, at[int(s)]])
    seen = ~np.isnan(a) & ~np.isnan(b) & (a != b)
    return np.array([np.sum(seen & (b == 0)), np.sum(seen & (a == 0)),
                     np.sum(seen & (a != 0) & (b != 0))])  # fmt: skip


def main() -> None:
    results = w3_data.RESULTS_DIR
    for fee in (0.0, w3_data.COMMISSION):
        ours_path = results / f"w3_ivybt_fee{fee:g}.parquet"
        if not ours_path.exists():
            print(f"no {ours_path.name}: run benchmarks/w3_portfolio.py")
            continue
        ours = pd.read_parquet(ours_path)
        print(f"\n== W3, commission {fee:g}, close fills: {len(ours):,} pairs, tolerance "
              f"{RTOL:g} relative")  # fmt: skip
        runs = (
            ("A. vectorbt end to end", f"w3_vectorbt_fee{fee:g}"),
            ("B. vectorbt on IvyBT's SMA", f"w3_vectorbt_on_ivybt_sma_fee{fee:g}"),
        )
        for label, name in runs:
            path = results / f"{name}.parquet"
            if not path.exists():
                print(f"{label}: no {path.name}; run benchmarks/peers/w3_vectorbt.py")
                continue
            differ, line = compare(ours, pd.read_parquet(path))
            print(f"{label}: {len(ours) - differ.sum():,} agree, {differ.sum():,} differ\n"
                  f"   {line}")  # fmt: skip
            if differ.any() and not differ.all():
                _, agreeing = compare(
                    ours[~differ].reset_index(drop=True),
                    pd.read_parquet(path)[~differ].reset_index(drop=True),
                )
                print(f"   over the agreeing pairs: {agreeing}")
            if label.startswith("A") and differ.any() and fee == 0.0:
                windows = np.load(results / "w3_ivybt_sma_windows.npy")
                ours_sma = np.load(results / "w3_ivybt_sma.npy")
                theirs_sma = np.load(results / "w3_vectorbt_sma.npy")
                fast, slow = ours["fast"].to_numpy(), ours["slow"].to_numpy()
                kinds = np.array([sign_cells(ours_sma, theirs_sma, windows, f, s)
                                  for f, s in zip(fast, slow, strict=True)])  # fmt: skip
                flips = kinds.sum(axis=1)
                print(f"   pairs with a (symbol, bar) where sign(fast - slow) differs between "
                      f"IvyBT's SMA and vectorbt's: {int((flips > 0).sum())} of all "
                      f"{len(ours):,}; among the {int(differ.sum())} differing pairs "
                      f"{int((flips[differ] > 0).sum())}, among the agreeing "
                      f"{int((flips[~differ] > 0).sum())}")  # fmt: skip
                total = kinds.sum(axis=0)
                print(f"   such cells over all pairs: {total[0]} where vectorbt's fast - slow "
                      f"is exactly 0 and IvyBT's is not, {total[1]} the reverse, {total[2]} "
                      "of opposite signs")  # fmt: skip


if __name__ == "__main__":
    main()
