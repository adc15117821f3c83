"""Alternative bar types built from standard OHLCV bars: Renko bricks (issue #7).

Each brick stays tied to the real bar that completed it (`bar` column, timestamp index), so
strategies on bricks fill at the next real bar's open and metrics stay on the real timeline.
See docs/renko.md.
"""

from __future__ import annotations

from ivybt.bars.renko import RenkoSettings, brick_bars, renko_bricks, renko_columns

__all__ = ["RenkoSettings", "brick_bars", "renko_bricks", "renko_columns"]
