"""Every study on a universe (issue #14, section 4): grids, PBO and DSR, per-bar returns,
walk-forward (grid and Optuna), Optuna searches, the look-ahead checker, Monte Carlo and the
memory budget, on the bundled demo universe (SPY, MSFT, AAPL, GOOG, IBM: GOOG lists in 2004,
IBM ends in 2013), offline.

Each study on a universe is checked against an independent route to the same numbers: a grid's
row against the portfolio backtest of its combination, bit for bit; a one-symbol universe
against the single-symbol study; stitched out-of-sample metrics against a recomputation from
the stitched equity."""

from __future__ import annotations

import json
import math
import re
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig, PortfolioConfig, build_config
from ivybt.data.panel import panel_from_frames
from ivybt.data.sample import load_sample
from ivybt.engine.inputs import prepare_inputs
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.runs.montecarlo import monte_carlo
from ivybt.strategies import BUILTIN
from ivybt.studies.grid import DEFAULT_MEMORY_BUDGET, evaluate_returns, evaluate_space
from ivybt.studies.space import build_space
from ivybt.studies.study_storage import open_storage
from tests.tolerances import ATOL_EVENTS, RTOL_EVENTS, same_metric

ROOT = Path(__file__).resolve().parents[1]
DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")  # GOOG lists in 2004, IBM ends in 2013
DEMO_TEXT = ",".join(DEMO)
SAMPLE = {"source": "sample"}
RTOL_RECOMPUTED = 1e-9
"""Stitched OOS metrics vs a plain recomputation from oos_equity.parquet: the kernel's
variance is one pass of sums, the recomputation's two passes (docs/metrics.md)."""
RTOL_COMPOUNDED = 1e-10
"""prod(1 + r) over thousands of per-bar returns vs the kernel's running equity ratio."""

LEAKY_MODULE = """
from numba import njit

from ivybt.strategies import Indicator, Strategy


@njit
def next_close_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    n = close.shape[0]
    for t in range(n):
        tomorrow = close[t + 1] if t + 1 < n else close[t]  # reads the next bar: look-ahead
        out_target[t] = 1 if tomorrow > close[t] else -1


class NextClose(Strategy):
    name = "next_close"
    summary = "Long when the next bar closes higher: look-ahead."
    params = ()
    signal_kernel = next_close_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("price"),)
"""


def _cli(*args: str, results: Path | None = None) -> Any:
    head = ["--results-dir", str(results)] if results is not None else []
    return CliRunner().invoke(cli, [*head, *args])


def _same(a: float, b: float) -> bool:
    """Equal bits, NaN included (a metric undefined on both sides)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def _row_params(result: Any, row: pd.Series) -> dict[str, Any]:
    return {p.name: p.kind(row[f"param_{p.name}"]) for p in result.strategy.params}


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> str:
    (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def _json_diff(a: Any, b: Any, where: str = "", *, near: bool = False) -> list[str]:
    """Paths where two JSON documents differ (NaN-free: metrics.json stores null); with
    `near`, numbers within `same_metric`'s 1e-12 count as equal (a single-symbol account's
    return metrics against a one-symbol universe's, `ivybt.kernels.holding`)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only on one side" for k in set(a) ^ set(b)]
        for key in sorted(set(a) & set(b)):
            out += _json_diff(a[key], b[key], f"{where}.{key}", near=near)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for k, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _json_diff(x, y, f"{where}[{k}]", near=near)]  # fmt: skip
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if near and numbers and same_metric(float(a), float(b)):
        return []
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


# 1. A grid's rows are portfolio backtests ------------------------------------------------------

