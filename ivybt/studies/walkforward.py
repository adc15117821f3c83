"""`ivybt.walk_forward` and `ivybt walkforward`: fit on each in-sample window, judge on the
out-of-sample window after it, for every fold; keep both surfaces.

Per fold (windows from `ivybt.studies.windows.make_folds`, half-open bar ranges):

1. Every combination of the space is evaluated on the in-sample (IS) and the out-of-sample
   (OOS) window in one kernel pass (`evaluate_windows`) over the bars up to the OOS end:
   nothing after the fold exists for it, and each window's indicators are warmed up on the
   bars before it (no cold start at a boundary). With `search="optuna"` the IS window is
   searched with N trials instead (one study per fold, named `<run>-fold-<k>`), and the
   combinations the search tried are evaluated on the OOS window. Exits varied by -p
   (`-p sl=...`, docs/stops.md) are columns of the space like parameters: the fold chooses
   them with the rest, its record holds them and its OOS window trades them.
2. One combination is selected on the IS surface (`ivybt.studies.selection`: best or
   plateau) among the selectable ones: at least `min_trades` closed trades and a finite
   objective (`valid` on the IS side). Its OOS metrics are its row of the OOS surface.
   `min_trades` filters this choice only: an OOS window is a verdict, not a candidate, so
   every OOS cell counts whatever its trade count (a choice that held one position through
   a one-year OOS window made 0 closed trades and still earned its return); `valid` on the
   OOS side only says the objective is defined (finite). A fold where no combination made
   `min_trades` trades in-sample has no choice and holds cash out of sample
   (`ivybt.runs.walkforward` warns about it).
   With `--select-universe` on a universe, the symbols whose results with the chosen
   parameters were best on the IS window are chosen next (`fold_universe`,
   `ivybt.studies.universe_selection`), and the fold's OOS window trades only them.
3. The fold is written to `folds/fold-<k>.parquet` (its surface) and `folds/fold-<k>.json`
   (its record), atomically; a rerun on the same run folder reads finished folds back
   instead of recomputing them, so results are identical.

Then `ivybt.studies.wf_results` stitches the OOS equity and computes the aggregates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import BAR_PARAMS, signal_bars, signal_columns
from ivybt.config import RunConfig
from ivybt.engine.inputs import RunInputs
from ivybt.engine.portfolio import UniverseBars, bars_upto
from ivybt.errors import ConfigError, StudyInterrupted, is_interrupt
from ivybt.files import write_json, write_table
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import Strategy
from ivybt.studies.grid import evaluate_windows
from ivybt.studies.selection import select
from ivybt.studies.space import ParamSpace
from ivybt.studies.windows import Fold

FoldProgress = Callable[[int, int], None]
"""progress(folds done, folds in all)."""

WFE_MIN_IS_CAGR = 0.01
"""WFE is undefined below this IS CAGR (1 % a year): dividing by an in-sample return near
zero turns noise into huge ratios (0.05 % IS and -1.2 % OOS give -24.68)."""

SIDES = ("is", "oos")


@dataclass(frozen=True)
class JointSpace:
    """A walk-forward's combinations: each Renko brick setting (`bars`, possibly just {})
    crossed with the strategy's space. Combination `k x len(strategy_space) + j` is brick
    setting k with strategy combination j; `names`/`combos` put the bar parameters first (and
    the exits the space varies last, `ParamSpace.exit_names`)."""

    strategy_space: ParamSpace
    bars: list[dict[str, Any]]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.bars[0], *self.strategy_space.names)

    @property
    def combos(self) -> np.ndarray:
        n = len(self.strategy_space)
        bar_columns = np.array([list(bar.values()) for bar in self.bars], dtype=np.float64)
        return np.hstack([np.repeat(bar_columns.reshape(len(self.bars), -1), n, axis=0),
                          np.tile(self.strategy_space.combos, (len(self.bars), 1))])  # fmt: skip

    def __len__(self) -> int:
        return len(self.bars) * len(self.strategy_space)

    def combination(self, j: int) -> dict[str, Any]:
        """Combination j as typed parameters: bar parameters first, exits varied by the space
        (`ParamSpace.exits`; 0: off) last."""
        n = len(self.strategy_space)
        bar = self.bars[j // n]
        return {name: BAR_PARAMS[name].kind(v) for name, v in bar.items()} | (
            self.strategy_space.combination(j % n) | self.strategy_space.exits(j % n)
        )  # fmt: skip


@dataclass(frozen=True)
class FoldResult:
    """One finished fold: its surface rows (both sides) and its record."""

    surface: pd.DataFrame
    record: dict[str, Any]


def fold_paths(folder: Path, fold: Fold) -> tuple[Path, Path]:
    """(surface parquet, record json) of `fold` inside the run folder."""
    base = folder / "folds" / f"fold-{fold.number:03d}"
    return base.with_suffix(".parquet"), base.with_suffix(".json")


def run_folds(
    folds: list[Fold],
    *,
    folder: Path,
    config: RunConfig,
    inputs: RunInputs,
    space: JointSpace,
    search: Callable[[Fold], tuple[ParamSpace, np.ndarray]] | None = None,
    progress: FoldProgress | None = None,
    client: Any = None,
    tasks: Any = None,
    device: str = "cpu",
) -> list[FoldResult]:
    """Every fold's result, computing only those the run folder does not hold yet.

    With a Dask `client` (`ivybt.studies.cluster`) each missing fold is one task on the
    cluster, its files written here as it finishes (`tasks(done, running, failed, total)`
    follows them); the results are the same bit for bit. `search(fold)` returns the
    combinations to evaluate for a fold (those an Optuna search of
    its IS window tried) and their rows in `space`; None evaluates the whole `space`. Ctrl-C
    between folds raises `StudyInterrupted`: the finished folds stay on disk for the rerun.
    `device` ("cpu" or "gpu", `ivybt.engine.gpu.study_device`) evaluates the folds' grids.
    """
    (folder / "folds").mkdir(parents=True, exist_ok=True)
    if client is not None:
        if search is not None:
            raise ConfigError(
                "a walk-forward with an Optuna search runs its folds here, not on Dask; drop "
                "--scheduler/--cluster, or share the search with `ivybt worker` (docs/storage.md)"
            )
        return _run_folds_on(client, folds, folder=folder, config=config, inputs=inputs,
                             space=space, progress=progress, tasks=tasks)  # fmt: skip
    results: list[FoldResult] = []
    try:
        for fold in folds:
            loaded = _load_fold(folder, fold)
            if loaded is None:
                if search is None:
                    tried, ids = space, np.arange(len(space))
                else:
                    found, ids = search(fold)
                    tried = JointSpace(found, space.bars)
                loaded = _compute_fold(fold, folder=folder, config=config, inputs=inputs,
                                       space=tried, combo_ids=ids, device=device)  # fmt: skip
            results.append(loaded)
            if progress is not None:
                progress(len(results), len(folds))
    except (KeyboardInterrupt, SystemError) as err:  # SystemError: Ctrl-C inside a kernel
        if not is_interrupt(err):
            raise
        raise StudyInterrupted(
            len(results), len(folds), "folds",
            f"they are kept in {folder}; rerun the same command with --out {folder} to resume",
        ) from err  # fmt: skip
    return results


def _run_folds_on(
    client: Any, folds: list[Fold], *, folder: Path, config: RunConfig, inputs: RunInputs,
    space: JointSpace, progress: FoldProgress | None, tasks: Any,
) -> list[FoldResult]:  # fmt: skip
    """`run_folds` with the missing folds as Dask tasks (`fold_result`), merged in fold
    order; each fold's files are written as soon as it finishes, so Ctrl-C keeps them."""
    from ivybt.studies.cluster import run_tasks

    results: list[FoldResult | None] = [_load_fold(folder, fold) for fold in folds]
    missing = [i for i, loaded in enumerate(results) if loaded is None]
    done = len(folds) - len(missing)

    def on_result(k: int, result: FoldResult) -> None:
        nonlocal done
        fold = folds[missing[k]]
        surface_path, record_path = fold_paths(folder, fold)
        write_table(surface_path, result.surface)
        write_json(record_path, result.record)  # the record last: the fold is whole
        results[missing[k]] = result
        done += 1
        if progress is not None:
            progress(done, len(folds))

    try:
        run_tasks(client, _fold_task, [folds[i] for i in missing], shared=inputs, what="fold",
                  on_result=on_result, tasks=tasks, config=config, space=space)  # fmt: skip
    except StudyInterrupted as err:
        raise StudyInterrupted(
            done, len(folds), "folds",
            f"they are kept in {folder}; rerun the same command with --out {folder} to resume",
        ) from err  # fmt: skip
    return [result for result in results if result is not None]


