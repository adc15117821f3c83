"""The tables of a grid-search report, built from the grid table with pandas only.

`surface_data` and `top_combinations` turn the grid table into what the figures of
`ivybt.report.grid` draw; this module does not import plotly and is tested without it.

The grid table (the contract with the grid search), one row per combination:

- ``param_<name>`` for each parameter, in the strategy's order (float64; integer parameters
  hold whole numbers);
- the metric columns ``total_return, cagr, volatility, sharpe, sortino, max_drawdown, calmar,
  n_trades, win_rate, profit_factor, avg_win, avg_loss, exposure, gross_profit, gross_loss``
  (float64, may be NaN);
- ``valid`` (bool): the combination made enough trades to be selected. A table without this
  column is read as all valid.

Parameter and metric names are given bare ("fast", "sharpe"); the ``param_`` prefix is
accepted too. Higher is better for every metric (``max_drawdown`` is <= 0).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError

PARAM_PREFIX = "param_"
VALID_COLUMN = "valid"
REDUCERS = ("max", "median", "mean", "min")


def param_names_of(table: pd.DataFrame) -> list[str]:
    """The bare parameter names of the grid table, in column order."""
    return [_bare(str(c)) for c in table.columns if _is_param(c)]


def metric_names_of(table: pd.DataFrame) -> list[str]:
    """The metric columns of the grid table: every column but parameters and ``valid``."""
    return [str(c) for c in table.columns if not _is_param(c) and c != VALID_COLUMN]


def varying_params(table: pd.DataFrame, param_names: Sequence[str]) -> list[str]:
    """The names of `param_names` that take two or more distinct values in the table, in the
    given order."""
    return [
        name for name in param_names if table[param_column(table, name)].nunique(dropna=True) > 1
    ]


def heatmap_axes(table: pd.DataFrame, param_names: Sequence[str]) -> tuple[str, str] | None:
    """(x, y) of a heatmap over the grid table: the two varying parameters with the most
    distinct values (ties to the earlier in `param_names`), in `param_names` order.

    The axis convention of every IvyBT heatmap (grid reports, walk-forward fold heatmaps):
    x is the parameter that comes first in the strategy's order, y the later one (see
    `order_axes`), so `sma_cross` always shows fast across and slow up. None when fewer
    than two parameters vary.
    """
    varying = varying_params(table, param_names)
    if len(varying) < 2:
        return None
    ranked = sorted(varying, key=lambda n: -table[param_column(table, n)].nunique())
    first, second = order_axes(ranked[0], ranked[1], varying)
    return first, second


def order_axes(a: str, b: str, param_names: Sequence[str]) -> tuple[str, str]:
    """(x, y) of a heatmap over parameters `a` and `b`: x is the one earlier in
    `param_names` (the strategy's parameter order, Renko bar parameters first), y the later.

    Examples
    --------
    >>> order_axes("slow", "fast", ["fast", "slow"])
    ('fast', 'slow')
    """
    names = [_bare(n) for n in param_names]
    a, b = _bare(a), _bare(b)
    if a not in names or b not in names:
        missing = a if a not in names else b
        raise ConfigError(f"parameter {missing!r} is not one of {names}{_hint(missing, names)}")
    return (a, b) if names.index(a) <= names.index(b) else (b, a)


def param_column(table: pd.DataFrame, name: str) -> str:
    """The column of parameter `name` ("fast" -> "param_fast"); `ConfigError` (a
    `ValueError`) with a did-you-mean hint if the table has no such parameter."""
    bare = _bare(name)
    column = PARAM_PREFIX + bare
    if column not in table.columns:
        names = param_names_of(table)
        raise ConfigError(
            f"unknown parameter {name!r}{_hint(bare, names)}; the grid table has "
            f"parameters {names}"
        )
    return column


def metric_column(table: pd.DataFrame, name: str) -> str:
    """`name` if it is a metric column of the table; otherwise `ConfigError` (a `ValueError`)
    with a did-you-mean hint."""
    metrics = metric_names_of(table)
    if name not in metrics:
        raise ConfigError(
            f"unknown metric {name!r}{_hint(name, metrics)}; choose one of {metrics}"
        )
    return name


def surface_data(
    table: pd.DataFrame,
    *,
    x: str,
    y: str | None = None,
    metric: str,
    reduce: str = "max",
    fixed: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The values of `metric` to draw over parameter `x` (and `y`). Pure pandas.

    Parameters
    ----------
    table : the grid table (see the module docstring); not modified.
    x, y : bare parameter names. `y` None gives a curve over `x` alone.
    metric : a metric column, e.g. "sharpe".
    reduce : how the combinations sharing one (x, y) cell are summarised when the table has
        parameters besides `x` and `y`: "max" (the best the cell can reach; the default),
        "median", "mean" or "min". NaN values are skipped.
    fixed : {parameter: value} for some of the other parameters: only the rows holding that
        value are used (e.g. ``fixed={"signal": 9}``). Other parameters not in `fixed` are
        still reduced with `reduce`. A value must occur in the table's column.

    Returns
    -------
    DataFrame. With `y`: a pivot with index = every distinct `y` value of the table (named
    `y`, ascending), columns = every distinct `x` value (named `x`, ascending), cells = the
    reduced `metric` (float64). Without `y`: columns ``[x, metric]``, one row per distinct
    `x` value, ascending. The axes hold every value in the whole table, also under `fixed`,
    so surfaces cut at different fixed values line up. A cell is NaN when it has no valid
    combination: rows with ``valid == False`` are excluded, and so are combinations the
    space never held (removed by a constraint).

    Raises
    ------
    ConfigError (a ValueError) : unknown parameter or metric (with a did-you-mean hint), `y`
        equal to `x`, a `fixed` parameter that is `x` or `y`, a `fixed` value not in the
        table, or an unknown `reduce`.
    """
    return surfaces_data(table, x=x, y=y, metrics=[metric], reduce=reduce, fixed=fixed)[metric]


def surfaces_data(
    table: pd.DataFrame,
    *,
    x: str,
    y: str | None = None,
    metrics: Sequence[str],
    reduce: str = "max",
    fixed: Mapping[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """`surface_data` of each of `metrics` over the same axes, from one grouping of the
    table: {metric: what `surface_data(table, x=x, y=y, metric=metric, ...)` returns}, in
    the order given (a metric named twice comes once). A report drawing every metric's
    heatmap groups the table once, not once per metric; each column is reduced alone, so
    every frame equals the one-metric call's. Raises as `surface_data` does.
    """
    x_col = param_column(table, x)
    y_col = param_column(table, y) if y is not None else None
    names = list(dict.fromkeys(metric_column(table, metric) for metric in metrics))
    if y_col == x_col:
        raise ConfigError(f"x and y must be two different parameters; both are {x!r}")
    if reduce not in REDUCERS:
        raise ConfigError(
            f"unknown reduce {reduce!r}{_hint(reduce, REDUCERS)}; choose one of {list(REDUCERS)}"
        )
    axes = [x_col] if y_col is None else [y_col, x_col]
    valid = valid_mask(table).to_numpy()
    frame = table[axes].assign(
        **{name: table[name].astype("float64").where(valid).to_numpy() for name in names}
    )
    if fixed:
        frame = frame.loc[_fixed_mask(table, fixed, axes)]
    reduced = frame.groupby(axes, sort=True)[names].agg(reduce)
    x_values = axis_values(table, x_col)
    if y_col is None:
        return {
            metric: pd.DataFrame(
                {_bare(x): x_values.to_numpy(),
                 metric: reduced[metric].reindex(x_values).to_numpy(dtype="float64")}
            )
            for metric in names
        }  # fmt: skip
    y_values = axis_values(table, y_col)
    wide = reduced.unstack(x_col)
    surfaces = {}
    for metric in names:
        pivot = wide[metric].reindex(index=y_values, columns=x_values).astype("float64")
        pivot.index = pd.Index(y_values.to_numpy(), name=_bare(y))  # type: ignore[arg-type]
        pivot.columns = pd.Index(x_values.to_numpy(), name=_bare(x))
        surfaces[metric] = pivot
    return surfaces


def top_combinations(
    table: pd.DataFrame, *, objective: str, n: int = 20, maximize: bool = True
) -> pd.DataFrame:
    """The best `n` valid rows of `table` by `objective`, best first; NaN objectives last.

    Rows keep all their columns and their index label (the combination's row number in the
    grid table); ties keep the table's order. Fewer than `n` rows come back when fewer are
    valid. `ConfigError` (a ValueError) for an unknown objective or a negative `n`.
    """
    objective = metric_column(table, objective)
    if n < 0:
        raise ConfigError(f"n must be >= 0 rows; got {n}")
    valid = table.loc[valid_mask(table)]
    ordered = valid.sort_values(
        objective, ascending=not maximize, na_position="last", kind="stable"
    )
    return ordered.head(n)


def valid_mask(table: pd.DataFrame) -> pd.Series:
    """Boolean Series over the table's rows: the ``valid`` column (NaN as False), or all
    True when the table has none."""
    if VALID_COLUMN not in table.columns:
        return pd.Series(True, index=table.index)
    return table[VALID_COLUMN].fillna(False).astype(bool)


def _fixed_mask(table: pd.DataFrame, fixed: Mapping[str, float], axes: list[str]) -> pd.Series:
    keep = pd.Series(True, index=table.index)
    for name, value in fixed.items():
        column = param_column(table, name)
        if column in axes:
            raise ConfigError(
                f"parameter {_bare(name)!r} is on an axis of the surface and cannot also be "
                "fixed; drop it from fixed"
            )
        try:
            target = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"fixed value of {_bare(name)!r} must be a number; got {value!r}"
            ) from None
        present = table[column].to_numpy(dtype="float64")
        match = np.isclose(present, target, rtol=1e-12, atol=1e-12)
        if not match.any():
            shown = _describe_values(np.unique(present[~np.isnan(present)]))
            raise ConfigError(
                f"fixed {_bare(name)}={value!r} does not occur in the grid table; "
                f"{_bare(name)} takes {shown}"
            )
        keep &= match
    return keep


def axis_values(table: pd.DataFrame, name: str) -> pd.Index:
    """The distinct values of parameter `name` in the whole table, ascending (float64)."""
    column = param_column(table, name)
    values = np.unique(table[column].dropna().to_numpy(dtype="float64"))
    return pd.Index(values, name=column)


def _describe_values(values: np.ndarray) -> str:
    text = [f"{v:g}" for v in values]
    if len(text) > 12:
        return f"{len(text)} values: {', '.join(text[:5])}, ..., {', '.join(text[-5:])}"
    return ", ".join(text)


def _is_param(column: object) -> bool:
    return isinstance(column, str) and column.startswith(PARAM_PREFIX)


def _bare(name: str) -> str:
    return name.removeprefix(PARAM_PREFIX)


def _hint(name: str, choices: list[str] | tuple[str, ...]) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
