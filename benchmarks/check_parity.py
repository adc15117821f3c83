"""W1 parity: IvyBT vs vectorbt, total return and Sharpe per pair, to 1e-9 relative.

    .venv/bin/python benchmarks/w1_grid.py
    benchmarks/.venv-peers/bin/python benchmarks/peers/w1_vectorbt.py
    .venv/bin/python benchmarks/check_parity.py

Compares benchmarks/results/w1_ivybt_<data>.parquet with
  A. w1_vectorbt_<data>.parquet: vectorbt end to end (its own MA.run SMAs), and
  B. w1_vectorbt_on_ivybt_sma_<data>.parquet: vectorbt's crossed_above / crossed_below and
     from_signals on IvyBT's SMA table, which isolates signals, fills, fees and metrics from
     the SMA arithmetic.
A pair agrees when |ivybt - vectorbt| <= 1e-9 x max(|ivybt|, |vectorbt|) for both metrics
(NaN agrees with NaN only). For each pair that differs in A, it checks whether the two SMA
tables give fast - slow a different sign (-, 0, +) on some bar: a near-tie where the two
rolling means round differently, which moves a crossover by a bar; and how close each
SMA table is to the correctly rounded mean (math.fsum of the window / w) on sampled cells.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import w1_data

RTOL = 1e-9
METRICS = ("total_return", "sharpe")
SEED = 0
N_SAMPLED = 2000  # SMA cells per window checked against math.fsum


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Mask of pairs that differ, and one line of max abs / rel differences per metric."""
    if not (ours["fast"].equals(theirs["fast"]) and ours["slow"].equals(theirs["slow"])):
        raise SystemExit("the two result files list different pairs")
    differ = np.zeros(len(ours), dtype=bool)
    lines = []
    for metric in METRICS:
        a, b = ours[metric].to_numpy(), theirs[metric].to_numpy()
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        scale = np.maximum(np.abs(a), np.abs(b))
        rel = np.divide(diff, scale, out=np.where(diff > 0, np.inf, 0.0), where=scale > 0)
        bad = ~(diff <= RTOL * scale) & ~both_nan  # NaN vs number counts as different
        differ |= bad
        lines.append(f"{metric}: max abs {np.nanmax(diff):.3g}, max rel {np.nanmax(rel):.3g}, "
                     f"{int(bad.sum())} differ")  # fmt: skip
    return differ, "; ".join(lines)


def sign_flips(ours_sma: np.ndarray, theirs_sma: np.ndarray, fast, slow) -> np.ndarray:
    """Per pair, bars where sign(fast - slow) differs between the two SMA tables, by kind:
    columns (IvyBT nonzero / vectorbt exactly 0, IvyBT 0 / vectorbt nonzero, opposite signs)."""
    out = np.zeros((len(fast), 3), dtype=np.int64)
    for j, (f, s) in enumerate(zip(fast, slow, strict=True)):
        a = np.sign(ours_sma[f - 2] - ours_sma[s - 2])
        b = np.sign(theirs_sma[f - 2] - theirs_sma[s - 2])
        seen = ~np.isnan(a) & ~np.isnan(b) & (a != b)
        out[j] = [np.sum(seen & (b == 0)), np.sum(seen & (a == 0)),
                  np.sum(seen & (a != 0) & (b != 0))]  # fmt: skip
    return out


def sma_accuracy(close: np.ndarray, table: np.ndarray) -> tuple[float, float]:
    """(share of sampled cells equal to math.fsum(window) / w, max relative error)."""
    rng = np.random.default_rng(SEED)
    equal, worst, count = 0, 0.0, 0
    for w in (2, 5, 17, 50, 101, 204):
        for t in rng.integers(w - 1, len(close), N_SAMPLED):
            exact = math.fsum(close[t - w + 1 : t + 1]) / w
            equal += bool(table[w - 2, t] == exact)
            worst = max(worst, abs(table[w - 2, t] - exact) / abs(exact))
            count += 1
    return equal / count, worst


def check(name: str) -> None:
    results = w1_data.RESULTS_DIR
    ours_path = results / f"w1_ivybt_{name}.parquet"
    if not ours_path.exists():
        print(f"\n{name}: no IvyBT results; run benchmarks/w1_grid.py")
        return
    ours = pd.read_parquet(ours_path)
    print(f"\n== W1 {name}: {len(ours):,} pairs, tolerance {RTOL:g} relative")
    path_a = results / f"w1_vectorbt_{name}.parquet"
    if path_a.exists():
        differ, line = compare(ours, pd.read_parquet(path_a))
        print(f"A. vectorbt end to end: {len(ours) - differ.sum():,} agree, "
              f"{differ.sum():,} differ\n   {line}")  # fmt: skip
        ours_sma = np.load(results / f"w1_ivybt_{name}_sma.npy")
        theirs_sma = np.load(results / f"w1_vectorbt_{name}_sma.npy")
        fast, slow = ours["fast"].to_numpy(), ours["slow"].to_numpy()
        kinds = sign_flips(ours_sma, theirs_sma, fast[differ], slow[differ])
        flips = kinds.sum(axis=1) > 0
        both = ~np.isnan(ours_sma) & ~np.isnan(theirs_sma)
        sma_rel = np.max(np.abs(ours_sma - theirs_sma)[both] / np.abs(ours_sma[both]))
        _, agreeing = compare(ours[~differ], pd.read_parquet(path_a)[~differ])
        print(f"   over the {(~differ).sum():,} agreeing pairs: {agreeing}")
        print(f"   SMA tables: max rel difference {sma_rel:.3g}; of the {differ.sum():,} "
              f"differing pairs, {flips.sum():,} have a bar where sign(fast - slow) differs "
              f"between IvyBT's and vectorbt's SMA, {(~flips).sum():,} do not")  # fmt: skip
        close = w1_data.load_close(name).to_numpy()
        for who, sma in (("IvyBT", ours_sma), ("vectorbt", theirs_sma)):
            share, worst = sma_accuracy(close, sma)
            print(f"   {who} SMA vs math.fsum(window) / w on {6 * N_SAMPLED:,} sampled cells: "
                  f"{share:.1%} equal, max rel error {worst:.2g}")  # fmt: skip
        print(f"   such bars: {kinds[:, 0].sum()} where vectorbt's fast - slow is exactly 0 "
              f"and IvyBT's is not, {kinds[:, 1].sum()} the reverse, {kinds[:, 2].sum()} "
              "with opposite signs")  # fmt: skip
        for f, s in list(zip(fast[differ][~flips], slow[differ][~flips], strict=True))[:10]:
            print(f"   unexplained: fast={f} slow={s}")
    else:
        print("A. no vectorbt results; run benchmarks/peers/w1_vectorbt.py")
    path_b = results / f"w1_vectorbt_on_ivybt_sma_{name}.parquet"
    if path_b.exists():
        differ, line = compare(ours, pd.read_parquet(path_b))
        print(f"B. vectorbt on IvyBT's SMA: {len(ours) - differ.sum():,} agree, "
              f"{differ.sum():,} differ\n   {line}")  # fmt: skip
    else:
        print("B. no vectorbt-on-IvyBT-SMA results; run benchmarks/peers/w1_vectorbt.py")


def main() -> None:
    for name in w1_data.DATASETS:
        check(name)


if __name__ == "__main__":
    main()