def _fold_task(inputs: RunInputs, fold: Fold, *, config: RunConfig, space: JointSpace) -> Any:
    """One fold on a Dask worker: its result, written by the client."""
    return fold_result(fold, config=config, inputs=inputs, space=space,
                       combo_ids=np.arange(len(space)))  # fmt: skip


def _load_fold(folder: Path, fold: Fold) -> FoldResult | None:
    surface_path, record_path = fold_paths(folder, fold)
    if not (surface_path.exists() and record_path.exists()):  # the record is written last
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if [record[k] for k in ("is_start", "is_end", "oos_start", "oos_end")] != [
        fold.is_start, fold.is_end, fold.oos_start, fold.oos_end,
    ]:  # fmt: skip
        raise ConfigError(
            f"{record_path} holds a fold with other windows; use another --out or --overwrite"
        )
    return FoldResult(pd.read_parquet(surface_path), record)


def _compute_fold(
    fold: Fold, *, folder: Path, config: RunConfig, inputs: RunInputs, space: JointSpace,
    combo_ids: np.ndarray, device: str = "cpu",
) -> FoldResult:  # fmt: skip
    result = fold_result(fold, config=config, inputs=inputs, space=space, combo_ids=combo_ids,
                         device=device)  # fmt: skip
    surface_path, record_path = fold_paths(folder, fold)
    write_table(surface_path, result.surface)
    write_json(record_path, result.record)
    return result


