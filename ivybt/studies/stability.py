"""Stability scores of a walk-forward study, from its two tables (pandas and numpy only).

Every score is defined in docs/stability.md; this module is its implementation. The inputs are
the walk-forward engine's tables:

- ``surface`` (surface.parquet): one row per (fold, side, combination): ``fold``, ``side``
  ("is" or "oos"), ``combo`` (the combination's row in the grid, the same in every fold),
  ``param_<name>`` per parameter, the metric columns, ``valid`` (bool);
- ``folds`` (folds.parquet): one row per fold: ``fold``, the window bounds and dates, ``combo``
  (the chosen combination, -1 when none was valid) and ``param_<name>`` (its values), the IS
  and OOS metrics of the choice, ``wfe``.

Scores are plain Python values (floats, ints, bools, lists, dicts): an undefined score is
``float("nan")`` (turning it into JSON ``null`` is the caller's job) and an undefined yes/no
answer is ``None``.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES

MIN_COMBOS = 3  # fewer combinations than this on the compared surfaces: the score is NaN
TOP_FRACTION_DENOMINATOR = 10  # the top decile: the ceil(n / 10) best combinations
SIDES = ("is", "oos")
KEY_COLUMNS = ("fold", "side", "combo", "valid")
NO_CHOICE = -1  # folds.combo when no combination was valid in-sample


def stability_scores(
    surface: pd.DataFrame,
    folds: pd.DataFrame,
    *,
    objective: str,
    params: Sequence[str],
    maximize: bool = True,
) -> dict[str, Any]:
    """The stability scores of a walk-forward run, as defined in docs/stability.md.

    Parameters
    ----------
    surface, folds : the walk-forward tables (see the module docstring); not modified.
    objective : the metric the folds were selected by, e.g. "sharpe".
    params : bare parameter names ("fast"; "param_fast" is accepted too).
    maximize : whether a higher `objective` is better. Rank correlations do not depend on it;
        the top-decile scores do.

    Returns
    -------
    dict with ``objective``, ``maximize``, ``folds`` (fold numbers, ascending), ``pairs``
    (consecutive fold pairs ``[k, k+1]``) and the scores:

    - ``is_oos_rank_corr``: ``{"per_fold": [...], "mean": x}``, Spearman of each fold's IS
      objective with its OOS objective over the combinations valid on both sides;
    - ``is_persistence``: ``{"per_pair": [...], "mean": x}``, Spearman of the IS objectives of
      folds k and k+1 over the combinations valid in both;
    - ``top_decile_rate`` and ``top_decile_per_fold``: whether each fold's chosen combination
      is in the top decile of that fold's valid OOS surface, and the fraction of folds where
      it is;
    - ``chosen_stays_top_decile`` and ``stays_top_decile_per_pair``: the same, for fold k's
      choice in fold k+1's IS surface;
    - ``drift``: ``{name: {"chosen", "mean_abs_change", "range", "relative_change",
      "n_distinct"}}`` per parameter.

    Raises `ConfigError` (a ValueError) for a missing column, an unknown objective or
    parameter (with a did-you-mean hint).
    """
    objective = surface_metric(surface, objective)
    names = [bare(surface_param(surface, name)) for name in params]
    for column in ("fold", "combo"):
        if column not in folds.columns:
            raise ConfigError(f"the folds table has no {column!r} column; got {list(folds)}")
    fold_ids = sorted(int(f) for f in folds["fold"])
    pairs = list(itertools.pairwise(fold_ids))
    is_wide = side_table(surface, "is", objective, fold_ids)
    oos_wide = side_table(surface, "oos", objective, fold_ids)
    chosen = chosen_combos(folds, fold_ids)

    rank_corr = [spearman(is_wide.loc[k], oos_wide.loc[k]) for k in fold_ids]
    persistence = [spearman(is_wide.loc[a], is_wide.loc[b]) for a, b in pairs]
    in_oos_top = [in_top_decile(oos_wide.loc[k], chosen[k], maximize) for k in fold_ids]
    stays_top = [in_top_decile(is_wide.loc[b], chosen[a], maximize) for a, b in pairs]
    return {
        "objective": objective,
        "maximize": bool(maximize),
        "folds": fold_ids,
        "pairs": [[a, b] for a, b in pairs],
        "is_oos_rank_corr": {"per_fold": rank_corr, "mean": nan_mean(rank_corr)},
        "is_persistence": {"per_pair": persistence, "mean": nan_mean(persistence)},
        "top_decile_rate": rate(in_oos_top),
        "top_decile_per_fold": in_oos_top,
        "chosen_stays_top_decile": rate(stays_top),
        "stays_top_decile_per_pair": stays_top,
        "drift": {name: param_drift(surface, folds, name, fold_ids) for name in names},
    }


# -- the scores' building blocks ---------------------------------------------------------------


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation of `a` and `b` (aligned on their index) over the labels
    where both hold a value: the Pearson correlation of their average ranks (ties share the
    mean of their ranks). NaN with fewer than `MIN_COMBOS` such labels or when either side is
    constant on them (its ranks have no variance)."""
    both = a.notna() & b.notna()
    if int(both.sum()) < MIN_COMBOS:
        return math.nan
    ra = a[both].rank(method="average").to_numpy(dtype="float64")
    rb = b[both].rank(method="average").to_numpy(dtype="float64")
    da, db = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float(da @ da) * float(db @ db))
    if denominator == 0.0:
        return math.nan
    return float(np.clip(float(da @ db) / denominator, -1.0, 1.0))


