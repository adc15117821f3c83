"""Splits of a bar range into parts that are fitted on and parts that are judged on.

Slices are half-open `[start, stop)` bar indices. A train/test split keeps the bars in order:
train = the first `floor(n_bars x train_fraction)` bars, test = the rest, with no gap and no
overlap; the test part may use the training bars to warm up indicators, never to trade.
It is a one-fold walk-forward: `ivybt.studies.windows.train_test_fold` computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivybt.studies.windows import train_test_fold


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
    """Split `n_bars` so the first `floor(n_bars x train_fraction)` bars are the training part."""
    return TrainTestSplit(n_bars, train_test_fold(n_bars, train_fraction).is_end)
