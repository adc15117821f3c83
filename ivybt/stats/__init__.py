"""Evidence against overfitting (issue #8): probability of backtest overfitting (CSCV),
probabilistic and deflated Sharpe ratios, Monte Carlo resampling of results.

Pure functions of return matrices and run results; the statistics' heavy loops are Numba
kernels in `ivybt.kernels`. Grids, searches and walk-forward studies call them and write
their results into `metrics.json` and the reports.
"""