def in_top_decile(values: pd.Series, combo: int, maximize: bool) -> bool | None:
    """Whether `combo` is in the top decile of `values` (one fold-side surface: the objective
    per combination, NaN where not valid), direction-aware.

    With n valid combinations and k = ceil(n / 10), the threshold is the k-th best value; the
    combination is in the top decile when its value is at least as good as the threshold
    (ties at the threshold count in). A combination not valid there is not in it (False).
    None when there is no chosen combination or fewer than `MIN_COMBOS` valid ones."""
    present = values.dropna()
    if combo == NO_CHOICE or len(present) < MIN_COMBOS:
        return None
    if combo not in present.index:
        return False
    k = -(-len(present) // TOP_FRACTION_DENOMINATOR)  # integer ceil: 0.1 * 30 > 3 in floats
    ordered = np.sort(present.to_numpy(dtype="float64"))
    if maximize:
        return bool(present[combo] >= ordered[-k])
    return bool(present[combo] <= ordered[k - 1])


def param_drift(
    surface: pd.DataFrame, folds: pd.DataFrame, name: str, fold_ids: list[int]
) -> dict[str, Any]:
    """How the chosen value of parameter `name` moves over the folds (docs/stability.md)."""
    column = surface_param(surface, name)
    chosen = chosen_values(folds, name, fold_ids).tolist()
    changes = [abs(b - a) for a, b in itertools.pairwise(chosen) if not np.isnan(a - b)]
    grid = surface[column].astype("float64")
    span = float(grid.max() - grid.min()) if grid.notna().any() else math.nan
    mean_change = float(np.mean(changes)) if changes else math.nan
    if span == 0.0 and changes:
        relative = 0.0  # a parameter with one value in the grid cannot drift
    else:
        relative = mean_change / span if span else math.nan
    distinct = {v for v in chosen if not np.isnan(v)}
    return {
        "chosen": chosen,
        "mean_abs_change": mean_change,
        "range": span,
        "relative_change": relative,
        "n_distinct": len(distinct),
    }


def side_table(
    surface: pd.DataFrame, side: str, metric: str, fold_ids: Sequence[int]
) -> pd.DataFrame:
    """`metric` on one side as a table: one row per fold of `fold_ids` (a fold missing from
    `surface` is all NaN), one column per combination; NaN where the combination is not
    valid or the metric is NaN."""
    check_side(side)
    missing = [c for c in KEY_COLUMNS if c not in surface.columns]
    if missing:
        raise ConfigError(f"the surface table has no column {missing}; got {list(surface)}")
    rows = surface.loc[surface["side"] == side]
    values = rows[metric].astype("float64").where(rows["valid"].fillna(False).astype(bool))
    keyed = pd.Series(values.to_numpy(), index=pd.MultiIndex.from_frame(rows[["fold", "combo"]]))
    if keyed.index.has_duplicates:
        raise ConfigError(f"the surface table repeats (fold, combo) pairs on side {side!r}")
    combos = np.unique(surface["combo"].to_numpy(dtype="int64"))
    wide = keyed.unstack("combo") if len(keyed) else pd.DataFrame(columns=combos)
    return wide.reindex(index=list(fold_ids), columns=combos).astype("float64")


def chosen_combos(folds: pd.DataFrame, fold_ids: Sequence[int]) -> dict[int, int]:
    """{fold: chosen combination}, `NO_CHOICE` (-1) where there is none."""
    combos = folds.set_index("fold")["combo"]
    out = {}
    for k in fold_ids:
        value = combos.get(k, NO_CHOICE)
        out[k] = NO_CHOICE if pd.isna(value) else int(value)
    return out


def chosen_values(folds: pd.DataFrame, name: str, fold_ids: Sequence[int]) -> np.ndarray:
    """The chosen value of parameter `name` per fold of `fold_ids`; NaN without a choice."""
    column = "param_" + bare(name)
    if column not in folds.columns:
        raise ConfigError(f"the folds table has no {column!r} column; got {list(folds)}")
    by_fold = folds.set_index("fold")
    values = by_fold[column].astype("float64").where(by_fold["combo"] != NO_CHOICE)
    return values.reindex(list(fold_ids)).to_numpy(dtype="float64")


def reduced_cells(
    surface: pd.DataFrame, side: str, metric: str, by: list[str], reduce: str
) -> pd.Series:
    """`metric` on `side` reduced with `reduce` ("max", "median"...) over the rows sharing
    the `by` columns, sorted by them; NaN for a group without a valid row."""
    rows = surface.loc[surface["side"] == check_side(side)]
    values = rows[metric].astype("float64").where(rows["valid"].fillna(False).astype(bool))
    keys = rows[by].astype({c: "float64" for c in by if str(c).startswith("param_")})
    return keys.assign(_v=values).groupby(by, sort=True)["_v"].agg(reduce)


def fold_labels(folds: pd.DataFrame, side: str, fold_ids: Sequence[int]) -> list[str]:
    """The dates of each fold's `side` window, "2015-01..2015-06": months when they tell every
    fold apart (and no window starts and ends in the same month), else days, else minutes;
    "fold k" for a fold without dates."""
    first, last = f"{check_side(side)}_first", f"{side}_last"
    if first not in folds.columns or last not in folds.columns:
        return [f"fold {k}" for k in fold_ids]
    by_fold = folds.set_index("fold")
    starts = pd.to_datetime(by_fold[first], utc=True).reindex(list(fold_ids))
    ends = pd.to_datetime(by_fold[last], utc=True).reindex(list(fold_ids))
    labels: list[str] = []
    for fmt in ("%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H:%M"):
        ranges = [
            (f"{a:{fmt}}", f"{b:{fmt}}") if pd.notna(a) and pd.notna(b) else (f"fold {k}", "")
            for k, a, b in zip(fold_ids, starts, ends, strict=True)
        ]
        labels = [f"{a}..{b}" if b else a for a, b in ranges]
        if len(set(labels)) == len(labels) and all(a != b for a, b in ranges):
            break
    return labels


def scores_by_fold(scores: dict[str, Any]) -> pd.DataFrame:
    """The per-fold scores of `stability_scores` (or of its JSON) as one table, one row per
    fold: ``is_oos_rank_corr``, ``in_oos_top_decile``, and for the pair (fold, next fold)
    ``is_rank_corr_next`` and ``stays_top_decile_next`` (None for the last fold)."""
    fold_ids = list(scores["folds"])
    tail = [None] * (len(fold_ids) - len(scores["pairs"]))
    return pd.DataFrame(
        {
            "fold": fold_ids,
            "is_oos_rank_corr": scores["is_oos_rank_corr"]["per_fold"],
            "in_oos_top_decile": scores["top_decile_per_fold"],
            "is_rank_corr_next": [*scores["is_persistence"]["per_pair"], *tail],
            "stays_top_decile_next": [*scores["stays_top_decile_per_pair"], *tail],
        }
    )


def nan_mean(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN; NaN when there is none."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def rate(flags: Sequence[bool | None]) -> float:
    """The fraction of True among the flags that are not None; NaN when all are None."""
    known = [f for f in flags if f is not None]
    return sum(known) / len(known) if known else math.nan


# -- names ----------------------------------------------------------------------------------


def metric_names(surface: pd.DataFrame) -> list[str]:
    """The metric columns of a surface table: `METRIC_NAMES` first, in their order, then any
    other column that is neither a key, a parameter nor ``valid``."""
    others = [
        str(c)
        for c in surface.columns
        if c not in METRIC_NAMES and c not in KEY_COLUMNS and not str(c).startswith("param_")
    ]
    return [m for m in METRIC_NAMES if m in surface.columns] + others


def surface_metric(surface: pd.DataFrame, name: str) -> str:
    """`name` if it is a metric column of `surface`; otherwise `ConfigError` with a hint."""
    metrics = metric_names(surface)
    if name not in metrics:
        raise ConfigError(f"unknown metric {name!r}{hint(name, metrics)}; choose one of {metrics}")
    return name


def surface_param(surface: pd.DataFrame, name: str) -> str:
    """The column of parameter `name` ("fast" -> "param_fast"); `ConfigError` with a hint."""
    column = "param_" + bare(name)
    if column not in surface.columns:
        names = [bare(str(c)) for c in surface.columns if str(c).startswith("param_")]
        raise ConfigError(
            f"unknown parameter {name!r}{hint(bare(name), names)}; the surface has {names}"
        )
    return column


def check_side(side: str) -> str:
    if side not in SIDES:
        raise ConfigError(f"unknown side {side!r}{hint(side, SIDES)}; choose 'is' or 'oos'")
    return side


def bare(name: str) -> str:
    return name.removeprefix("param_")


def hint(name: str, choices: Sequence[str]) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


# -- text ------------------------------------------------------------------------------------


def score_rows(scores: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline scores as (label, text) rows, for a report's summary table or a terminal;
    `scores` from `stability_scores` or read back from JSON (None for NaN)."""
    better = "higher" if scores.get("maximize", True) else "lower"
    top = scores.get("top_decile_per_fold", [])
    stays = scores.get("stays_top_decile_per_pair", [])
    rows = [
        ("Objective", f"{scores.get('objective', 'objective')} ({better} is better)"),
        ("Folds", str(len(scores.get("folds", [])))),
        ("IS→OOS rank correlation, mean", format_score(_mean(scores, "is_oos_rank_corr"))),
        ("IS persistence (consecutive folds), mean",
         format_score(_mean(scores, "is_persistence"))),
        ("Chosen in the OOS top decile", _share(scores.get("top_decile_rate"), top, "folds")),
        ("Chosen stays in the next IS top decile",
         _share(scores.get("chosen_stays_top_decile"), stays, "pairs")),
    ]  # fmt: skip
    for name, drift in scores.get("drift", {}).items():
        change = format_score(drift.get("relative_change"), ".1%")
        distinct = drift.get("n_distinct", 0)
        plural = "" if distinct == 1 else "s"
        text = f"{change} of its range a fold; {distinct} distinct value{plural}"
        rows.append((f"Drift of {name}", text))
    return rows


def format_score(value: object, fmt: str = ".3f") -> str:
    """A score as text; NaN or None as "n/a"."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(number) else format(number, fmt)


def format_flag(value: object) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _mean(scores: Mapping[str, Any], key: str) -> object:
    value = scores.get(key)
    return value.get("mean") if isinstance(value, Mapping) else value


def _share(value: object, flags: Sequence[object], unit: str) -> str:
    known = [f for f in flags if f is not None]
    text = format_score(value, ".0%")
    return f"{text} ({sum(bool(f) for f in known)} of {len(known)} {unit})" if known else text
