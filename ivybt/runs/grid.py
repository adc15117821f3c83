"""`ivybt.grid` and `ivybt grid`: every combination of a parameter space, one table, one folder.

The table has one row per admissible combination: `param_<name>` columns in the strategy's
order, every metric of docs/metrics.md, then `valid` (at least `min_trades` closed trades).
`best()` picks the valid combination that maximises the objective.

Phases, each saying what was kept when Ctrl-C stops it (`StudyInterrupted`, exit 130 on the
command line): counting and building the space (nothing loaded), loading the bars, the grid
(combinations done so far), PBO and DSR, writing the run folder. Nothing is written before
the grid and its statistics are whole; while writing, the files already written are whole
(each is renamed into place when complete) and the manifest says "failed".
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import BAR_PARAMS, bars_note, signal_bars, signal_columns, split_specs
from ivybt.config import RunConfig, build_config
from ivybt.config_file import study_sections
from ivybt.engine.gpu import study_device
from ivybt.engine.inputs import prepare_inputs
from ivybt.engine.simulation import check_enough_bars
from ivybt.errors import ConfigError, GridSizeWarning, StudyInterrupted, interrupted_phase
from ivybt.files import write_json, write_table, write_text
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.folder import open_run_folder, utc_now
from ivybt.strategies import Strategy, get_strategy
from ivybt.studies.cluster import TaskProgress, cluster_spec, dask_client, evaluate_space_tasks
from ivybt.studies.evidence import grouped_returns, grouped_tables, overfitting_evidence
from ivybt.studies.evidence import summary_rows as evidence_rows
from ivybt.studies.grid import (
    PhaseProgress,
    Progress,
    check_memory,
    combination_bytes,
    evaluate_block_tables,
    evaluate_returns,
    evaluate_space,
)
from ivybt.studies.space import (
    EXIT_PARAMS,
    ParamSpace,
    bar_grid,
    build_space,
    describe_defaults,
    with_exits,
)

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures

LARGE_GRID = 250_000  # combinations above which a grid run warns with its size
logger = logging.getLogger(__name__)


@dataclass
class GridResult:
    """Every combination's metrics (`table`) and what they were computed on."""

    config: RunConfig
    strategy: type[Strategy]
    space: ParamSpace
    table: pd.DataFrame
    data: dict[str, Any]
    periods_per_year: float
    periods_per_year_source: str
    split: dict[str, Any] | None
    started: datetime = field(default_factory=utc_now)
    folder: Path | None = None
    bar_params: tuple[str, ...] = ()  # Renko settings varied by the grid (-p box=...)
    evidence: dict[str, Any] | None = None  # PBO and DSR (ivybt.studies.evidence)
    universe: dict[str, Any] | None = None  # --select-universe: the best combination's choice
    device: dict[str, str] | None = None  # where the combinations ran (ivybt.engine.gpu)

    @property
    def n_bar_combinations(self) -> int:
        """Distinct Renko brick settings the grid ran (1 without bar parameters)."""
        return max(len(self.table) // max(len(self.space), 1), 1)

    @property
    def param_names(self) -> list[str]:
        """Every varied name of the table's param_* columns: bar parameters first."""
        return [*self.bar_params, *self.space.names]

    @property
    def objective(self) -> str:
        return self.config.study.objective if self.config.study else "sharpe"

    def best(self, objective: str | None = None) -> pd.Series:
        """The valid row with the highest `objective` (default: the study's objective)."""
        name = check_objective(objective or self.objective)
        valid = self.table[self.table["valid"] & self.table[name].notna()]
        if valid.empty:
            raise ConfigError(
                f"no valid combination has a {name}: every one has fewer than "
                f"{self.config.study.min_trades if self.config.study else 1} trades or no value; "
                "lower --min-trades or widen the ranges"
            )
        return valid.loc[valid[name].idxmax()]

    def best_exits(self, objective: str | None = None) -> dict[str, float | int]:
        """The best row's exits varied by the grid (`-p sl=...`; 0: off), else {}: pass them
        to `ivybt.backtest` as keywords (`sl=...`) next to `best_params()`."""
        row = self.best(objective)
        return {name: EXIT_PARAMS[name].kind(row[f"param_{name}"])  # type: ignore[misc]
                for name in self.space.exit_names}  # fmt: skip

    def best_params(self, objective: str | None = None) -> dict[str, float | int]:
        """The best row's parameters; Renko bar parameters (box, atr, atr_mult) first."""
        row = self.best(objective)
        bar = {name: BAR_PARAMS[name].kind(row[f"param_{name}"]) for name in self.bar_params}
        return bar | {
            param.name: param.kind(row[f"param_{param.name}"])  # type: ignore[misc]
            for param in self.strategy.params
        }

    def __repr__(self) -> str:
        from ivybt.report.backtest import metrics_text
        from ivybt.report.html import bars_label

        n_valid = int(self.table["valid"].sum())
        head = (
            f"<GridResult {self.config.strategy.name} on {self.data['symbol']} "
            f"{self.config.data.interval}{bars_label(self.config.data)}: "
            f"{len(self.table):,} combinations of {', '.join(self.param_names)} "
            f"({n_valid:,} valid)"
        )
        if not n_valid or self.table.loc[self.table["valid"], self.objective].isna().all():
            return head + ">"
        best = self.best()
        params = ", ".join(f"{k}={v}" for k, v in self.best_params().items())
        shown = dict.fromkeys((self.objective, "total_return", "max_drawdown", "n_trades"))
        return f"{head}; best by {self.objective}: {params}, {metrics_text(best, shown)}>"

    def plot(self) -> ReportFigures:
        """The figures of report.html, as plotly figures: the metric heatmap (or curve), the
        sliced heatmap with three or more parameters, the best combinations, the PBO
        histogram (`ivybt.report.grid.grid_sections`; index by position or heading)."""
        from ivybt.report.figures import ReportFigures
        from ivybt.report.grid import grid_sections

        return ReportFigures(
            grid_sections(self.table, param_names=self.param_names, metrics=list(METRIC_NAMES),
                          objective=self.objective, evidence=self.evidence)
        )  # fmt: skip

    def headline(self) -> dict[str, Any]:
        """metrics.json: the size of the grid and its best combination."""
        best = self.best()
        return {
            "strategy": self.config.strategy.name,
            "symbol": self.data["symbol"],
            "interval": self.config.data.interval,
            "n_combinations": len(self.table),
            "n_candidates": self.space.n_candidates * self.n_bar_combinations,
            "n_valid": int(self.table["valid"].sum()),
            "objective": self.objective,
            "periods_per_year": self.periods_per_year,
            "split": self.split,
            "best": {
                "params": self.best_params(),
                **({"exits": self.best_exits()} if self.space.exit_names else {}),
                "metrics": {name: float(best[name]) for name in METRIC_NAMES},
            },
            "overfitting": self.evidence,
            **({"universe_selection": self.universe} if self.universe is not None else {}),
        }

    def write(
        self,
        out: str | Path | None = None,
        *,
        overwrite: bool = False,
        results_dir: str | Path | None = None,
        command_line: list[str] | None = None,
    ) -> Path:
        """Write grid.parquet, metrics.json, manifest.json and report.html; return the folder."""
        from ivybt.report.grid import grid_report_html
        from ivybt.report.html import bars_label

        headline = self.headline()
        extra = {"periods_per_year": self.periods_per_year, "split": self.split,
                 **({"device": self.device} if self.device is not None else {})}  # fmt: skip
        opened: list[Path] = []
        writing = interrupted_phase("writing the run folder", lambda: written_outcome(opened))
        with writing, open_run_folder(
            "grid", self.config, data=self.data, started=self.started, folder=out,
            results_dir=results_dir, overwrite=overwrite, extra=extra, command_line=command_line,
        ) as target:  # fmt: skip
            opened.append(target)
            write_table(target / "grid.parquet", self.table)
            write_json(target / "metrics.json", headline)
            html = grid_report_html(
                title=f"{self.config.strategy.name} grid on {self.data['symbol']}"
                f"{bars_label(self.config.data)}",
                table=self.table,
                param_names=self.param_names,
                metrics=list(METRIC_NAMES),
                objective=self.objective,
                summary=_summary_rows(headline) + evidence_rows(self.evidence),
                notes=[*(self.evidence or {}).get("readings", []), *bars_note(self.config)],
                evidence=self.evidence,
            )
            write_text(target / "report.html", html)
        self.folder = target
        return target


def grid(
    strategy: str | type[Strategy] | None = None,
    *,
    symbol: str | None = None,
    symbols: str | Sequence[str] | None = None,
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    params: Mapping[str, object] | None = None,
    constraints: Sequence[str] | None = None,
    objective: str | None = None,
    min_trades: int | None = None,
    memory_budget_mb: float | None = None,
    max_combinations: int | None = None,
    evidence: bool | None = None,
    device: str | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    portfolio: Mapping[str, Any] | None = None,
    config: str | Path | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    **run_options: Any,
) -> GridResult:
    """Evaluate every combination of `params` specs for `strategy`; mirrors `ivybt grid`.

    `params` maps names to specs: a value, "a:b", "a:b:step" or "v1,v2,..."; parameters left
    out keep their defaults, and with no range or list at all every parameter not given is
    searched over its declared default range (`ivybt.studies.space`). `run_options` are those
    of `ivybt.backtest` (interval, start,
    end, source, adjusted, commission, slippage, fill, direction, size, initial_cash,
    periods_per_year, train_split, run_mode). `symbols` (a list or "SPY,MSFT") evaluates every
    combination as one account across the universe, and `portfolio` sets its rules, as for
    `ivybt.backtest` (docs/portfolio.md). A keyword left at None takes the file's value,
    else the model's default (objective "sharpe", min_trades 1, memory_budget_mb 1024,
    max_combinations 1,000,000).
    `config` names a YAML file or a run's manifest.json (`ivybt.config_file`); keywords given
    override its fields, `params` per parameter name. `scheduler` ("tcp://HOST:8786") or
    `cluster` ("local:N") evaluate the chunks as Dask tasks (docs/scale-out.md): the same
    table bit for bit. `device` ("cpu", "gpu" or "auto", as `--device`) evaluates a built-in
    strategy's grid on an NVIDIA GPU (docs/gpu.md).

    Examples
    --------
    >>> import ivybt
    >>> result = ivybt.grid("sma_cross", symbol="SPY", source="sample",
    ...                     params={"fast": "5:20:5", "slow": "30:60:10"})
    >>> len(result.table), sorted(result.best_params())
    (16, ['fast', 'slow'])
    """
    from ivybt.runs.backtest import api_sections, config_sections

    space = None if params is None else {name: str(spec) for name, spec in params.items()}
    listed = None if constraints is None else tuple(constraints)
    study = {
        "objective": objective,
        "min_trades": min_trades,
        "memory_budget_mb": memory_budget_mb,
        "max_combinations": max_combinations,
        "evidence": evidence,
        "device": device,
    }
    sections = config_sections(
        strategy, symbol=symbol, symbols=symbols, data=data, **run_options,
        extra={"strategy": {"space": space, "constraints": listed}, "study": study,
               "output": {"out": None if out is None else str(out)},
               "portfolio": dict(portfolio or {})},
    )  # fmt: skip
    sections = api_sections(sections, config)
    sections = study_sections(sections, "grid", config)
    run_config = build_config(**sections)
    result = run_grid(run_config, data=data, cache_dir=cache_dir, progress=progress,
                      scheduler=scheduler, cluster=cluster)  # fmt: skip
    if run_config.output.out is not None:
        result.write(run_config.output.out, command_line=["python", "ivybt.grid(...)"])
    return result


def plan_space(config: RunConfig) -> tuple[ParamSpace, list[dict[str, Any]], str]:
    """The strategy space, the Renko brick settings and the line a command prints first:
    the number of combinations (before and after the constraints), preceded by the default
    ranges when no -p range was given (`ivybt.studies.space`). Counted, limited
    (`max_combinations`) and built before any bars are loaded."""
    study = config.study
    assert study is not None
    strategy = get_strategy(config.strategy.name)
    exit_specs = {k: v for k, v in config.strategy.space.items() if k in EXIT_PARAMS}
    given = {k: v for k, v in config.strategy.space.items() if k not in EXIT_PARAMS}
    bar_specs, specs = split_specs(config, given)
    bar_combos = bar_grid(config, bar_specs)
    space = build_space(
        strategy, specs, config.strategy.constraints, max_combinations=study.max_combinations,
        multiplier=len(bar_combos),
        other_specs={name: (BAR_PARAMS[name], spec) for name, spec in bar_specs.items()},
    )  # fmt: skip
    space = with_exits(space, exit_specs, max_combinations=study.max_combinations)
    n_bar = len(bar_combos)
    line = (
        f"{config.strategy.name}: {len(space) * n_bar:,} combinations "
        f"({space.n_candidates * n_bar:,} before constraints) on {config.data.label} "
        f"{config.data.interval}" + (f", {n_bar} brick settings" if bar_specs else "")
    )
    if space.defaulted:
        line = f"{describe_defaults(strategy, space.defaulted)}\n{line}"
    return space, bar_combos, line


def run_grid(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    phase_progress: PhaseProgress | None = None,
    notice: Callable[[str], None] | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    tasks: TaskProgress | None = None,
) -> GridResult:
    """Run the grid `config` describes (bars from `data` when given, else loaded).

    `scheduler` or `cluster` run the grid's chunks as tasks on Dask
    (`ivybt.studies.cluster`; `tasks(done, running, failed, total)` follows them); PBO and
    DSR then run here, on the merged table, as without a cluster.

    `notice(line)` receives the size of the space before any work (`plan_space`; default:
    logged at INFO); `progress(done, total)` the combinations evaluated, and
    `phase_progress(label)` the progress callbacks of the later phases ("PBO returns",
    "PBO splits"). Ctrl-C in any phase raises `StudyInterrupted` saying the phase and that
    nothing was written.
    """
    started = utc_now()
    study = config.study
    if study is None:
        raise ConfigError("a grid run needs a study section (objective, min_trades)")
    spec = cluster_spec(scheduler, cluster)
    with contextlib.ExitStack() as stack:
        client = None if spec is None else stack.enter_context(dask_client(spec))
        return _run_grid(config, started, data=data, cache_dir=cache_dir, progress=progress,
                         phase_progress=phase_progress, notice=notice, client=client,
                         tasks=tasks)  # fmt: skip


def _run_grid(
    config: RunConfig,
    started: datetime,
    *,
    data: pd.DataFrame | None,
    cache_dir: str | Path | None,
    progress: Progress | None,
    phase_progress: PhaseProgress | None,
    notice: Callable[[str], None] | None,
    client: Any,
    tasks: TaskProgress | None,
) -> GridResult:
    study = config.study
    assert study is not None
    check_objective(study.objective)
    strategy = get_strategy(config.strategy.name)
    space, bar_combos, line = plan_space(config)
    bar_specs, _ = split_specs(config, config.strategy.space)
    (notice or logger.info)(line)
    n_combos = len(space) * len(bar_combos)
    if n_combos > LARGE_GRID:
        warnings.warn(GridSizeWarning(n_combos), stacklevel=3)
    budget = int(study.memory_budget_mb * 2**20)
    nothing = "a grid is written whole, so nothing was written"
    device = study_device(config, cluster=client is not None)
    if study.device != "cpu":
        (notice or logger.info)(f"device: {device.described}")
    with interrupted_phase("loading the bars", nothing):
        inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    n_slots = len(strategy.indicators(space.combination(0)))
    reserved = check_memory(
        n_combos, combination_bytes(len(space.names) + len(bar_specs), n_slots,
                                    evidence=study.evidence),
        budget, inputs.memory_bars, evidence=study.evidence,
    )  # fmt: skip
    frame = inputs.frame.iloc[: inputs.history_bars]
    tables, groups = [], []
    for k, combo in enumerate(bar_combos):  # bricks built once per distinct box
        during = "building Renko bricks" if combo else "preparing the bars"
        with interrupted_phase(during, nothing):
            signals = signal_bars(config, frame, inputs.columns, start=inputs.window.start or 0,
                                  override=combo)  # fmt: skip
        where = inputs.describe() + (f" as Renko bricks ({combo})" if combo else "")
        check_enough_bars(strategy, _shortest_warmup(space), len(signals.columns["close"]), where)
        done = k * len(space)
        try:
            evaluate: Any = evaluate_space if client is None else functools.partial(
                evaluate_space_tasks, client, tasks=tasks)  # fmt: skip
            metrics = evaluate(
                inputs.columns, space, config.execution, periods_per_year=inputs.periods_per_year,
                first_bar=inputs.window.start or 0, memory_budget=budget, reserved_bytes=reserved,
                progress=None if progress is None else (
                    lambda d, t, done=done: progress(done + d, n_combos)),
                signal_columns=signal_columns(signals),
                signal_of=signals.signal_of,
                **({"device": device.used} if device.used != "cpu" else {}),
            )  # fmt: skip
        except StudyInterrupted as err:
            raise StudyInterrupted(done + err.done, n_combos, "combinations", nothing) from err
        part = pd.DataFrame({f"param_{name}": value for name, value in combo.items()},
                            index=range(len(space)))  # fmt: skip
        part = part.join(pd.DataFrame(space.combos, columns=[f"param_{n}" for n in space.names]))
        tables.append(part.join(pd.DataFrame(metrics, columns=list(METRIC_NAMES))))
        groups.append(signals)
    table = pd.concat(tables, ignore_index=True)
    del tables
    table["valid"] = table["n_trades"] >= study.min_trades
    first = inputs.window.start or 0

    def subset_of(local: np.ndarray) -> ParamSpace:
        return space.subset(local)

    def bars_of(k: int) -> dict[str, Any]:
        signals = groups[k]
        return {"signal_columns": signal_columns(signals),
                "signal_of": signals.signal_of}  # fmt: skip

    def returns_for(k: int, local: np.ndarray) -> np.ndarray:
        """Per-bar returns of strategy combinations `local` on brick setting k."""
        return evaluate_returns(inputs.columns, subset_of(local), config.execution,
                                first_bar=first, **bars_of(k))  # fmt: skip

    def returns_of(rows: np.ndarray) -> np.ndarray:
        return grouped_returns(rows, len(space), len(groups), returns_for)

    def tables_for(
        k: int, local: np.ndarray, blocks: int, tick: Progress | None
    ) -> tuple[np.ndarray, ...]:
        """PBO's block tables of strategy combinations `local` on brick setting k."""
        return evaluate_block_tables(
            inputs.columns, subset_of(local), config.execution, n_blocks=blocks,
            first_bar=first, memory_budget=budget, reserved_bytes=reserved, progress=tick,
            **bars_of(k),
        )  # fmt: skip

    def tables_of(rows: np.ndarray, blocks: int, tick: Progress | None) -> tuple[np.ndarray, ...]:
        return grouped_tables(rows, len(space), len(groups), tables_for, blocks, tick)

    evidence = None
    if study.evidence:
        with interrupted_phase("computing PBO and DSR (--no-evidence skips them)", nothing):
            evidence = overfitting_evidence(
                table[study.objective].to_numpy(dtype=np.float64),
                table["sharpe"].to_numpy(dtype=np.float64), table["valid"].to_numpy(),
                returns_of, n_bars=inputs.history_bars - first,
                periods_per_year=inputs.periods_per_year, memory_budget=budget - reserved,
                tables_of=tables_of, progress=phase_progress,
            )  # fmt: skip
    result = GridResult(
        config=config,
        strategy=strategy,
        space=space,
        table=table,
        data=inputs.record,
        periods_per_year=inputs.periods_per_year,
        periods_per_year_source=inputs.periods_per_year_source,
        split=inputs.split,
        started=started,
        bar_params=tuple(bar_specs),
        evidence=evidence,
        device=device.record() if study.device != "cpu" else None,
    )
    if config.portfolio.select_universe is not None:
        from ivybt.studies.universe_selection import best_combination_universe

        result.universe = best_combination_universe(
            config, strategy, inputs, result.best_params() | result.best_exits()
        )  # exits varied by the grid: the best row's own
    return result


def written_outcome(opened: Sequence[Path]) -> str:
    """What Ctrl-C while writing a run folder leaves: whole files and a "failed" manifest."""
    if not opened:
        return "nothing was written"
    return (
        f"{opened[0]} holds only whole files (each is renamed into place when complete) and "
        f'its manifest.json says "failed"; rerun the same command with --out {opened[0]} '
        "to write it again"
    )


def _shortest_warmup(space: ParamSpace) -> dict[str, float | int]:
    """Each parameter at its smallest value in the space: for window parameters, the
    combination with the fewest warm-up bars (a grid needs one that can trade)."""
    return {
        param.name: param.kind(space.combos[:, k].min())  # type: ignore[misc]
        for k, param in enumerate(space.strategy.params)
    }


def check_objective(name: str) -> str:
    """`name` if it is a metric (docs/metrics.md), else a `ConfigError` with a suggestion."""
    if name not in METRIC_NAMES:
        import difflib

        close = difflib.get_close_matches(name, METRIC_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown objective {name!r}{hint}; metrics: {', '.join(METRIC_NAMES)}")
    return name


def _summary_rows(headline: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The report's summary; metrics stay numbers, formatted by the report as in its tables."""
    best = headline["best"]
    params = ", ".join(f"{name}={value}" for name, value in best["params"].items())
    return [
        ("Combinations", f"{headline['n_combinations']:,} ({headline['n_valid']:,} valid)"),
        ("Objective", headline["objective"]),
        ("Best parameters", params),
        *(
            (name, value)
            for name, value in best["metrics"].items()
            if name in ("total_return", "sharpe", "max_drawdown", "n_trades")
        ),
        *_universe_rows(headline.get("universe_selection")),
    ]


def _universe_rows(universe: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    """--select-universe: the best combination's chosen symbols and its result on them."""
    if universe is None:
        return []
    sharpe = universe["metrics"].get("sharpe")
    return [
        ("Universe (in-sample choice)",
         f"{', '.join(universe['symbols']) or 'none'} by {universe['described']}"),
        ("Best on the chosen universe: sharpe (in-sample)",
         "n/a" if sharpe is None else f"{sharpe:.2f}"),
    ]  # fmt: skip
