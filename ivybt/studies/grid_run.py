"""`ivybt.grid` and `ivybt grid`: every combination of a parameter space, one table, one folder.

The table has one row per admissible combination: `param_<name>` columns in the strategy's
order, every metric of docs/metrics.md, then `valid` (at least `min_trades` closed trades).
`best()` picks the valid combination that maximises the objective.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import BAR_PARAMS, bar_grid, bars_note, signal_bars, split_specs
from ivybt.config import RunConfig, build_config
from ivybt.errors import ConfigError, GridSizeWarning
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.run_folder import (
    open_run_folder,
    utc_now,
    write_json,
    write_table,
    write_text,
)
from ivybt.run_inputs import prepare_inputs
from ivybt.simulation import check_enough_bars
from ivybt.strategies import Strategy, get_strategy
from ivybt.studies.evidence import grouped_returns, overfitting_evidence
from ivybt.studies.evidence import summary_rows as evidence_rows
from ivybt.studies.grid import Progress, evaluate_returns, evaluate_space
from ivybt.studies.space import ParamSpace, build_space

LARGE_GRID = 5_000_000  # combinations above which a grid run warns with its size


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
        name = _check_metric(objective or self.objective)
        valid = self.table[self.table["valid"] & self.table[name].notna()]
        if valid.empty:
            raise ConfigError(
                f"no valid combination has a {name}: every one has fewer than "
                f"{self.config.study.min_trades if self.config.study else 1} trades or no value; "
                "lower --min-trades or widen the ranges"
            )
        return valid.loc[valid[name].idxmax()]

    def best_params(self, objective: str | None = None) -> dict[str, float | int]:
        """The best row's parameters; Renko bar parameters (box, atr, atr_mult) first."""
        row = self.best(objective)
        bar = {name: BAR_PARAMS[name].kind(row[f"param_{name}"]) for name in self.bar_params}
        return bar | {
            param.name: param.kind(row[f"param_{param.name}"])  # type: ignore[misc]
            for param in self.strategy.params
        }

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
                "metrics": {name: float(best[name]) for name in METRIC_NAMES},
            },
            "overfitting": self.evidence,
        }

    def write(
        self,
        folder: str | Path | None = None,
        *,
        overwrite: bool = False,
        results_dir: str | Path | None = None,
        command_line: list[str] | None = None,
    ) -> Path:
        """Write grid.parquet, metrics.json, manifest.json and report.html; return the folder."""
        from ivybt.report.grid import grid_report_html

        headline = self.headline()
        extra = {"periods_per_year": self.periods_per_year, "split": self.split}
        with open_run_folder(
            "grid", self.config, data=self.data, started=self.started, folder=folder,
            results=results_dir, overwrite=overwrite, extra=extra, command_line=command_line,
        ) as target:  # fmt: skip
            write_table(target / "grid.parquet", self.table)
            write_json(target / "metrics.json", headline)
            html = grid_report_html(
                title=f"{self.config.strategy.name} grid on {self.data['symbol']}",
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
    data: pd.DataFrame | None = None,
    params: Mapping[str, object] | None = None,
    constraints: Sequence[str] | None = None,
    objective: str | None = None,
    min_trades: int | None = None,
    memory_budget_mb: float | None = None,
    evidence: bool | None = None,
    out: str | Path | None = None,
    progress: Progress | None = None,
    cache_dir: str | Path | None = None,
    config: str | Path | None = None,
    **run_options: Any,
) -> GridResult:
    """Evaluate every combination of `params` specs for `strategy`; mirrors `ivybt grid`.

    `params` maps names to specs: a value, "a:b", "a:b:step" or "v1,v2,..."; parameters left
    out keep their defaults. `run_options` are those of `ivybt.backtest` (interval, start,
    end, source, adjusted, commission, slippage, fill, direction, size, initial_cash,
    periods_per_year, train_split, run_mode). A keyword left at None takes the file's value,
    else the model's default (objective "sharpe", min_trades 1, memory_budget_mb 1024).
    `config` names a YAML file or a run's manifest.json (`ivybt.config_file`); keywords given
    override its fields, `params` per parameter name.

    Examples
    --------
    >>> import ivybt
    >>> result = ivybt.grid("sma_cross", symbol="SPY", source="sample",
    ...                     params={"fast": "5:20:5", "slow": "30:60:10"})
    >>> len(result.table), sorted(result.best_params())
    (16, ['fast', 'slow'])
    """
    from ivybt.backtesting import api_sections, config_sections

    space = None if params is None else {name: str(spec) for name, spec in params.items()}
    listed = None if constraints is None else tuple(constraints)
    study = {
        "objective": objective,
        "min_trades": min_trades,
        "memory_budget_mb": memory_budget_mb,
        "evidence": evidence,
    }
    sections = config_sections(
        strategy, symbol=symbol, data=data, **run_options,
        extra={"strategy": {"space": space, "constraints": listed}, "study": study,
               "output": {"out": None if out is None else str(out)}},
    )  # fmt: skip
    sections = api_sections(sections, config)
    sections["study"]["kind"] = "grid"  # also when the file is a search's manifest
    run_config = build_config(**sections)
    result = run_grid(run_config, data=data, cache_dir=cache_dir, progress=progress)
    if run_config.output.out is not None:
        result.write(run_config.output.out, command_line=["python", "ivybt.grid(...)"])
    return result


