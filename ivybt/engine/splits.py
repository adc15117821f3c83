"""Splits of a bar range into parts that are fitted on and parts that are judged on.

Slices are half-open `[start, stop)` bar indices. A train/test split keeps the bars in order:
train = the first `floor(n_bars x train_fraction)` bars, test = the rest, with no gap and no
overlap; the test part may use the training bars to warm up indicators, never to trade.
It is a one-fold walk-forward: `ivybt.studies.windows.train_test_fold` gives it as a `Fold`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivybt.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from ivybt.config import SplitConfig


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


def run_split(
    split: SplitConfig, index: pd.DatetimeIndex
) -> tuple[dict[str, Any] | None, slice, int]:
    """A run's train/test decision on the bars `index`: (the split's record for the manifest,
    None for a full run; the window to trade; the bars of history the signals may use, the
    training bars only in train mode, so nothing after the split exists for the run)."""
    n_bars = len(index)
    if split.run_mode == "full" or split.train_split is None:
        return None, slice(0, n_bars), n_bars
    parts = train_test_split(n_bars, split.train_split)
    record = {
        "train_split": split.train_split,
        "run_mode": split.run_mode,
        "split_index": parts.split,
        "split_time": index[parts.split].isoformat(),
        "train_bars": parts.split,
        "test_bars": n_bars - parts.split,
    }
    if split.run_mode == "train":
        return record, parts.train, parts.split
    return record, parts.test, n_bars
