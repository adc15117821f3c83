"""Splits of a bar range into parts that are fitted on and parts that are judged on.

Slices are half-open `[start, stop)` bar indices. A train/test split keeps the bars in order:
train = the first `floor(n_bars x train_fraction)` bars, test = the rest, with no gap and no
overlap; the test part may use the training bars to warm up indicators, never to trade.
It is a one-fold walk-forward: `ivybt.studies.windows.train_test_fold` gives it as a `Fold`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ivybt.errors import ConfigError


@dataclass(frozen=True)
class TrainTestSplit:
    """Train bars `[0, split)`, test bars `[split, n_bars)`."""

    n_bars: int
    split: int

    @property
    def train(self) -> slice:
        return slice(0, self.split)

    @property
    def test(self) -> slice:
        return slice(self.split, self.n_bars)


def train_test_split(n_bars: int, train_fraction: float) -> TrainTestSplit:
    """Split `n_bars` so the first `floor(n_bars x train_fraction)` bars are the training part;
    each part needs 2 bars (`ConfigError` otherwise, as for a fraction outside (0, 1))."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(
            f"train fraction must be in (0, 1), got {train_fraction}; e.g. --train-split 0.7"
        )
    split = math.floor(n_bars * train_fraction)
    if split < 2 or n_bars - split < 2:
        raise ConfigError(
            f"a train split of {train_fraction} of {n_bars} bars leaves {split} train and "
            f"{n_bars - split} test bars; each part needs at least 2: use more data or "
            "another --train-split"
        )
    return TrainTestSplit(n_bars, split)