def fold_result(
    fold: Fold, *, config: RunConfig, inputs: RunInputs, space: JointSpace,
    combo_ids: np.ndarray, device: str = "cpu",
) -> FoldResult:  # fmt: skip
    """One fold, computed and returned, nothing written: a pure function of (configuration,
    bars, fold), run here or as a Dask task; its grid on `device` ("cpu" or "gpu")."""
    study = config.study
    assert study is not None
    columns = bars_upto(inputs.columns, fold.oos_end)
    windows = np.array([[fold.is_start, fold.is_end], [fold.oos_start, fold.oos_end]])
    renko = config.data.renko
    per_window = renko is not None and renko.atr is not None and not renko.atr_dynamic
    blocks = []
    for bar in space.bars:  # bricks once per brick setting, reused by every strategy combo
        parts = []  # an ATR box is the ATR known at each window's start: bricks per window
        for group in [windows[:1], windows[1:]] if per_window or "atr" in bar else [windows]:
            signals = signal_bars(config, inputs.frame.iloc[: fold.oos_end], columns,
                                  start=int(group[0, 0]), override=bar)  # fmt: skip
            parts.append(evaluate_windows(
                columns, space.strategy_space, config.execution, group,
                periods_per_year=inputs.periods_per_year,
                memory_budget=int(study.memory_budget_mb * 2**20),
                signal_columns=signal_columns(signals),
                signal_of=signals.signal_of, device=device,
            ))  # fmt: skip
        blocks.append(np.concatenate(parts, axis=1))
    metrics = np.concatenate(blocks, axis=0)
    objective = METRIC_NAMES.index(study.objective)
    valid = np.isfinite(metrics[:, :, objective])  # OOS: every defined result counts
    valid[:, 0] &= metrics[:, 0, METRIC_NAMES.index("n_trades")] >= study.min_trades  # IS
    chosen = select(space.combos, metrics[:, 0, objective], valid[:, 0], study.select)
    surface = surface_rows(fold, space, metrics, valid, combo_ids)
    record = fold_record(fold, space, metrics, chosen, combo_ids)
    if chosen >= 0 and config.portfolio.select_universe and isinstance(columns, UniverseBars):
        record["universe"] = fold_universe(fold, config, inputs, space.strategy_space.strategy,
                                           space.combination(chosen))  # fmt: skip
    record["overfitting"] = (
        _in_sample_evidence(fold, config, inputs, space, metrics, valid)
        if study.evidence
        else None
    )
    return FoldResult(surface, record)


