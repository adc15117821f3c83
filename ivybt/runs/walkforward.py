"""`ivybt.walk_forward(...)` and the run behind `ivybt walkforward`: folds in, run folder out.

The run folder holds, besides manifest.json: `folds/` (one surface and one record per fold,
written as each fold finishes; a rerun on the same folder skips them), folds.parquet,
surface.parquet, oos_equity.parquet, metrics.json (stitched OOS metrics, buy-and-hold over
the same bars, WFE, stability scores, per-fold choices) and report.html, plus the stability
surface page `surface-<side>-<metric>-<param>.html` that `ivybt surface` redraws.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import split_specs
from ivybt.config import RunConfig, build_config
from ivybt.config_file import study_sections
from ivybt.engine.gpu import study_device
from ivybt.engine.inputs import RunInputs, prepare_inputs
from ivybt.engine.simulation import check_enough_bars
from ivybt.errors import ConfigError, ThinEvidenceWarning
from ivybt.files import write_json, write_table, write_text
from ivybt.runs.folder import open_run_folder, utc_now
from ivybt.runs.grid import _shortest_warmup, check_objective, plan_space
from ivybt.strategies import Strategy, get_strategy
from ivybt.studies.cluster import TaskProgress, cluster_spec, dask_client
from ivybt.studies.grid import check_memory, combination_bytes
from ivybt.studies.space import ParamSpace
from ivybt.studies.stability import stability_scores
from ivybt.studies.universe_selection import check_selectable, describe_rule
from ivybt.studies.walkforward import (
    WFE_MIN_IS_CAGR,
    FoldProgress,
    FoldResult,
    JointSpace,
    run_folds,
)
from ivybt.studies.wf_results import folds_table, stitched_oos, surface_table
from ivybt.studies.windows import Fold, make_folds

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures

logger = logging.getLogger(__name__)


@dataclass
class WalkForwardResult:
    """A finished walk-forward study; `folder` is its run folder."""

    config: RunConfig
    strategy: type[Strategy]
    space: JointSpace
    folds: pd.DataFrame
    surface: pd.DataFrame
    oos_equity: pd.DataFrame
    metrics: dict[str, Any]
    folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def objective(self) -> str:
        assert self.config.study is not None
        return self.config.study.objective

    def __repr__(self) -> str:
        from ivybt.report.backtest import metrics_text
        from ivybt.report.html import bars_label

        metrics = self.metrics
        oos = metrics.get("oos") or {}
        wfe = metrics.get("wfe")
        return (
            f"<WalkForwardResult {self.config.strategy.name} on {self.data.get('symbol', '')}"
            f"{bars_label(self.config.data)}: {len(self.folds)} folds x "
            f"{metrics.get('n_combinations', len(self.space)):,} combinations, "
            f"{metrics.get('select')} by {self.objective}; OOS "
            f"{metrics_text(oos, ('total_return', 'sharpe', 'max_drawdown'))}; WFE (CAGR) "
            f"{'n/a' if wfe is None else f'{wfe:.2f}'}; {self.folder}>"
        )

    def plot(self) -> ReportFigures:
        """The figures of report.html, as plotly figures: the fold table, stitched OOS
        equity, WFE per fold and the stability surfaces
        (`ivybt.report.walkforward.walkforward_sections`; index by position or heading)."""
        from ivybt.report.figures import ReportFigures
        from ivybt.report.walkforward import walkforward_sections

        return ReportFigures(walkforward_sections(self))


def walk_forward(
    strategy: str | type[Strategy] | None = None,
    *,
    symbol: str | None = None,
    symbols: str | Sequence[str] | None = None,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    params: Mapping[str, object] | None = None,
    constraints: Sequence[str] | None = None,
    in_sample: str | int | None = None,
    out_of_sample: str | int | None = None,
    folds: int | None = None,
    step: str | int | None = None,
    gap: int | None = None,
    anchored: bool | None = None,
    last_window: str | None = None,
    search: str | None = None,
    trials: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    storage: str | None = None,
    select: str | None = None,
    objective: str | None = None,
    min_trades: int | None = None,
    evidence: bool | None = None,
    max_combinations: int | None = None,
    device: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: FoldProgress | None = None,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    portfolio: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    **run_options: Any,
) -> WalkForwardResult:
    """Walk `strategy` forward over rolling (or `anchored`) windows; mirrors `ivybt walkforward`.

    `params` maps names to specs ("a:b", "a:b:step", "v1,v2,..."), as for `ivybt.grid`;
    `in_sample`, `out_of_sample` and `step` are bars (500) or durations ("2y", "6M"); `folds`
    may replace `out_of_sample`. `search="optuna"` searches each in-sample window with
    `trials` trials (`seed`, `batch_size`, `storage` as for `ivybt.optimize`) instead of the
    whole grid. `run_options` are those of `ivybt.backtest`; `symbols` and `portfolio` walk
    a universe traded in one account forward, as for `ivybt.backtest` (docs/portfolio.md).
    A keyword left
    at None takes the `config` file's value, else the model's default (gap 0, rolling,
    last_window "drop", search "grid", select "best", objective "sharpe", min_trades 1). The
    run folder is `out` (rerun on it to resume), else results/walkforward-...-<UTC>/.
    `scheduler` ("tcp://HOST:8786") or `cluster` ("local:N") run the folds as Dask tasks
    (docs/scale-out.md), with the same results bit for bit. `device` ("cpu", "gpu" or
    "auto", as `--device`) evaluates the folds' grids on an NVIDIA GPU (docs/gpu.md).

    Examples
    --------
    >>> import ivybt
    >>> result = ivybt.walk_forward("sma_cross", symbol="SPY", source="sample",
    ...                             params={"fast": "5:20:5", "slow": "30:60:10"},
    ...                             in_sample="2y", out_of_sample="1y", start="2010-01-01")
    >>> list(result.folds.columns[:5])
    ['fold', 'is_start', 'is_end', 'is_first', 'is_last']
    """
    from ivybt.runs.backtest import api_sections, config_sections

    space = None if params is None else {name: str(spec) for name, spec in params.items()}
    windows = {
        "in_sample": in_sample, "out_of_sample": out_of_sample, "folds": folds, "step": step,
        "gap": gap, "anchored": anchored, "last_window": last_window,
    }  # fmt: skip
    given = {k: v for k, v in windows.items() if v is not None}
    study = {"objective": objective, "min_trades": min_trades, "trials": trials, "seed": seed,
             "batch_size": batch_size, "storage": storage, "search": search, "select": select,
             "evidence": evidence, "max_combinations": max_combinations,
             "windows": given or None, "device": device}  # fmt: skip
    sections = config_sections(
        strategy, symbol=symbol, symbols=symbols, data=data, **run_options,
        extra={"strategy": {"space": space,
                            "constraints": None if constraints is None else tuple(constraints)},
               "study": study, "output": {"out": None if out is None else str(out)},
               "portfolio": dict(portfolio or {})},
    )  # fmt: skip
    sections = api_sections(sections, config)
    sections = study_sections(sections, "walkforward", config)
    return run_walk_forward(
        build_config(**sections), data=data, cache_dir=cache_dir, results_dir=results_dir,
        overwrite=overwrite, command_line=["python", "ivybt.walk_forward(...)"],
        progress=progress, scheduler=scheduler, cluster=cluster,
    )  # fmt: skip


def plan_folds(config: RunConfig, inputs: RunInputs) -> list[Fold]:
    """The folds `config.study.windows` gives on the loaded bars."""
    study = config.study
    if study is None or study.windows is None:
        raise ConfigError("a walk-forward needs windows: give --is and --oos (or --folds)")
    w = study.windows
    return make_folds(
        inputs.frame.index, in_sample=w.in_sample, out_of_sample=w.out_of_sample,
        folds=w.folds, step=w.step, gap=w.gap, anchored=w.anchored, last_window=w.last_window,
    )  # fmt: skip


def check_walk_forward(
    config: RunConfig,
) -> tuple[type[Strategy], ParamSpace, list[dict[str, Any]], str]:
    """The checks of a walk-forward that need no bars (a one-line `ConfigError` each): the
    study section, the objective, the split, the universe rule and the space (counted and
    built, `plan_space`); returns the strategy, the space, the Renko brick settings and the
    line saying the space's size. `ivybt.runs.batch_file` runs it on every job of a batch
    before any job starts."""
    study = config.study
    if study is None:
        raise ConfigError("a walk-forward run needs a study section (windows, objective)")
    if study.windows is None:
        raise ConfigError("a walk-forward needs windows: give --is and --oos (or --folds)")
    if config.split.run_mode != "full":
        raise ConfigError(
            "a walk-forward makes its own in-sample and out-of-sample windows; drop "
            "--train-split/--run-mode (a train/test split is the one-fold case: --folds 1)"
        )
    check_objective(study.objective)
    strategy = get_strategy(config.strategy.name)
    if config.portfolio.select_universe is not None:
        check_selectable(strategy)
    bar_specs, _ = split_specs(config, config.strategy.space)
    if bar_specs and study.search == "optuna":
        raise ConfigError(
            f"-p {', '.join(bar_specs)} with --search optuna: give fixed Renko settings "
            "(--renko-box, --renko-atr), or search the bricks with --search grid"
        )
    strategy_space, bars, line = plan_space(config)
    return strategy, strategy_space, bars, line


def run_walk_forward(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    progress: FoldProgress | None = None,
    notice: Callable[[str], None] | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    tasks: TaskProgress | None = None,
) -> WalkForwardResult:
    """Run (or resume, on the same run folder) the walk-forward `config` describes.

    `scheduler` or `cluster` compute the folds as Dask tasks (`ivybt.studies.cluster`;
    `tasks(done, running, failed, total)` follows them); the stitched OOS, folds and
    surfaces are merged here in fold order, the same bit for bit.

    The space follows the rules of every study (`ivybt.studies.space`: default ranges when
    no -p range is given, counted and limited before anything is built); `notice(line)`
    receives its size before any work (default: logged at INFO)."""
    started = utc_now()
    strategy, strategy_space, bars, line = check_walk_forward(config)
    study = config.study
    assert study is not None
    spec = cluster_spec(scheduler, cluster)
    if spec is not None and study.search == "optuna":
        raise ConfigError(
            "a walk-forward with an Optuna search runs its folds here, not on Dask; drop "
            "--scheduler/--cluster, or share the search with `ivybt worker` (docs/storage.md)"
        )
    (notice or logger.info)(line)
    device = study_device(config, cluster=spec is not None)
    if study.device != "cpu":
        (notice or logger.info)(f"device: {device.described}")
    space = JointSpace(strategy_space, bars)
    inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    folds = plan_folds(config, inputs)
    n_slots = len(strategy.indicators(strategy_space.combination(0)))
    check_memory(
        len(space), combination_bytes(len(space.names), n_slots, 2, evidence=study.evidence,
                                      kept_rows=2 * len(folds)),
        int(study.memory_budget_mb * 2**20), folds[-1].oos_end, evidence=study.evidence,
        what=f" x {len(folds)} folds",
    )  # fmt: skip
    check_enough_bars(strategy, _shortest_warmup(strategy_space), folds[0].is_end,
                      f"the first in-sample window of {inputs.describe()}")  # fmt: skip
    search = None
    if study.search == "optuna":
        from ivybt.studies.wf_search import fold_searcher

        search = fold_searcher(config, inputs, strategy, strategy_space, results_dir)
    if len(space) == 0:
        raise ConfigError("the parameter space is empty; widen the ranges or the constraints")
    extra = {"periods_per_year": inputs.periods_per_year, "n_folds": len(folds),
             **({"device": device.record()} if study.device != "cpu" else {})}  # fmt: skip
    with open_run_folder(
        "walkforward", config, data=inputs.record, started=started, results_dir=results_dir,
        overwrite=overwrite, command_line=command_line, extra=extra,
    ) as folder, contextlib.ExitStack() as stack:  # fmt: skip
        client = None if spec is None else stack.enter_context(dask_client(spec))
        # --overwrite removed the old run's folds (ivybt.runs.folder.clear_run_files)
        done = run_folds(folds, folder=folder, config=config, inputs=inputs, space=space,
                         search=None if search is None else (lambda f: search(f, folder)),
                         progress=progress, client=client, tasks=tasks,
                         device=device.used)  # fmt: skip
        stack.close()  # the cluster stops before the merge and the report
        warn_thin_folds(done, study.min_trades)
        folds_df = folds_table(done, inputs.frame.index, space.names)
        surface = surface_table(done)
        equity, aggregate = stitched_oos(done, inputs, strategy, config)
        scores = stability_scores(surface, folds_df, objective=study.objective,
                                  params=list(space.names))  # fmt: skip
        metrics = headline(config, folds_df, aggregate, scores, space,
                           [r.record for r in done])  # fmt: skip
        if config.portfolio.select_universe is not None:
            every, every_aggregate = stitched_oos(done, inputs, strategy, config,
                                                  chosen_universe=False)  # fmt: skip
            equity["all_symbols"] = every["equity"].to_numpy()
            metrics["universe_selection"] = universe_headline(
                config, [r.record for r in done], aggregate["oos"], every_aggregate["oos"]
            )
        result = WalkForwardResult(config, strategy, space, folds_df, surface, equity, metrics,
                                   folder, inputs.record)  # fmt: skip
        write_table(folder / "folds.parquet", folds_df)
        write_table(folder / "surface.parquet", surface)
        write_table(folder / "oos_equity.parquet", equity)
        write_json(folder / "metrics.json", metrics)
        write_walkforward_pages(result)
    return result


def write_walkforward_pages(result: WalkForwardResult) -> list[Path]:
    """Write report.html and the default stability page into the run folder."""
    from ivybt.report.walkforward import (
        default_param,
        surface_page_html,
        surface_page_name,
        walkforward_report_html,
    )

    param = default_param(result)
    written = [result.folder / "report.html", result.folder / surface_page_name(
        "oos", result.objective, param)]  # fmt: skip
    write_text(written[0], walkforward_report_html(result, param=param))
    write_text(written[1], surface_page_html(result, param=param, metric=result.objective,
                                             side="oos"))  # fmt: skip
    return written


def thin_folds(results: Sequence[FoldResult], min_trades: int) -> dict[int, int]:
    """{fold: the most closed in-sample trades any combination made} for the folds whose
    choice rests on fewer in-sample trades than `min_trades`: no combination made that
    many, so the fold has no choice and holds cash out of sample."""
    thin = {}
    for result in results:
        if result.record["combo"] >= 0:
            continue
        trades = result.surface.loc[result.surface["side"] == "is", "n_trades"]
        most = int(np.nan_to_num(trades.max())) if len(trades) else 0
        if most < min_trades:
            thin[int(result.record["fold"])] = most
    return thin


def warn_thin_folds(results: Sequence[FoldResult], min_trades: int) -> None:
    """One `ThinEvidenceWarning` line naming every fold of `thin_folds`, if any."""
    thin = thin_folds(results, min_trades)
    if not thin:
        return
    listed = ", ".join(f"fold {k} (at most {n} closed trades)" for k, n in thin.items())
    which = "this fold holds" if len(thin) == 1 else "these folds hold"
    warnings.warn(ThinEvidenceWarning(
        f"in-sample evidence below --min-trades {min_trades} in {listed}: no combination made "
        f"that many, so {which} cash out of sample; lower --min-trades or lengthen --is"
    ), stacklevel=3)  # fmt: skip


WORTH_METRICS = ("total_return", "cagr", "sharpe", "max_drawdown")


def universe_headline(
    config: RunConfig, records: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any] | None,
    every: Mapping[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """metrics.json's `universe_selection`: the rule, each fold's symbols, how often each
    symbol was chosen, the stitched OOS metrics of trading every symbol with the same
    parameters, and `worth` = chosen - every symbol for the headline metrics."""
    portfolio = config.portfolio
    rule = portfolio.select_universe
    assert rule is not None
    per_fold = [{"fold": int(r["fold"]), "symbols": (r.get("universe") or {}).get("symbols", [])}
                for r in records]  # fmt: skip
    counts = dict.fromkeys(config.data.universe, 0)
    for fold in per_fold:
        for symbol in fold["symbols"]:
            counts[symbol] = counts.get(symbol, 0) + 1
    chosen, every = chosen or {}, every or {}
    worth = {
        name: None if chosen.get(name) is None or every.get(name) is None
        else chosen[name] - every[name]
        for name in WORTH_METRICS
    }  # fmt: skip
    return {
        "rule": rule, "by": portfolio.select_by,
        "described": describe_rule(rule, portfolio.select_by),
        "per_fold": per_fold, "times_chosen": counts, "oos_all_symbols": every or None,
        "worth": worth,
        "note": "each fold ranks the symbols by their in-sample results with the fold's chosen "
        "parameters (each symbol alone in the account) and trades only the chosen ones out of "
        "sample; oos_all_symbols trades every symbol with the same parameters; worth = chosen "
        "- all symbols",
    }  # fmt: skip


def fold_overfitting(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each fold's in-sample PBO and DSR, their means, and the plain reading."""
    pbo = [(r.get("overfitting") or {}).get("pbo") for r in records]
    dsr = [(r.get("overfitting") or {}).get("dsr") for r in records]
    pbo_values = [p["pbo"] for p in pbo if p and p.get("pbo") is not None]
    dsr_values = [d["dsr"] for d in dsr if d and d.get("dsr") is not None]
    mean_pbo = float(np.mean(pbo_values)) if pbo_values else None
    mean_dsr = float(np.mean(dsr_values)) if dsr_values else None
    readings = []
    if mean_pbo is not None:
        readings.append(
            f"in-sample choices rank at or below their out-of-sample median in "
            f"{mean_pbo:.0%} of CSCV splits, on average over {len(pbo_values)} folds "
            f"(mean PBO {mean_pbo:.2f})"
        )
    if mean_dsr is not None:
        readings.append(f"mean deflated Sharpe ratio of the in-sample choices {mean_dsr:.2f}")
    return {"pbo_per_fold": [p and p.get("pbo") for p in pbo], "mean_pbo": mean_pbo,
            "dsr_per_fold": [d and d.get("dsr") for d in dsr], "mean_dsr": mean_dsr,
            "readings": readings}  # fmt: skip