GRID_CASES = {
    # name: (strategy, space, run options)
    "sma_cross-long-and-short": (
        "sma_cross", {"fast": "5:30:5", "slow": "40:160:40"}, {"direction": "both"},
    ),
    "rsi_reversion-test-split": (
        "rsi_reversion", {"window": "7,14,21", "lower": "20,30", "upper": "70,80"},
        {"train_split": 0.7, "run_mode": "test"},
    ),
    "donchian_breakout-train-split-inverse-vol": (
        "donchian_breakout", {"entry_window": "20,55", "exit_window": "10,20"},
        {"train_split": 0.6, "run_mode": "train", "fill": "close",
         "portfolio": {"weights": "inverse_vol", "vol_window": 40, "max_weight": 0.4,
                       "max_leverage": 1.5}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(GRID_CASES))
def test_grid_rows_equal_portfolio_backtests_bit_for_bit(case):
    name, space, options = GRID_CASES[case]
    result = ivybt.grid(name, symbols=list(DEMO), params=space, evidence=False, **SAMPLE,
                        **options)  # fmt: skip
    assert result.data["symbol"] == "SPY+4" and result.data["symbols"] == list(DEMO)
    assert (result.split is not None) == ("train_split" in options)
    table = result.table
    assert len(table) == len(result.space) and table["valid"].any()
    rows = sorted({0, len(table) // 2, len(table) - 1, int(table["sharpe"].idxmax())})
    for j in rows:
        row = table.iloc[j]
        single = ivybt.backtest(name, symbols=DEMO_TEXT, params=_row_params(result, row),
                                **SAMPLE, **options)  # fmt: skip
        assert type(single).__name__ == "PortfolioResult"
        differ = [m for m in METRIC_NAMES if not _same(float(row[m]), single.metrics[m])]
        assert not differ, (j, {m: (row[m], single.metrics[m]) for m in differ})


def test_a_ruined_short_account_grid_equals_the_single_symbol_grid():
    """rsi_reversion long and short on MSFT loses more than the account (the single-symbol
    equity goes below 0, shorts have no margin call): a one-symbol universe must still give
    the single-symbol rows, and a portfolio backtest of each row must run."""
    space = {"window": "21", "lower": "20,30", "upper": "70,80"}
    options = {"direction": "both", "evidence": False, **SAMPLE}
    single = ivybt.grid("rsi_reversion", symbol="MSFT", params=space, **options)
    assert (single.table["total_return"] < -1.0).any()  # the account is ruined
    universe = ivybt.grid("rsi_reversion", symbols=["MSFT"], params=space, **options)
    pd.testing.assert_frame_equal(universe.table, single.table, check_exact=True)
    for j in range(len(universe.table)):
        ivybt.backtest("rsi_reversion", symbols=["MSFT"], direction="both", **SAMPLE,
                       params=_row_params(universe, universe.table.iloc[j]))  # fmt: skip


def test_plugin_strategy_grid_rows_equal_portfolio_backtests(tmp_path, monkeypatch):
    """A user's signal kernel goes through the portfolio grid kernel built for it, and the
    per-bar returns path of the overfitting statistics (one combination at a time)."""
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    module = _module(tmp_path, monkeypatch, "my_portfolio_strategies",
                     re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0])  # fmt: skip
    strategy = f"{module}:KeltnerBreakout"
    result = ivybt.grid(strategy, symbols=list(DEMO[:3]), start="2005-01-01",
                        params={"window": "20,40", "multiplier": "1.5,2.5"}, **SAMPLE)  # fmt: skip
    assert len(result.table) == 4 and result.evidence is not None
    for j in range(len(result.table)):
        row = result.table.iloc[j]
        single = ivybt.backtest(strategy, symbols=list(DEMO[:3]), start="2005-01-01",
                                params=_row_params(result, row), **SAMPLE)  # fmt: skip
        for m in METRIC_NAMES:
            assert _same(float(row[m]), single.metrics[m]), (j, m, row[m], single.metrics[m])


def test_grid_on_frames_of_your_own_equals_the_loaded_universe():
    """data={symbol: frame} is a universe of the caller's bars: the same table as loading
    those symbols unadjusted (frames are taken as given; only the provenance differs)."""
    frames = {name: load_sample(name, "1d")[0] for name in ("SPY", "IBM")}
    space = {"fast": "10,20", "slow": "50,100"}
    own = ivybt.grid("sma_cross", data=frames, params=space, evidence=False)
    loaded = ivybt.grid("sma_cross", symbols="SPY,IBM", params=space, evidence=False,
                        adjusted=False, **SAMPLE)  # fmt: skip
    assert own.data["symbols"] == ["SPY", "IBM"]
    pd.testing.assert_frame_equal(own.table, loaded.table, check_exact=True)


# 2. A one-symbol universe is the single-symbol grid ---------------------------------------------


def test_one_symbol_universe_grid_equals_the_single_symbol_grid(tmp_path):
    spec = ("sma_cross", "--source", "sample", "-p", "fast=5:50:5", "-p", "slow=20:200:20",
            "--direction", "both")  # fmt: skip
    one = _cli("grid", *spec, "--symbols", "SPY", "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    single = _cli("grid", *spec, "--symbol", "SPY", "--out", str(tmp_path / "single"))
    assert single.exit_code == 0, single.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "one" / "grid.parquet"),
        pd.read_parquet(tmp_path / "single" / "grid.parquet"),
        check_exact=False, rtol=RTOL_EVENTS, atol=ATOL_EVENTS,
    )  # fmt: skip
    mine = json.loads((tmp_path / "one" / "metrics.json").read_text())
    theirs = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert mine["overfitting"]["pbo"]["pbo"] is not None
    assert mine["overfitting"]["dsr"]["dsr"] is not None
    assert _json_diff(mine, theirs, near=True) == []  # PBO and DSR included, to 1e-12


# 3. PBO, DSR and per-bar returns on a universe ---------------------------------------------------


def test_universe_grid_metrics_carry_pbo_and_dsr(tmp_path):
    out = tmp_path / "grid"
    ran = _cli("grid", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample", "-p",
               "fast=5:30:5", "-p", "slow=40:200:40", "--max-leverage", "1.5", "--out",
               str(out))  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "on SPY+4 1d" in ran.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["symbol"] == "SPY+4" and metrics["n_combinations"] == 30
    evidence = metrics["overfitting"]
    assert evidence["n_trials"] == 30
    assert 0.0 <= evidence["pbo"]["pbo"] <= 1.0 and evidence["pbo"]["n_splits"] > 0
    dsr = evidence["dsr"]
    assert 0.0 <= dsr["dsr"] <= 1.0 and dsr["n_trials"] == 30
    # DSR's Sharpe is the best combination's, from the per-bar returns of its account
    assert dsr["sharpe_ann"] == pytest.approx(metrics["best"]["metrics"]["sharpe"],
                                              rel=RTOL_RECOMPUTED)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["portfolio"]["max_leverage"] == 1.5
    assert "PBO" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("direction", ["long", "both"])
def test_universe_returns_compound_to_each_combinations_total_return(direction):
    config = build_config(data={"symbols": DEMO, **SAMPLE}, strategy={"name": "sma_cross"},
                          execution={"direction": direction})  # fmt: skip
    inputs = prepare_inputs(config)
    bars = inputs.columns
    assert isinstance(bars, UniverseBars)
    space = build_space(BUILTIN["sma_cross"], {"fast": "5:25:10", "slow": "30:150:60"})
    first = 300
    returns = evaluate_returns(bars, space, config.execution, first_bar=first)
    metrics = evaluate_space(bars, space, config.execution, periods_per_year=252.0,
                             first_bar=first)  # fmt: skip
    assert returns.shape == (bars.n_bars - first, len(space))
    total = np.prod(1.0 + returns, axis=0) - 1.0
    np.testing.assert_allclose(total, metrics[:, METRIC_NAMES.index("total_return")],
                               rtol=RTOL_COMPOUNDED)  # fmt: skip
    sharpe = returns.mean(axis=0) / returns.std(axis=0, ddof=1) * np.sqrt(252.0)
    np.testing.assert_allclose(sharpe, metrics[:, METRIC_NAMES.index("sharpe")],
                               rtol=RTOL_RECOMPUTED)  # fmt: skip
    j = len(space) - 1  # and one column is the account of that combination's backtest
    run = simulate_portfolio(bars.panel, BUILTIN["sma_cross"], space.combination(j),
                             config.execution, config.portfolio, window=slice(first, None),
                             periods_per_year=252.0)  # fmt: skip
    previous = np.r_[config.execution.initial_cash, run.equity[:-1]]
    np.testing.assert_allclose(returns[:, j], run.equity / previous - 1.0, rtol=0, atol=1e-15)


# 4. Walk-forward on a universe -------------------------------------------------------------------

WF_PARAMS = {"fast": "5:30:5", "slow": "20:120:20"}
WF_SPACE = tuple(a for name, spec in WF_PARAMS.items() for a in ("-p", f"{name}={spec}"))


def _recomputed(equity: np.ndarray, cash: float, ppy: float) -> dict[str, float]:
    """docs/metrics.md's return metrics of an equity curve, written out plainly."""
    returns = equity / np.r_[cash, equity[:-1]] - 1.0
    growth = equity[-1] / cash
    cagr = growth ** (ppy / len(equity)) - 1.0
    drawdown = float((equity / np.maximum.accumulate(np.r_[cash, equity])[1:] - 1.0).min())
    std = returns.std(ddof=1)
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return {
        "total_return": growth - 1.0, "cagr": cagr, "volatility": std * math.sqrt(ppy),
        "sharpe": returns.mean() / std * math.sqrt(ppy),
        "sortino": returns.mean() / downside * math.sqrt(ppy),
        "max_drawdown": drawdown, "calmar": cagr / -drawdown,
    }  # fmt: skip


def test_walkforward_on_the_demo_universe(tmp_path):
    out = tmp_path / "wf"
    ran = _cli("walkforward", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample",
               *WF_SPACE, "--is", "3y", "--oos", "1y", "--start", "2002-01-01", "--out",
               str(out))  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "stitched OOS sharpe" in ran.output and f"wrote {out}" in ran.output
    for name in ("folds.parquet", "surface.parquet", "oos_equity.parquet", "metrics.json",
                 "manifest.json", "report.html"):  # fmt: skip
        assert (out / name).exists(), name
    assert list(out.glob("surface-*.html"))
    folds = pd.read_parquet(out / "folds.parquet")
    surface = pd.read_parquet(out / "surface.parquet")
    assert len(folds) >= 10 and len(surface) == len(folds) * 2 * 33  # 33 combinations
    equity = pd.read_parquet(out / "oos_equity.parquet")
    metrics = json.loads((out / "metrics.json").read_text())
    oos = metrics["oos"]
    want = _recomputed(equity["equity"].to_numpy(), 10_000.0, 252.0)
    for name, value in want.items():
        assert oos[name] == pytest.approx(value, rel=RTOL_RECOMPUTED), name
    assert oos["n_trades"] > 0
    # each fold's stitched part is the grid kernel's OOS window of its choice (another code
    # path: `simulate_portfolio` per fold), compounded from the equity the last fold left
    held = 10_000.0
    for row in folds.itertuples():
        part = equity.loc[equity["fold"] == row.fold, "equity"].to_numpy()
        if row.combo >= 0:
            assert part[-1] / held - 1.0 == pytest.approx(row.oos_total_return, rel=1e-12)
        held = part[-1]
    # the yardstick is the universe's equal-weight buy-and-hold, chained over the folds
    assert metrics["buy_and_hold"]["total_return"] == pytest.approx(
        equity["buy_and_hold"].iloc[-1] / 10_000.0 - 1.0, rel=1e-12
    )


def test_one_symbol_universe_walkforward_equals_the_single_symbol_one(tmp_path):
    spec = ("walkforward", "sma_cross", "--source", "sample", *WF_SPACE, "--is", "2y",
            "--oos", "1y", "--start", "2012-01-01")  # fmt: skip
    one = _cli(*spec, "--symbols", "SPY", "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    single = _cli(*spec, "-s", "SPY", "--out", str(tmp_path / "single"))
    assert single.exit_code == 0, single.output
    for name in ("folds.parquet", "surface.parquet", "oos_equity.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one" / name),
                                      pd.read_parquet(tmp_path / "single" / name),
                                      check_exact=name == "oos_equity.parquet", rtol=RTOL_EVENTS,
                                      atol=ATOL_EVENTS, obj=name)  # fmt: skip
    mine = json.loads((tmp_path / "one" / "metrics.json").read_text())
    theirs = json.loads((tmp_path / "single" / "metrics.json").read_text())
    # PBO aside: combinations that hold the same position through a block have equal block
    # sums exactly in the single-symbol account (its held returns are the close's), where
    # the universe's per-bar account breaks that tie by rounding (1e-16, from each one's
    # entry cash), so CSCV ranks them differently; the rest is the same to 1e-12
    for document in (mine, theirs):
        assert all(0.0 <= pbo <= 1.0 for pbo in document["overfitting"].pop("pbo_per_fold"))
        document["overfitting"].pop("mean_pbo")
        document["overfitting"].pop("readings")
    assert _json_diff(mine, theirs, near=True) == []  # stitched metrics, buy-and-hold, WFE, DSR


def test_walkforward_optuna_search_on_a_universe(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = tmp_path / "wf"
    journal = tmp_path / "wf.journal"
    ran = _cli("walkforward", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample",
               *WF_SPACE, "--is", "3y", "--oos", "1y", "--start", "2008-01-01", "--search",
               "optuna", "--trials", "8", "--seed", "1", "--storage", str(journal), "--out",
               str(out))  # fmt: skip
    assert ran.exit_code == 0, ran.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["search"] == "optuna" and metrics["oos"]["total_return"] is not None
    surface = pd.read_parquet(out / "surface.parquet")
    per_fold = surface.groupby(["fold", "side"]).size()
    assert (per_fold <= 8).all() and (per_fold > 0).all()
    # the trials' IS metrics are the whole grid's rows: the same combination ids and values
    whole = ivybt.walk_forward("sma_cross", symbols=list(DEMO), params=WF_PARAMS,
                               in_sample="3y", out_of_sample="1y", start="2008-01-01",
                               evidence=False, out=tmp_path / "grid", **SAMPLE)  # fmt: skip
    assert whole.data["symbol"] == "SPY+4"
    merged = surface.merge(whole.surface, on=["fold", "side", "combo"])
    assert len(merged) == len(surface)
    np.testing.assert_array_equal(merged["sharpe_x"], merged["sharpe_y"])


# 5. Optuna search on a universe ------------------------------------------------------------------


def test_optimize_on_a_universe(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = tmp_path / "s.journal"
    space = {"fast": "5:50:5", "slow": "20:200:20"}
    result = ivybt.optimize("sma_cross", symbols=DEMO_TEXT, params=space, trials=24, seed=3,
                            storage=str(journal), evidence=False, **SAMPLE)  # fmt: skip
    name = result.study.study_name
    assert name.startswith("sma_cross-SPY+4-") and len(result.study.trials) == 24
    identity = result.study.user_attrs["ivybt"]["identity"]
    assert identity["portfolio"]["max_leverage"] == 1.0
    best = result.best_trials()[0]
    single = ivybt.backtest("sma_cross", symbols=DEMO_TEXT, params=best.params, **SAMPLE)
    for m in METRIC_NAMES:
        assert _same(float(best.user_attrs[m]), single.metrics[m]), m
    # the same search again resumes that study; another leverage cap is another study
    again = ivybt.optimize("sma_cross", symbols=DEMO_TEXT, params=space, trials=24, seed=3,
                           storage=str(journal), evidence=False, **SAMPLE)  # fmt: skip
    assert again.study.study_name == name and len(again.study.trials) == 24
    levered = _cli("optimize", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample",
                   "-p", "fast=5:50:5", "-p", "slow=20:200:20", "--trials", "8",
                   "--storage", str(journal), "--max-leverage", "2", "--no-evidence",
                   results=tmp_path / "results")  # fmt: skip
    assert levered.exit_code == 0, levered.output
    names = set(optuna.get_all_study_names(open_storage(result.storage_url)))
    assert len(names) == 2 and name in names
    other = (names - {name}).pop()
    assert other.startswith("sma_cross-SPY+4-") and f"'{other}'" in levered.output
    api_levered = ivybt.optimize("sma_cross", symbols=DEMO_TEXT, params=space, trials=8,
                                 storage=str(journal), evidence=False,
                                 portfolio={"max_leverage": 2.0}, **SAMPLE)  # fmt: skip
    assert api_levered.study.study_name == other


# 6. The look-ahead checker on a universe ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_lookahead_check_passes_every_builtin_strategy_on_a_universe(name):
    ran = _cli("check-lookahead", name, "--symbols", DEMO_TEXT, "--source", "sample", "--start",
               "2002-01-01", "--cuts", "3", "--direction", "both", "--json")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    assert report["ok"] and len(report["cuts"]) == 3
    assert "side of GOOG" in report["compared"] and "weight of IBM" in report["compared"]
    assert "equity" in report["compared"]


def test_lookahead_check_fails_a_peeking_strategy_on_a_universe(tmp_path, monkeypatch):
    module = _module(tmp_path, monkeypatch, "leaky_portfolio_strategies", LEAKY_MODULE)
    ran = _cli("check-lookahead", f"{module}:NextClose", "--symbols", "SPY,MSFT,AAPL",
               "--source", "sample", "--start", "2012-01-01", "--cuts", "4")  # fmt: skip
    assert ran.exit_code == 1, ran.output
    assert "Traceback" not in ran.output and len(ran.output.splitlines()) == 1
    assert re.match(r"look-ahead: (side|weight) of (SPY|MSFT|AAPL) at bar \d+ ", ran.output)
    assert "cuts differ" in ran.output


# 7. Monte Carlo of a universe's backtest ---------------------------------------------------------


def test_montecarlo_of_a_universe_backtest_is_a_block_bootstrap(tmp_path):
    folder = tmp_path / "bt"
    result = ivybt.backtest("sma_cross", symbols=DEMO_TEXT, start="2005-01-01", out=folder,
                            **SAMPLE)  # fmt: skip
    study = monte_carlo(folder, n=200, seed=1)
    assert study.method == "block" and study.n_returns == len(result.equity)
    assert study.observed["total_return"] == pytest.approx(result.metrics["total_return"],
                                                           rel=1e-12)  # fmt: skip
    assert study.observed["max_drawdown"] == pytest.approx(result.metrics["max_drawdown"],
                                                           rel=1e-12)  # fmt: skip
    assert all(path.exists() for path in study.files)
    with pytest.raises(ConfigError, match="overlap in time"):
        monte_carlo(folder, n=200, method="trades")
    refused = _cli("montecarlo", str(folder), "--method", "trades")
    assert refused.exit_code == 2
    assert "Traceback" not in refused.output and "--method block" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    shown = _cli("montecarlo", str(folder), "--n", "100")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("block bootstrap of backtest")


# 8. Memory: 100 symbols -------------------------------------------------------------------------


def test_universe_grid_under_a_tight_budget_gives_the_same_table():
    """A universe grid whose chunks hold 10 of its 36 SMA rows (tiles of the fast x slow
    plane, each chunk's tables built for every symbol) equals the unbudgeted grid bit for
    bit, in enumeration order."""

    from ivybt.studies import grid as grid_module

    frames = dict(list(_hundred_symbols(600).items())[:4])
    bars = UniverseBars(panel_from_frames(frames, "1d"), PortfolioConfig())
    space = build_space(BUILTIN["sma_cross"], {"fast": "5:30:2", "slow": "10:80:3"})
    buffers = grid_module.working_bytes(bars.memory_bars)
    budget = 2 * (buffers + 10 * 8 * bars.memory_bars)
    calls = []
    whole = evaluate_space(bars, space, ExecutionConfig(), periods_per_year=252.0)
    tight = evaluate_space(bars, space, ExecutionConfig(), periods_per_year=252.0,
                           memory_budget=budget, progress=lambda d, _: calls.append(d),
                           )  # fmt: skip
    np.testing.assert_array_equal(whole, tight)
    assert len(calls) > 5 and calls[-1] == len(space)


def _hundred_symbols(n_bars: int) -> dict[str, pd.DataFrame]:
    """100 symbols on one calendar: windows of the bundled SPY bars at spread offsets,
    re-dated onto its last `n_bars` dates and rescaled, so each has its own signals."""
    spy, _ = load_sample("SPY", "1d")
    spy = spy[["open", "high", "low", "close", "volume"]]
    dates = spy.index[-n_bars:]
    frames = {}
    for k in range(100):
        offset = (k * 53) % (len(spy) - n_bars)
        frame = spy.iloc[offset : offset + n_bars].copy()
        frame.index = dates
        frame[["open", "high", "low", "close"]] *= 1.0 + 0.01 * k
        frames[f"S{k:03d}"] = frame
    return frames


def _peak_rss_bytes() -> int:
    """The process's resident-set high-water mark (VmHWM)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_hundred_symbols_grid_holds_the_default_memory_budget():
    """W3's memory point: 100 symbols x 2,520 bars x the 1,000 sma_cross combinations of
    benchmarks/w3_data.py, in the default budget (1 GiB), its rows still the portfolios."""
    panel = panel_from_frames(_hundred_symbols(2520), "1d")
    bars = UniverseBars(panel, PortfolioConfig())
    space = build_space(BUILTIN["sma_cross"], {"fast": "5:110:5", "slow": "15:285:5"})
    assert len(space) == 1000
    execution = ExecutionConfig()
    if not _reset_peak_rss():
        pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs)")
    before = _peak_rss_bytes()
    tracemalloc.start()
    try:
        metrics = evaluate_space(bars, space, execution, periods_per_year=252.0,
                                 memory_budget=DEFAULT_MEMORY_BUDGET)  # fmt: skip
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown = _peak_rss_bytes() - before
    assert metrics.shape == (len(space), len(METRIC_NAMES))
    assert np.isfinite(metrics[:, METRIC_NAMES.index("total_return")]).all()
    assert traced_peak < DEFAULT_MEMORY_BUDGET, traced_peak  # numpy's arrays, tables included
    assert grown < DEFAULT_MEMORY_BUDGET, grown  # and everything else the process touched
    for j in (0, len(space) - 1):  # the rows are still the portfolios of their combinations
        run = simulate_portfolio(panel, BUILTIN["sma_cross"], space.combination(j), execution,
                                 PortfolioConfig(), periods_per_year=252.0)  # fmt: skip
        for k, m in enumerate(METRIC_NAMES):
            assert _same(float(metrics[j, k]), run.metrics[m]), (j, m)


# -- vol_window: the inverse-volatility window is a parameter like any other ----------------------


def test_vol_window_grid_rows_equal_portfolio_backtests_bit_for_bit() -> None:
    """`-p vol_window=...` varies the window of inverse-volatility weights next to the
    strategy's parameters: row j is the backtest with that window, bit for bit."""
    result = ivybt.grid(
        "sma_cross", symbols=DEMO, **SAMPLE, start="2003-01-01", end="2014-01-01",
        params={"fast": "10:30:20", "slow": "60:100:40", "vol_window": "20:100:40"},
        portfolio={"weights": "inverse_vol", "max_weight": 0.5},
    )  # fmt: skip
    table = result.table
    assert sorted(table["param_vol_window"].unique()) == [20, 60, 100]
    by_window = table.groupby("param_vol_window")["sharpe"].apply(tuple)
    assert by_window[20] != by_window[100], "the window must change the weights"
    for j in (0, len(table) // 2, len(table) - 1):
        row = table.iloc[j]
        single = ivybt.backtest(
            "sma_cross", symbols=DEMO, **SAMPLE, start="2003-01-01", end="2014-01-01",
            params={"fast": int(row["param_fast"]), "slow": int(row["param_slow"])},
            portfolio={"weights": "inverse_vol", "max_weight": 0.5,
                       "vol_window": int(row["param_vol_window"])},
        )  # fmt: skip
        differ = [m for m in METRIC_NAMES if not _same(float(row[m]), single.metrics[m])]
        assert not differ, (j, {m: (row[m], single.metrics[m]) for m in differ})


def test_vol_window_needs_a_universe_with_inverse_volatility_weights(tmp_path: Path) -> None:
    for args in (["--symbol", "SPY"], ["--symbols", "SPY,MSFT"]):
        result = _cli("grid", "sma_cross", *args, "--source", "sample", "-p", "fast=10",
                      "-p", "slow=50", "-p", "vol_window=20:60:20", results=tmp_path)  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "-p vol_window varies a universe's inverse-volatility weights" in result.output


def test_vol_window_walks_forward_and_is_searched(tmp_path: Path) -> None:
    folder = tmp_path / "wf"
    result = _cli(
        "walkforward", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample",
        "--start", "2003-01-01", "--weights", "inverse_vol", "-p", "fast=10:30:20",
        "-p", "slow=60:100:40", "-p", "vol_window=20:100:80", "--is", "3y", "--oos", "2y",
        "--out", str(folder), results=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    surface = pd.read_parquet(folder / "surface.parquet")
    assert set(surface["param_vol_window"]) == {20, 100}
    folds = pd.read_parquet(folder / "folds.parquet")
    assert folds["param_vol_window"].notna().all()
    search = _cli(
        "optimize", "sma_cross", "--symbols", DEMO_TEXT, "--source", "sample",
        "--weights", "inverse_vol", "-p", "fast=10:30", "-p", "slow=60:100",
        "-p", "vol_window=20:100", "--trials", "16", "--seed", "3",
        "--storage", str(tmp_path / "s.journal"), "--out", str(tmp_path / "opt"),
        results=tmp_path,
    )  # fmt: skip
    assert search.exit_code == 0, search.output
    trials = pd.read_parquet(tmp_path / "opt" / "trials.parquet")
    assert trials["param_vol_window"].between(20, 100).all()
