"""A walk-forward run's tables and aggregates, from its folds.

- folds.parquet: one row per fold: windows (half-open bar indices, and the first and last
  bar's time), the chosen combination and parameters (exits varied by `-p sl=...` included,
  `param_sl` ...), every IS and OOS metric of the choice (`is_<metric>`, `oos_<metric>`),
  and WFE.
- surface.parquet: every fold's surfaces, one row per (fold, side, combination).
- oos_equity.parquet: the stitched out-of-sample equity. Each fold trades its OOS window with
  its chosen parameters and exits (the exits it chose when the study varies them, else the
  run's `--sl` ...), from flat, starting with the equity the previous fold ended with (a
  position open at a window's end is valued at its last close, as in a backtest). Where OOS
  windows overlap (a step shorter than the OOS length), a fold's window is cut at the next
  fold's OOS start; where they leave bars out (a longer step), the equity carries flat over
  the gap, which it does not cover. A fold with no valid choice stays in cash.

Aggregate OOS metrics are computed on the stitched equity with the same definitions as any
backtest (docs/metrics.md); trade statistics pool every fold's trades, a position still open
at a fold's end counting as a trade closed at that bar's close without exit cost (the
stitched equity values it the same way), so long holds across folds are not left out.

WFE (walk-forward efficiency) per fold = OOS CAGR / IS CAGR of the chosen parameters,
undefined (NaN) when the IS CAGR is below `WFE_MIN_IS_CAGR` (1 % a year). Overall WFE = CAGR
of the stitched OOS equity / the IS CAGRs' bar-weighted geometric mean,
exp(sum n_k ln(1 + cagr_k) / sum n_k) - 1, over folds with a choice; undefined when that is
below the same floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ivybt.bars.timeline import signal_bars, split_combination
from ivybt.config import RunConfig
from ivybt.engine.inputs import RunInputs
from ivybt.engine.portfolio import (
    UniverseBars,
    bars_upto,
    equal_weight_buy_and_hold,
    simulate_portfolio,
)
from ivybt.engine.simulation import buy_and_hold_metrics, simulate_strategy
from ivybt.kernels.metrics import METRIC_NAMES, N_METRICS, return_metrics_nb, trade_metrics_nb
from ivybt.strategies import Strategy
from ivybt.studies.space import execution_with, split_exits
from ivybt.studies.walkforward import FoldResult, walk_forward_efficiency


def folds_table(results: Sequence[FoldResult], index: pd.DatetimeIndex,
                names: Sequence[str]) -> pd.DataFrame:  # fmt: skip
    """folds.parquet: one row per fold (see the module docstring)."""
    rows = []
    for result in results:
        record = result.record
        row: dict[str, Any] = {"fold": record["fold"]}
        for side in ("is", "oos"):
            start, end = record[f"{side}_start"], record[f"{side}_end"]
            row |= {f"{side}_start": start, f"{side}_end": end,
                    f"{side}_first": index[start], f"{side}_last": index[end - 1]}  # fmt: skip
        row["combo"] = record["combo"]
        row |= {f"param_{name}": record["params"].get(name, np.nan) for name in names}
        for side in ("is", "oos"):
            row |= {f"{side}_{m}": _float(record[side][m]) for m in METRIC_NAMES}
        row["wfe"] = _float(record["wfe"])
        rows.append(row)
    table = pd.DataFrame(rows)
    return _with_universe(table, results)


def _with_universe(table: pd.DataFrame, results: Sequence[FoldResult]) -> pd.DataFrame:
    """folds.parquet's fold x symbol table of a `--select-universe` study: `n_chosen`,
    `universe_oos_<metric>` (the OOS metrics of trading only the chosen symbols),
    `universe_<SYMBOL>` (chosen, bool) and `universe_score_<SYMBOL>` (its in-sample ranking
    metric) for every symbol. A fold without a choice chose nothing (cash)."""
    chosen = [result.record.get("universe") for result in results]
    if not any(chosen):
        return table
    symbols = list(next(c for c in chosen if c)["values"])
    columns: dict[str, Any] = {
        "n_chosen": [len(c["symbols"]) if c else 0 for c in chosen],
        **{f"universe_oos_{m}": [_float(c["oos"][m]) if c else np.nan for c in chosen]
           for m in METRIC_NAMES},
        **{f"universe_{s}": [bool(c) and s in c["symbols"] for c in chosen] for s in symbols},
        **{f"universe_score_{s}": [_float(c["values"][s]) if c else np.nan for c in chosen]
           for s in symbols},
    }  # fmt: skip
    return pd.concat([table, pd.DataFrame(columns, index=table.index)], axis=1)


def _float(value: Any) -> float:
    """A metric as float64, NaN for null: a column of undefined values stays numeric."""
    number = _number(value)
    return np.nan if number is None else number


def surface_table(results: Sequence[FoldResult]) -> pd.DataFrame:
    """surface.parquet: every fold's IS and OOS surface rows."""
    return pd.concat([result.surface for result in results], ignore_index=True)


