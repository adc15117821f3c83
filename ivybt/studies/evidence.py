"""Evidence against overfitting for a grid, a search or a walk-forward fold: PBO and DSR.

- PBO (`ivybt.stats.pbo`, CSCV with 16 blocks): on the bars x combinations matrix of per-bar
  returns of every valid combination over the evaluated window. The matrix is never held
  whole: a grid reduces each combination's returns to its per-block tables as they are
  computed (`ivybt.studies.grid.evaluate_block_tables`); otherwise chunks of combinations
  that fit a quarter of the memory budget (8 bytes x bars x combinations; the statistics
  make one working copy) are reduced to per-block tables, which concatenate into exactly
  the tables of the whole matrix.
- Cost (measured on the 2-core machine of benchmarks/README.md, sma_cross fast 2:101 x slow
  5:204, 15,247 combinations): about 0.7 s on 5,241 SPY daily bars and 3.5 s on 74,439
  EURUSD hourly bars, about as long as the grid itself: every combination is simulated
  once more for its per-bar returns, then 12,870 CSCV splits are scored. The phases report
  progress ("PBO returns", "PBO splits") and stop on Ctrl-C between kernel calls.
- DSR (`ivybt.stats.sharpe`): the selected (best valid) combination's per-bar returns, with
  N = every trial evaluated (valid or not, the honest count of what was tried) and the
  variance of their Sharpe ratios.

Both come with their one-line plain reading for metrics.json and the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ivybt.errors import ConfigError, interrupted_phase

PBO_BLOCKS = 16
MIN_KEPT = 2

ReturnsOf = Callable[[np.ndarray], np.ndarray]
"""returns_of(rows) -> float64 (bars, len(rows)): per-bar returns of those table rows
(`rows` ascending)."""
Progress = Callable[[int, int], None]
PhaseProgress = Callable[[str], Progress]
"""progress(label) -> progress(done, total) of the phase `label` ("PBO returns", "PBO
splits"); the same as `ivybt.studies.grid.PhaseProgress`."""
TablesOf = Callable[[np.ndarray, int, Progress | None], tuple[np.ndarray, ...]]
"""tables_of(rows, blocks, progress) -> (sums, squares, levels), float64 (blocks, len(rows)):
PBO's block tables of those table rows' per-bar returns (`rows` ascending), progress in
combinations."""


def grouped_returns(
    rows: np.ndarray, group_size: int, n_groups: int,
    returns_for: Callable[[int, np.ndarray], np.ndarray],
) -> np.ndarray:  # fmt: skip
    """`returns_of` for combinations numbered group by group (Renko brick setting k holds
    rows [k x group_size, (k + 1) x group_size)): `returns_for(k, local rows)` evaluates one
    group. `rows` ascending, so each group is a contiguous slice (one group: no copy)."""
    parts = []
    for k in range(n_groups):
        lo, hi = np.searchsorted(rows, [k * group_size, (k + 1) * group_size])
        if hi > lo:
            parts.append(returns_for(k, rows[lo:hi] - k * group_size))
    return parts[0] if len(parts) == 1 else np.hstack(parts)


TablesFor = Callable[[int, np.ndarray, int, Progress | None], tuple[np.ndarray, ...]]
"""tables_for(group, local rows, blocks, progress) -> PBO's block tables of one group."""


def grouped_tables(
    rows: np.ndarray, group_size: int, n_groups: int, tables_for: TablesFor, blocks: int,
    progress: Progress | None = None,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    """`tables_of` for combinations numbered group by group, as `grouped_returns`:
    `tables_for(k, local rows, blocks, progress)` gives one group's block tables; progress
    counts the rows of every group. `rows` ascending."""
    parts, done = [], 0
    for k in range(n_groups):
        lo, hi = np.searchsorted(rows, [k * group_size, (k + 1) * group_size])
        if hi > lo:
            tick = None if progress is None else (
                lambda d, t, done=done: progress(done + d, len(rows)))  # fmt: skip
            parts.append(tables_for(k, rows[lo:hi] - k * group_size, blocks, tick))
            done += int(hi - lo)
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(p, axis=1) for p in zip(*parts, strict=True))


def overfitting_evidence(
    objective: np.ndarray, sharpe: np.ndarray, valid: np.ndarray, returns_of: ReturnsOf, *,
    n_bars: int, periods_per_year: float, memory_budget: int,
    tables_of: TablesOf | None = None, progress: PhaseProgress | None = None,
) -> dict[str, Any]:  # fmt: skip
    """PBO and DSR of a set of evaluated combinations (one row each).

    `objective` ranks the rows (higher is better) for the selection;
    `sharpe` is each row's annualised Sharpe (for the trials' variance); `valid` marks rows
    that may be selected. `tables_of(rows, blocks, progress)` gives PBO's block tables of
    those rows directly (`ivybt.studies.grid.evaluate_block_tables`, no returns matrix);
    without it the returns of `returns_of` are reduced in chunks of a quarter of
    `memory_budget`. `progress(label)` gives the progress callback of the phases
    "PBO returns" (combinations) and "PBO splits". Returns a JSON-friendly dict with `pbo`,
    `dsr` (or the reason each could not be computed) and `readings`.
    """
    from ivybt.stats.pbo import block_tables, pbo_from_block_tables
    from ivybt.stats.sharpe import deflated_sharpe_of_trials

    usable = valid & np.isfinite(objective)
    rows = np.flatnonzero(usable)
    out: dict[str, Any] = {"n_trials": len(objective), "n_valid": len(rows)}
    if len(rows) < MIN_KEPT:
        return out | {"pbo": None, "dsr": None,
                      "readings": ["fewer than 2 valid combinations: no PBO or DSR"]}  # fmt: skip
    best = int(np.argmax(np.where(usable, objective, -np.inf)))
    returns_progress = None if progress is None else progress("PBO returns")
    readings = []
    try:
        if tables_of is not None:
            out["returns_kept"] = {
                "combinations": len(rows), "of_valid": len(rows),
                "rule": "all valid, reduced to block tables combination by combination "
                "(no returns matrix)",
            }  # fmt: skip
            sums, squares, levels = tables_of(rows, PBO_BLOCKS, returns_progress)
        else:
            chunk = max(MIN_KEPT, memory_budget // 4 // (8 * max(n_bars, 1)))
            out["returns_kept"] = {
                "combinations": len(rows), "of_valid": len(rows),
                "rule": "all valid, reduced to block tables in chunks of "
                f"{min(chunk, len(rows)):,} combinations (memory budget)",
            }  # fmt: skip
            tables = []
            for k in range(0, len(rows), chunk):
                tables.append(block_tables(returns_of(rows[k : k + chunk]), PBO_BLOCKS))
                if returns_progress is not None:
                    returns_progress(min(k + chunk, len(rows)), len(rows))
            sums, squares, levels = (np.concatenate(p, axis=1) for p in zip(*tables, strict=True))
            del tables
        pbo = pbo_from_block_tables(
            sums, squares, levels, n_periods=n_bars,
            progress=None if progress is None else progress("PBO splits"),
        )  # fmt: skip
        out["pbo"] = pbo.to_json()
        readings.append(pbo.reading())
    except ConfigError as err:
        out["pbo"] = None
        readings.append(f"no PBO: {err}")
    selected = returns_of(np.array([best]))[:, 0]
    dsr = deflated_sharpe_of_trials(
        selected, sharpe[np.isfinite(sharpe)], trial_sharpe_unit="annual",
        periods_per_year=periods_per_year,
    )  # fmt: skip
    out["dsr"] = dsr.to_json()
    readings.append(dsr.reading())
    out["readings"] = readings
    return out


def summary_rows(evidence: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Report summary rows: PBO and DSR with their readings."""
    if not evidence:
        return []
    pbo, dsr = evidence.get("pbo"), evidence.get("dsr")
    rows = []
    if pbo is not None:
        rows.append(("PBO (CSCV, 16 blocks)", f"{pbo['pbo']:.2f}"))
    if dsr is not None and dsr.get("dsr") is not None:
        rows.append(("Deflated Sharpe ratio", f"{dsr['dsr']:.2f}"))
    return rows


def search_evidence(result: Any) -> dict[str, Any] | None:
    """`overfitting_evidence` of an Optuna search (`ivybt.runs.optimize.SearchResult`):
    trials ranked by the first objective (negated when it is minimised), N = every finished
    trial (pruned and failed ones included), returns re-evaluated per Renko brick setting."""
    from optuna.trial import TrialState

    from ivybt.bars.timeline import BAR_PARAMS, signal_columns
    from ivybt.strategies import get_strategy
    from ivybt.studies.grid import evaluate_returns
    from ivybt.studies.search import MINIMIZED, bricks_for
    from ivybt.studies.search_space import search_space
    from ivybt.studies.space import ParamSpace, exit_names_of

    trials = [t for t in result.study.get_trials(deepcopy=False) if t.state.is_finished()]
    if not trials or not result.config.study.evidence:
        return None
    objective = result.objectives[0]
    sign = -1.0 if objective in MINIMIZED else 1.0
    metric = np.array([t.user_attrs.get(objective, np.nan) for t in trials], dtype=float)
    sharpe = np.array([t.user_attrs.get("sharpe", np.nan) for t in trials], dtype=float)
    valid = np.array([t.state == TrialState.COMPLETE for t in trials])
    config, inputs = result.config, result.inputs
    strategy = get_strategy(config.strategy.name)
    searched, fixed = search_space(strategy, config.strategy.space)
    first = inputs.window.start or 0
    signals_for = bricks_for(config, inputs, start=first)
    exits = exit_names_of(strategy, [*fixed, *searched])  # as the trials were evaluated
    names = (*strategy.param_names(), *exits)

    def returns_of(rows: np.ndarray) -> np.ndarray:
        out = np.empty((inputs.history_bars - first, len(rows)))
        keys = [tuple((n, v) for n, v in trials[r].params.items() if n in BAR_PARAMS)
                for r in rows]  # fmt: skip
        for key in dict.fromkeys(keys):
            mine = np.array([k == key for k in keys])
            combos = np.array([[float({**fixed, **trials[r].params}[n]) for n in names]
                               for r in rows[mine]])  # fmt: skip
            signals = signals_for(key)
            out[:, mine] = evaluate_returns(
                inputs.columns,
                ParamSpace(strategy, names, combos, len(combos), (), exit_names=exits),
                config.execution, first_bar=first,
                signal_columns=signal_columns(signals),
                signal_of=signals.signal_of,
            )  # fmt: skip
        return out

    kept = (
        f"the {len(trials):,} trials are kept in study {result.study.study_name!r}; rerun the "
        "same command to write the results (finished trials are not run again)"
    )
    with interrupted_phase("computing PBO and DSR", kept):
        return overfitting_evidence(
            sign * metric, sharpe, valid, returns_of, n_bars=inputs.history_bars - first,
            periods_per_year=inputs.periods_per_year,
            memory_budget=int(config.study.memory_budget_mb * 2**20),
        )  # fmt: skip