def headline(
    config: RunConfig, folds: pd.DataFrame, aggregate: Mapping[str, Any],
    scores: Mapping[str, Any], space: JointSpace, records: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:  # fmt: skip
    """metrics.json: the stitched OOS result, its yardstick, WFE, scores and the choices."""
    study = config.study
    assert study is not None
    overfitting = fold_overfitting(records)
    choices = [
        {"fold": int(row.fold), "params": {n: _plain(getattr(row, f"param_{n}"))
                                           for n in space.names},
         "is": _plain(getattr(row, f"is_{study.objective}")),
         "oos": _plain(getattr(row, f"oos_{study.objective}")), "wfe": _plain(row.wfe)}
        for row in folds.itertuples()
    ]  # fmt: skip
    return {
        "objective": study.objective, "select": study.select, "search": study.search,
        "n_folds": len(folds), "n_combinations": len(space),
        "oos": aggregate["oos"], "buy_and_hold": aggregate["buy_and_hold"],
        "wfe": aggregate["wfe"], "wfe_rule": "stitched OOS CAGR / bar-weighted geometric mean of "
        "the chosen parameters' IS CAGRs; per fold OOS CAGR / IS CAGR; null when that IS CAGR "
        f"is below {WFE_MIN_IS_CAGR:.2%} a year", "wfe_min_is_cagr": WFE_MIN_IS_CAGR,
        "stability": scores, "folds": choices, "overfitting": overfitting,
    }  # fmt: skip


def _plain(value: Any) -> Any:
    if value is None:
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number
