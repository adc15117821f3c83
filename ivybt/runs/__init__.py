"""The public API: one function per command, each orchestrating a run and writing its folder.

- `backtest`: `ivybt.backtest`, `BacktestResult`, and the API keywords every command shares.
- `grid`: `ivybt.grid`, `GridResult`; `grid_export`: a grid as an Optuna study.
- `optimize`: `ivybt.optimize`, `SearchResult`, and a search's run folder.
- `walkforward`: `ivybt.walk_forward`, `WalkForwardResult`; `surface`: `ivybt surface`.
- `montecarlo`: `ivybt montecarlo RUN_DIR`, resampling a finished run.
- `lookahead`: `check_lookahead`, the look-ahead check from API keywords.
- `folder`: the run folder (manifest.json, reuse and `--overwrite` rules).

Each result has `.plot()` (the report's figures) and a run folder. `runs` may import
`ivybt.studies` and `ivybt.report`; neither imports `runs`, and only `ivybt.cli` sits above
it (`tests/test_layers.py`).
"""
