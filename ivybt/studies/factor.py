"""The factor view of a cross-sectional strategy: how well its scores rank the returns that
follow them (what alphalens shows, computed with numpy and pandas).

Conventions:
- A period runs from one selection bar t to the next one u (the holding period of that
  selection); the last selection bar has no period. A symbol's **forward return** is
  close[u] / close[t] - 1, closes carried over gaps (`Panel.mark`); a symbol without a score
  at t or a close at t or u is left out of that period.
- The **information coefficient** (IC) of a period is Spearman's rank correlation of the
  scores with the forward returns (Pearson's correlation of their ranks, ties at their mean
  rank) over the symbols in it; a period with fewer than 3 symbols, or constant scores or
  returns, has none. Summary: the mean IC, its standard deviation (ddof 1), the t-statistic
  mean / (std / sqrt(n)) and the share of periods with a positive IC.
- **Quantile returns**: in each period the symbols are cut into `QUANTILES` groups by score
  rank (1: the lowest scores; the pct rank, ties in universe order, times the count, rounded
  up), and each group's forward returns are averaged over every (period, symbol); the
  spread is the top group's mean minus the bottom group's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array2D, Int8Array1D

QUANTILES = 5
MIN_SYMBOLS = 3


@dataclass(frozen=True)
class FactorView:
    """ic : per period (indexed by its selection bar's time): ic, n_symbols, end (the next
    selection bar's time). quantiles : per score quantile 1..QUANTILES: mean forward return
    and observations. summary : ic_mean, ic_std, ic_t, ic_positive, n_periods, spread."""

    ic: pd.DataFrame
    quantiles: pd.DataFrame
    summary: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The summary and the quantile table, for metrics.json."""
        quantiles = {int(q): {"mean_forward_return": _plain(row["mean_forward_return"]),
                              "observations": int(row["observations"])}
                     for q, row in self.quantiles.iterrows()}  # fmt: skip
        return {**{key: _plain(value) for key, value in self.summary.items()},
                "quantiles": quantiles}  # fmt: skip


def factor_view(
    scores: Float64Array2D, close: Float64Array2D, at: Int8Array1D, index: pd.Index
) -> FactorView:
    """The factor view of `scores` (float64, (n_bars, n_symbols)) at the selection bars
    `at` (int8, (n_bars,)) against the forward returns of `close` (module docstring)."""
    bars = np.flatnonzero(at)
    rows = []
    pooled: list[tuple[int, float]] = []
    for t, u in itertools.pairwise(bars):
        forward = close[u] / close[t] - 1.0
        score = scores[t]
        keep = np.isfinite(score) & np.isfinite(forward)
        n = int(keep.sum())
        ic = _spearman(score[keep], forward[keep]) if n >= MIN_SYMBOLS else math.nan
        rows.append((index[t], ic, n, index[u]))
        if n > 0:
            pct = pd.Series(score[keep]).rank(method="first", pct=True).to_numpy()
            groups = np.ceil(pct * QUANTILES).astype(int)
            pooled.extend(zip(groups.tolist(), forward[keep].tolist(), strict=True))
    ic = pd.DataFrame(rows, columns=["time", "ic", "n_symbols", "end"]).set_index("time")
    table = pd.DataFrame(pooled, columns=["quantile", "forward_return"])
    quantiles = (table.groupby("quantile")["forward_return"].agg(["mean", "size"])
                 .reindex(range(1, QUANTILES + 1))
                 .rename(columns={"mean": "mean_forward_return", "size": "observations"})
                 .fillna({"observations": 0}))  # fmt: skip
    quantiles.index.name = "quantile"
    values = ic["ic"].dropna().to_numpy()
    n_periods = len(values)
    mean = float(values.mean()) if n_periods else math.nan
    std = float(values.std(ddof=1)) if n_periods > 1 else math.nan
    t_stat = mean / (std / math.sqrt(n_periods)) if n_periods > 1 and std > 0 else math.nan
    top, bottom = (
        quantiles["mean_forward_return"].iloc[-1],
        quantiles["mean_forward_return"].iloc[0],
    )
    summary = {"ic_mean": mean, "ic_std": std, "ic_t": t_stat,
               "ic_positive": float((values > 0).mean()) if n_periods else math.nan,
               "n_periods": float(n_periods), "spread": float(top - bottom)}  # fmt: skip
    return FactorView(ic, quantiles, summary)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's of the average ranks; NaN when one is constant."""
    ra = pd.Series(a).rank(method="average").to_numpy()
    rb = pd.Series(b).rank(method="average").to_numpy()
    da, db = ra - ra.mean(), rb - rb.mean()
    scale = math.sqrt(float((da * da).sum())) * math.sqrt(float((db * db).sum()))
    return float((da * db).sum() / scale) if scale > 0 else math.nan


def _plain(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