def fold_universe(
    fold: Fold, config: RunConfig, inputs: RunInputs, strategy: type[Strategy],
    chosen: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The fold's universe choice (`ivybt.studies.universe_selection`): the symbols whose
    results with the chosen parameters were best on the IS window, and the OOS metrics of
    trading only them (what the stitched equity trades in this fold)."""
    from ivybt.studies.universe_selection import choose_and_measure

    choice, oos = choose_and_measure(
        config, strategy, inputs.frame.iloc[: fold.oos_end],
        bars_upto(inputs.columns, fold.oos_end), chosen, choose_end=fold.is_end,
        choose=slice(fold.is_start, fold.is_end), trade=slice(fold.oos_start, fold.oos_end),
        periods_per_year=inputs.periods_per_year,
    )  # fmt: skip
    return choice.to_record() | {"oos": {name: _json_number(oos[name]) for name in METRIC_NAMES}}


def _in_sample_evidence(
    fold: Fold, config: RunConfig, inputs: RunInputs, space: JointSpace, metrics: np.ndarray,
    valid: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    """PBO and DSR of the fold's in-sample selection (`ivybt.studies.evidence`): the IS
    window's per-bar returns of the combinations, the choice among them."""
    from ivybt.studies.evidence import grouped_returns, grouped_tables, overfitting_evidence
    from ivybt.studies.grid import evaluate_block_tables, evaluate_returns

    study = config.study
    assert study is not None
    columns = bars_upto(inputs.columns, fold.is_end)
    n = len(space.strategy_space)

    def returns_for(k: int, local: np.ndarray) -> np.ndarray:
        subset = space.strategy_space.subset(local)  # exits included
        signals = signal_bars(config, inputs.frame.iloc[: fold.is_end], columns,
                              start=fold.is_start, override=space.bars[k])  # fmt: skip
        return evaluate_returns(
            columns, subset, config.execution, first_bar=fold.is_start,
            signal_columns=signal_columns(signals),
            signal_of=signals.signal_of,
        )  # fmt: skip

    def returns_of(rows: np.ndarray) -> np.ndarray:
        return grouped_returns(rows, n, len(space.bars), returns_for)

    def tables_for(k: int, local: np.ndarray, blocks: int, tick: Any) -> tuple[np.ndarray, ...]:
        """PBO's block tables straight from the kernels (no returns matrix)."""
        subset = space.strategy_space.subset(local)  # exits included
        signals = signal_bars(config, inputs.frame.iloc[: fold.is_end], columns,
                              start=fold.is_start, override=space.bars[k])  # fmt: skip
        return evaluate_block_tables(
            columns, subset, config.execution, n_blocks=blocks, first_bar=fold.is_start,
            memory_budget=int(study.memory_budget_mb * 2**20), progress=tick,
            signal_columns=signal_columns(signals),
            signal_of=signals.signal_of,
        )  # fmt: skip

    objective = METRIC_NAMES.index(study.objective)
    return overfitting_evidence(
        metrics[:, 0, objective], metrics[:, 0, METRIC_NAMES.index("sharpe")], valid[:, 0],
        returns_of, n_bars=fold.is_end - fold.is_start,
        periods_per_year=inputs.periods_per_year,
        memory_budget=int(study.memory_budget_mb * 2**20),
        tables_of=lambda rows, blocks, tick: grouped_tables(rows, n, len(space.bars),
                                                            tables_for, blocks, tick),
    )  # fmt: skip


def surface_rows(
    fold: Fold, space: JointSpace, metrics: np.ndarray, valid: np.ndarray, combo_ids: np.ndarray
) -> pd.DataFrame:
    """fold, side, combo, param_*, every metric, valid: one row per (side, combination);
    `combo` is the combination's row in the whole space, the same in every fold."""
    n_combos = len(space)
    frames = []
    for side_index, side in enumerate(SIDES):
        frame = pd.DataFrame(
            {"fold": np.full(n_combos, fold.number, dtype=np.int64), "side": side,
             "combo": np.asarray(combo_ids, dtype=np.int64)}
        )  # fmt: skip
        combos = space.combos
        for k, name in enumerate(space.names):
            frame[f"param_{name}"] = combos[:, k]
        for m, name in enumerate(METRIC_NAMES):
            frame[name] = metrics[:, side_index, m]
        frame["valid"] = valid[:, side_index]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def fold_record(
    fold: Fold, space: JointSpace, metrics: np.ndarray, chosen: int, combo_ids: np.ndarray
) -> dict[str, Any]:
    """The fold's windows, choice, IS and OOS metrics of the choice, and its WFE."""
    record: dict[str, Any] = {
        "fold": fold.number, "is_start": fold.is_start, "is_end": fold.is_end,
        "oos_start": fold.oos_start, "oos_end": fold.oos_end,
        "combo": int(combo_ids[chosen]) if chosen >= 0 else -1,
        "params": {} if chosen < 0 else space.combination(chosen),
    }  # fmt: skip
    for side_index, side in enumerate(SIDES):
        values = metrics[chosen, side_index] if chosen >= 0 else np.full(len(METRIC_NAMES), np.nan)
        record[side] = {
            name: _json_number(v) for name, v in zip(METRIC_NAMES, values, strict=True)
        }
    record["wfe"] = _json_number(
        walk_forward_efficiency(record["is"]["cagr"], record["oos"]["cagr"])
    )
    return record


def walk_forward_efficiency(is_cagr: float | None, oos_cagr: float | None) -> float:
    """Annualised OOS return / annualised IS return (geometric, i.e. CAGR); NaN when the IS
    CAGR is below `WFE_MIN_IS_CAGR` (1 % a year: a ratio of a loss, or of about nothing,
    says nothing) or either is missing."""
    if is_cagr is None or oos_cagr is None or not is_cagr >= WFE_MIN_IS_CAGR:
        return float("nan")
    return float(oos_cagr) / float(is_cagr)


def _json_number(value: float) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
