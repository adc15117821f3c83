"""One run's arrays: bars and the decisions about them -> indicator tables -> targets ->
kernel calls -> simulation results.

- `inputs`: what every run needs before its kernels (bars, traded window, history, periods
  per year) from one `RunConfig`.
- `splits`: the train/test split of a bar range.
- `tables`: every distinct indicator a set of strategies needs, computed once.
- `simulation`: one strategy on one bar series: targets, fills, trades, metrics.
- `user_kernels`: a plug-in's signal kernel, run under checks.

Below: `ivybt.kernels` (Numba), `ivybt.bars`, `ivybt.data`, `ivybt.strategies`. Above:
`ivybt.studies` (many runs), `ivybt.runs` (the API and its run folders). The engine imports
neither (`tests/test_layers.py`).
"""