def run_grid(
    config: RunConfig,
    *,
    data: pd.DataFrame | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> GridResult:
    """Run the grid `config` describes (bars from `data` when given, else loaded)."""
    started = utc_now()
    study = config.study
    if study is None:
        raise ConfigError("a grid run needs a study section (objective, min_trades)")
    _check_metric(study.objective)
    strategy = get_strategy(config.strategy.name)
    bar_specs, specs = split_specs(config, config.strategy.space)
    space = build_space(strategy, specs, config.strategy.constraints)
    bar_combos = bar_grid(config, bar_specs)
    if len(space) * len(bar_combos) > LARGE_GRID:
        warnings.warn(GridSizeWarning(len(space) * len(bar_combos)), stacklevel=2)
    inputs = prepare_inputs(config, data=data, cache_dir=cache_dir)
    frame = inputs.frame.iloc[: inputs.history_bars]
    tables, groups = [], []
    for k, combo in enumerate(bar_combos):  # bricks built once per distinct box
        signals = signal_bars(config, frame, inputs.columns, start=inputs.window.start or 0,
                              override=combo)  # fmt: skip
        where = inputs.describe() + (f" as Renko bricks ({combo})" if combo else "")
        check_enough_bars(strategy, _shortest_warmup(space), len(signals.columns["close"]), where)
        done = k * len(space)
        metrics = evaluate_space(
            inputs.columns, space, config.execution, periods_per_year=inputs.periods_per_year,
            first_bar=inputs.window.start or 0, memory_budget=int(study.memory_budget_mb * 2**20),
            progress=None if progress is None else (
                lambda d, t, done=done: progress(done + d, len(space) * len(bar_combos))),
            signal_columns=None if signals.signal_of is None else signals.columns,
            signal_of=signals.signal_of,
        )  # fmt: skip
        part = pd.DataFrame({f"param_{name}": value for name, value in combo.items()},
                            index=range(len(space)))  # fmt: skip
        part = part.join(pd.DataFrame(space.combos, columns=[f"param_{n}" for n in space.names]))
        tables.append(part.join(pd.DataFrame(metrics, columns=list(METRIC_NAMES))))
        groups.append(signals)
    table = pd.concat(tables, ignore_index=True)
    table["valid"] = table["n_trades"] >= study.min_trades
    first = inputs.window.start or 0

    def returns_for(k: int, local: np.ndarray) -> np.ndarray:
        """Per-bar returns of strategy combinations `local` on brick setting k."""
        signals = groups[k]
        subset = ParamSpace(strategy, space.names, space.combos[local], len(local), ())
        return evaluate_returns(
            inputs.columns, subset, config.execution, first_bar=first,
            signal_columns=None if signals.signal_of is None else signals.columns,
            signal_of=signals.signal_of,
        )  # fmt: skip

    def returns_of(rows: np.ndarray) -> np.ndarray:
        return grouped_returns(rows, len(space), len(groups), returns_for)

    evidence = None if not study.evidence else overfitting_evidence(
        table[study.objective].to_numpy(dtype=np.float64),
        table["sharpe"].to_numpy(dtype=np.float64), table["valid"].to_numpy(), returns_of,
        n_bars=inputs.history_bars - first, periods_per_year=inputs.periods_per_year,
        memory_budget=int(study.memory_budget_mb * 2**20),
    )  # fmt: skip
    return GridResult(
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
    )


def _shortest_warmup(space: ParamSpace) -> dict[str, float | int]:
    """Each parameter at its smallest value in the space: for window parameters, the
    combination with the fewest warm-up bars (a grid needs one that can trade)."""
    return {
        param.name: param.kind(space.combos[:, k].min())  # type: ignore[misc]
        for k, param in enumerate(space.strategy.params)
    }


def _check_metric(name: str) -> str:
    if name not in METRIC_NAMES:
        import difflib

        close = difflib.get_close_matches(name, METRIC_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown objective {name!r}{hint}; metrics: {', '.join(METRIC_NAMES)}")
    return name


def _summary_rows(headline: Mapping[str, Any]) -> list[tuple[str, str]]:
    best = headline["best"]
    params = ", ".join(f"{name}={value}" for name, value in best["params"].items())
    return [
        ("Combinations", f"{headline['n_combinations']:,} ({headline['n_valid']:,} valid)"),
        ("Objective", headline["objective"]),
        ("Best parameters", params),
        *(
            (name, f"{value:.4g}")
            for name, value in best["metrics"].items()
            if name in ("total_return", "sharpe", "max_drawdown", "n_trades")
        ),
    ]
