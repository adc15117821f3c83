"""Studies over kernels: grids, Optuna searches, walk-forward folds, overfitting statistics
(filled from issue #5). Optuna is imported here and nowhere below this layer."""
