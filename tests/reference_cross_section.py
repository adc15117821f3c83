"""Slow, obvious twins of the cross-sectional kernels (`ivybt.kernels.cross_section`):
pandas for the scores, Python's sort for the ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def momentum_scores(close: np.ndarray, lookback: int, skip: int) -> np.ndarray:
    """close[t - skip] / close[t - skip - lookback] - 1 per symbol, NaN before it exists."""
    frame = pd.DataFrame(close)
    return (frame.shift(skip) / frame.shift(skip + lookback) - 1.0).to_numpy()


def rank_sides(
    scores: np.ndarray, at: np.ndarray, first: np.ndarray, last: np.ndarray, k: int, mode: str
) -> np.ndarray:
    """Sides from ranks at the selection bars: highest score first, ties by symbol order;
    "top" longs the first k, "bottom" shorts the last k, "long_short" both (the short side
    from what the long side left); kept between selection bars while listed."""
    n_bars, n_symbols = scores.shape
    out = np.zeros((n_bars, n_symbols), dtype=np.int8)
    side = [0] * n_symbols
    for t in range(n_bars):
        if at[t]:
            ranked = sorted(
                (s for s in range(n_symbols)
                 if first[s] <= t <= last[s] and np.isfinite(scores[t, s])),
                key=lambda s: (-scores[t, s], s),
            )  # fmt: skip
            side = [0] * n_symbols
            longs = ranked[:k] if mode in ("top", "long_short") else []
            rest = ranked[len(longs) :]
            shorts = rest[::-1][:k] if mode in ("bottom", "long_short") else []
            for s in longs:
                side[s] = 1
            for s in shorts:
                side[s] = -1
        for s in range(n_symbols):
            out[t, s] = side[s] if first[s] <= t <= last[s] else 0
    return out