def stitched_oos(
    results: Sequence[FoldResult], inputs: RunInputs, strategy: type[Strategy],
    config: RunConfig, *, chosen_universe: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """The stitched OOS equity (time, fold, equity, buy_and_hold) and its aggregate metrics
    (strategy metrics, buy-and-hold metrics over the same bars, overall WFE).

    A fold whose record holds a chosen universe (`--select-universe`) trades only those
    symbols (none chosen: cash); `chosen_universe=False` trades every symbol instead, the
    yardstick of what choosing was worth."""
    execution = config.execution
    cash = float(execution.initial_cash)
    ppy = inputs.periods_per_year
    close_all = inputs.columns["close"]  # one symbol's (a universe's is not used)
    parts, trade_parts, units_parts, held = [], [], [], cash
    hold_value = cash
    for k, result in enumerate(results):
        record = result.record
        start = record["oos_start"]
        end = record["oos_end"]
        if k + 1 < len(results):
            end = min(end, results[k + 1].record["oos_start"])
        if end <= start:
            continue
        columns = bars_upto(inputs.columns, end)
        traded = _chosen_columns(record, columns) if chosen_universe else None
        if record["combo"] >= 0 and traded != ():
            exits, chosen = split_exits(strategy, record["params"])
            bar, params = split_combination(strategy, chosen)
            fold_execution = execution_with(execution, exits)  # the fold's chosen exits
            if isinstance(columns, UniverseBars):
                columns = signal_bars(config, inputs.frame.iloc[:end], columns,
                                      override=bar).columns  # fmt: skip
                panel = columns.panel if traded is None else columns.panel.subset(traded)
                run = simulate_portfolio(
                    panel, strategy, params, fold_execution, columns.portfolio,
                    window=slice(start, end), periods_per_year=ppy,
                )  # fmt: skip
                units = (run.units != 0.0).any(axis=1).astype(np.float64)
            else:
                signals = signal_bars(config, inputs.frame.iloc[:end], columns, start=start,
                                      override=bar)  # fmt: skip
                run = simulate_strategy(
                    columns, strategy, params, fold_execution, window=slice(start, end),
                    periods_per_year=ppy, signal_columns=signals.columns,
                    signal_of=signals.signal_of,
                )  # fmt: skip
                units = run.units
            equity = run.equity * (held / cash)
            trades = run.trades.copy()
            for field in ("units", "entry_fee", "exit_fee", "gross_pnl", "net_pnl"):
                trades[field] *= held / cash
            trades["is_open"] = False  # the fold ends it: valued at the last close, as equity is
            trade_parts.append(trades)
        else:
            equity, units = np.full(end - start, held), np.zeros(end - start)
        if isinstance(columns, UniverseBars):  # the universe's equal-weight buy-and-hold
            # (the held value passed in, not a factor applied after: one symbol's is then the
            # same arithmetic as below, bit for bit)
            hold = equal_weight_buy_and_hold(columns.panel, slice(start, end), hold_value)
        else:
            closes = close_all[start:end]
            hold = hold_value * closes / closes[0]
        parts.append(pd.DataFrame({"time": inputs.frame.index[start:end], "fold": record["fold"],
                                   "equity": equity, "buy_and_hold": hold}))  # fmt: skip
        units_parts.append(units)
        held, hold_value = float(equity[-1]), float(hold[-1])
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"time": pd.DatetimeIndex([], tz="UTC"), "fold": [], "equity": [], "buy_and_hold": []}
    )  # fmt: skip
    return table, _aggregate(table, trade_parts, units_parts, results, cash, ppy)


def _chosen_columns(record: dict[str, Any], columns: Any) -> tuple[int, ...] | None:
    """The columns of the fold's chosen universe, None when the fold chose none (every
    symbol trades)."""
    universe = record.get("universe")
    if universe is None or not isinstance(columns, UniverseBars):
        return None
    return tuple(columns.panel.column(symbol) for symbol in universe["symbols"])


def _aggregate(
    table: pd.DataFrame, trade_parts: list[np.ndarray], units_parts: list[np.ndarray],
    results: Sequence[FoldResult], cash: float, ppy: float,
) -> dict[str, Any]:  # fmt: skip
    if table.empty:
        return {"oos": None, "buy_and_hold": None, "wfe": None}
    out = np.full(N_METRICS, np.nan)
    equity = table["equity"].to_numpy(dtype=np.float64)
    return_metrics_nb(equity, np.concatenate(units_parts), cash, ppy, out)
    if trade_parts:
        trades = np.concatenate(trade_parts)
        trade_metrics_nb(trades, len(trades), out)
    else:
        out[METRIC_NAMES.index("n_trades")] = 0.0
    oos = {name: _number(value) for name, value in zip(METRIC_NAMES, out, strict=True)}
    hold_close = table["buy_and_hold"].to_numpy(dtype=np.float64)
    hold = {name: _number(v) for name, v in buy_and_hold_metrics(hold_close, cash, ppy).items()}
    return {"oos": oos, "buy_and_hold": hold, "wfe": _number(_overall_wfe(results, oos["cagr"]))}


def _overall_wfe(results: Sequence[FoldResult], oos_cagr: float | None) -> float:
    weights, logs = [], []
    for result in results:
        cagr = result.record["is"]["cagr"]
        if result.record["combo"] >= 0 and cagr is not None and cagr > -1.0:
            weights.append(result.record["is_end"] - result.record["is_start"])
            logs.append(np.log1p(cagr))
    if not weights:
        return float("nan")
    is_cagr = float(np.expm1(np.average(logs, weights=weights)))
    return walk_forward_efficiency(is_cagr, oos_cagr)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None
