"""Evidence against overfitting (issue #8): probability of backtest overfitting (CSCV),
probabilistic and deflated Sharpe ratios (Monte Carlo resampling of a run's results is the
command `ivybt.runs.montecarlo`).

Pure functions of return matrices; the statistics' heavy loops are Numba kernels in
`ivybt.kernels`. Grids, searches and walk-forward studies call them and write
their results into `metrics.json` and the reports.
"""

from ivybt.stats.pbo import PBOResult, probability_of_overfitting
from ivybt.stats.sharpe import (
    DSRResult,
    deflated_sharpe,
    deflated_sharpe_of_trials,
    min_track_record_length,
    probabilistic_sharpe,
    sharpe_moments,
)

__all__ = [
    "DSRResult",
    "PBOResult",
    "deflated_sharpe",
    "deflated_sharpe_of_trials",
    "min_track_record_length",
    "probabilistic_sharpe",
    "probability_of_overfitting",
    "sharpe_moments",
]
