"""Choosing one combination from an in-sample surface: the best one, or the best plateau.

Both rank by the study's objective, maximised (the grid's rule: `max_drawdown` is <= 0, so
its maximum is the shallowest drawdown), over valid combinations only (enough trades and a
finite objective).

- best: the valid combination with the highest objective; ties go to the first in the
  space's enumeration order.
- plateau: each valid combination scores the mean objective of its neighbourhood, and the
  highest score wins (ties as above). The neighbourhood is the combination and every
  combination one grid step away along any subset of the parameters: a 3 x 3 box for two
  parameters, 3^k cells for k. A step is one position in the sorted list of values a
  parameter takes in the space, so the neighbourhood follows the grid as specified
  (`5:50:5` -> 5 apart). Invalid combinations and those a constraint removed are left out
  of the mean. A lone spike among poor neighbours scores low; a broad high region scores
  high, which is what tends to survive out of sample.
"""

from __future__ import annotations

import itertools

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D
from ivybt.errors import ConfigError

SELECTIONS = ("best", "plateau")


def select(combos: Float64Array2D, objective: Float64Array1D, valid: np.ndarray, how: str) -> int:
    """The chosen row of `combos` (n_combos, n_params), or -1 when no row is valid."""
    if how not in SELECTIONS:
        raise ConfigError(f"unknown selection {how!r}; choose best or plateau")
    usable = valid & np.isfinite(objective)
    if not usable.any():
        return -1
    score = plateau_scores(combos, objective, usable) if how == "plateau" else objective
    ranked = np.where(usable, score, -np.inf)
    return int(np.argmax(ranked))


def plateau_scores(
    combos: Float64Array2D, objective: Float64Array1D, usable: np.ndarray
) -> Float64Array1D:
    """Mean objective over each combination's grid neighbourhood (module docstring).

    Returns float64 (n_combos,): NaN where the combination itself is not usable.
    """
    n_combos, n_params = combos.shape
    axes = [np.unique(combos[:, k]) for k in range(n_params)]
    position = np.column_stack(
        [np.searchsorted(axes[k], combos[:, k]) for k in range(n_params)]
    ) if n_params else np.zeros((n_combos, 0), dtype=np.int64)  # fmt: skip
    shape = tuple(len(axis) + 2 for axis in axes)  # one cell of padding on every side
    total = np.zeros(shape)
    count = np.zeros(shape)
    cells = tuple(position[:, k] + 1 for k in range(n_params))
    total[cells] = np.where(usable, objective, 0.0)
    count[cells] = usable.astype(np.float64)
    box_total = np.zeros(shape)
    box_count = np.zeros(shape)
    for shift in itertools.product((-1, 0, 1), repeat=n_params):
        box_total += np.roll(total, shift, axis=tuple(range(n_params)))
        box_count += np.roll(count, shift, axis=tuple(range(n_params)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = box_total[cells] / box_count[cells]
    return np.where(usable, mean, np.nan)
