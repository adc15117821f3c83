"""Exits varied per combination on a universe (issue #16): `--symbols ... -p sl=... -p
trail=...` in a grid, a search and a walk-forward study, each combination's account trading
its own exits (`ivybt.kernels.portfolio_grid.combination_rules_nb`), equal bit for bit to the
portfolio backtest with those exits (0: off) (docs/stops.md, "Stops on a universe")."""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig, PortfolioConfig
from ivybt.data.panel import load_panel
from ivybt.engine.portfolio import UniverseBars, simulate_portfolio
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import get_strategy
from ivybt.studies.grid import evaluate_returns
from ivybt.studies.space import build_space, execution_with, with_exits

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("SPY", "MSFT", "AAPL")
COMMON = {"symbols": list(SYMBOLS), "source": "sample", "start": "2012-01-01"}
EXITS = {"sl": "0,0.03", "trail": "0,0.05"}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def panel():
    return load_panel(SYMBOLS, "1d", "2012-01-01", None, source="sample")


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _exits_of(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """A table row's exits as backtest keywords (0: off, so None)."""
    kinds = {"max_bars": int}
    return {name: kinds.get(name, float)(row[f"param_{name}"]) or None for name in names}


def assert_rows_are_backtests(name: str, result: Any, options: dict[str, Any]) -> None:
    """Every row of `result` (a universe grid) equals the backtest of its parameters with its
    exits, bit for bit, and the exits changed something."""
    table = result.table
    exits = result.space.exit_names
    for j in range(len(table)):
        row = table.iloc[j]
        params = {p.name: p.kind(row[f"param_{p.name}"]) for p in result.strategy.params
                  if f"param_{p.name}" in row}  # fmt: skip
        single = ivybt.backtest(name, params=params, **_exits_of(row, exits), **options)
        assert type(single).__name__ == "PortfolioResult"
        differ = [m for m in METRIC_NAMES if not _same(float(row[m]), single.metrics[m])]
        assert not differ, (j, {m: (row[m], single.metrics[m]) for m in differ})
    strategy_columns = [f"param_{p.name}" for p in result.strategy.params
                        if f"param_{p.name}" in table]  # fmt: skip
    spread = table.groupby(strategy_columns)["sharpe"].nunique()
    assert (spread > 1).any(), "the exits must change some combination's results"


@pytest.mark.parametrize(
    ("name", "space", "options"),
    [
        ("sma_cross", {"fast": "10,20", "slow": "50"}, {"direction": "both"}),
        ("momentum_rotation", {"lookback": "63", "k": "1,2"}, {}),
    ],
)  # fmt: skip
def test_grid_rows_with_exit_params_equal_portfolio_backtests(name, space, options):
    result = ivybt.grid(name, params={**space, **EXITS}, evidence=False, **COMMON, **options)
    assert result.space.exit_names == ("sl", "trail")
    assert set(result.table["param_sl"]) == {0.0, 0.03}
    assert len(result.table) == len(build_space(get_strategy(name), space)) * 4
    assert_rows_are_backtests(name, result, {**COMMON, **options})
    best = result.best_exits()
    assert set(best) == {"sl", "trail"}


def test_atr_and_time_stops_varied_on_a_universe_need_no_fixed_exit():
    """`-p sl_atr=...` without `--sl-atr`: the ATR rows of `atr_length` are built anyway;
    `-p max_bars=...` next to a fixed `--tp` that every combination keeps."""
    options = {**COMMON, "tp": 0.1, "atr_length": 10, "fill": "close"}
    result = ivybt.grid("sma_cross", params={"fast": "10", "slow": "50", "sl_atr": "0,2",
                                             "max_bars": "0,20"}, evidence=False,
                        **options)  # fmt: skip
    assert len(result.table) == 4
    assert_rows_are_backtests("sma_cross", result, options)


def test_plugin_strategy_grid_rows_with_exit_params_equal_portfolio_backtests(
    tmp_path, monkeypatch
):
    """A user's signal kernel: its portfolio grid kernel reads each combination's exits,
    and the per-bar returns of the overfitting statistics are evaluated with them."""
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    (tmp_path / "my_exit_strategies.py").write_text(
        re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0], encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_exit_strategies", raising=False)
    strategy = "my_exit_strategies:KeltnerBreakout"
    result = ivybt.grid(strategy, params={"window": "20", "multiplier": "1.5,2.5", **EXITS},
                        **COMMON)  # fmt: skip
    assert len(result.table) == 8 and result.evidence is not None
    assert_rows_are_backtests(strategy, result, COMMON)


def test_a_cross_sectional_plugins_rows_with_exit_params_equal_its_backtests(
    tmp_path, monkeypatch
):
    """A user's score kernel: its cross-sectional grid kernel reads each combination's exits."""
    from tests.test_cross_section import REVERSAL

    text = textwrap.dedent(REVERSAL).replace('name = "losers"', 'name = "losers_exits"')
    (tmp_path / "reversal_exits.py").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "reversal_exits", raising=False)
    strategy = "reversal_exits:Losers"
    result = ivybt.grid(strategy, params={"window": "5", "k": "1,2", "sl": "0,0.03",
                                          "max_bars": "0,10"}, evidence=False,
                        **COMMON)  # fmt: skip
    assert len(result.table) == 8
    assert_rows_are_backtests(strategy, result, COMMON)


@pytest.mark.parametrize(
    ("name", "space"),
    [("sma_cross", {"fast": "10,20", "slow": "50"}), ("momentum_rotation", {"k": "1,2"})],
)
def test_universe_returns_with_exit_params_are_the_backtests_returns(panel, name, space):
    """The per-bar returns PBO reads (the built-in kernel, and a cross-sectional strategy
    one combination at a time) are each backtest's, with its exits."""
    strategy = get_strategy(name)
    execution = ExecutionConfig(tp=0.2)  # a fixed exit kept by every combination
    space = with_exits(build_space(strategy, space), EXITS, max_combinations=100)
    returns = evaluate_returns(UniverseBars(panel, PortfolioConfig()), space, execution,
                               first_bar=100)  # fmt: skip
    for j in range(len(space)):
        traded = execution_with(execution, space.exits(j))
        run = simulate_portfolio(panel, strategy, space.combination(j), traded,
                                 PortfolioConfig(), window=slice(100, panel.n_bars),
                                 periods_per_year=252.0)  # fmt: skip
        previous = np.r_[execution.initial_cash, run.equity[:-1]]
        want = np.where(run.equity != previous, run.equity / previous - 1.0, 0.0)
        np.testing.assert_array_equal(returns[:, j], want, err_msg=str(space.exits(j)))


def test_a_search_over_exits_on_a_universe_trades_each_trial_with_its_own(tmp_path):
    params = {"fast": "5:20:5", "slow": "50,100", "sl": "0:0.1:0.02"}
    result = ivybt.optimize("sma_cross", params=params, trials=10, seed=4, batch_size=5,
                            results_dir=tmp_path, **COMMON)  # fmt: skip
    trials = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len({t.params["sl"] for t in trials}) > 1
    for trial in trials:
        exits = result.exits(trial)
        assert exits == {"sl": trial.params["sl"]}
        single = ivybt.backtest(
            "sma_cross", params={k: trial.params[k] for k in ("fast", "slow")},
            sl=exits["sl"] or None, **COMMON,
        )  # fmt: skip
        for m in METRIC_NAMES:
            assert _same(trial.user_attrs[m], single.metrics[m]), (trial.number, m)
    evidence = result.evidence()  # PBO re-evaluates every trial with its own exits
    assert evidence is not None and evidence["pbo"] is not None


def test_a_walk_forward_on_a_universe_trades_each_folds_exits(panel, tmp_path):
    params = {"fast": "10,20", "slow": "50", "sl": "0,0.02,0.05"}
    out = tmp_path / "wf"
    result = ivybt.walk_forward("sma_cross", params=params, in_sample="2y", out_of_sample="1y",
                                out=out, evidence=False, **COMMON)  # fmt: skip
    folds = result.folds
    assert len(folds) >= 5 and folds["param_sl"].notna().all()
    assert set(result.surface["param_sl"]) == {0.0, 0.02, 0.05}
    record = json.loads((out / "folds" / "fold-000.json").read_text())
    assert set(record["params"]) == {"fast", "slow", "sl"}
    choices = json.loads((out / "metrics.json").read_text())["folds"]
    assert [c["params"]["sl"] for c in choices] == list(folds["param_sl"])
    strategy = get_strategy("sma_cross")
    equity = result.oos_equity
    held = 10_000.0
    for row in folds.itertuples():
        chosen = {"fast": int(row.param_fast), "slow": int(row.param_slow)}
        execution = ExecutionConfig(sl=float(row.param_sl) or None)
        seen = panel.window(0, row.oos_end)
        for side, (a, b) in (("is", (row.is_start, row.is_end)),
                             ("oos", (row.oos_start, row.oos_end))):  # fmt: skip
            run = simulate_portfolio(seen, strategy, chosen, execution, PortfolioConfig(),
                                     window=slice(a, b), periods_per_year=252.0)  # fmt: skip
            for m in METRIC_NAMES:
                assert _same(getattr(row, f"{side}_{m}"), run.metrics[m]), (row.fold, side, m)
        part = equity.loc[equity["fold"] == row.fold, "equity"].to_numpy()
        np.testing.assert_allclose(part, run.equity * (held / 10_000.0), rtol=1e-12)
        held = part[-1]
    assert (folds["param_sl"] > 0).any(), "a stop-loss was chosen in some fold"


COMMANDS = {
    "grid": ["grid"],
    "optimize": ["optimize", "--trials", "4", "--seed", "1"],
    "walkforward": ["walkforward", "--is", "2y", "--oos", "1y"],
    "walkforward-optuna": ["walkforward", "--is", "2y", "--oos", "1y", "--search", "optuna",
                           "--trials", "4", "--seed", "1"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_commands_vary_exits_on_a_universe(command, tmp_path):
    """Once refused in one line; now each command runs with the exits as parameters."""
    head, *extra = COMMANDS[command]
    result = CliRunner().invoke(cli, [
        "--results-dir", str(tmp_path), head, "sma_cross", "--symbols", ",".join(SYMBOLS),
        "--source", "sample", "--start", "2012-01-01", "-p", "fast=5,10", "-p", "slow=50",
        "-p", "sl=0,0.05", "--no-evidence", "--out", str(tmp_path / "run"), *extra,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "varies exits" not in result.output
    if head == "walkforward":
        folds = json.loads((tmp_path / "run" / "metrics.json").read_text())["folds"]
        assert all("sl" in fold["params"] for fold in folds if fold["params"])


def test_select_universe_with_exit_params_trades_the_chosen_exits(panel):
    """`--select-universe` chooses and measures the symbols with the best row's own exits."""
    from ivybt.errors import InSampleWarning
    from ivybt.studies.universe_selection import chosen_metrics, select_universe

    with pytest.warns(InSampleWarning):
        result = ivybt.grid("sma_cross", params={"fast": "10,20", "slow": "50", "sl": "0.03"},
                            evidence=False, portfolio={"select_universe": "top:2"},
                            **COMMON)  # fmt: skip
    universe = result.universe
    assert set(universe["params"]) == {"fast", "slow", "sl"} and universe["params"]["sl"] == 0.03
    chosen = {k: universe["params"][k] for k in ("fast", "slow")}
    strategy = get_strategy("sma_cross")
    rule = PortfolioConfig(select_universe="top:2")
    window = slice(0, panel.n_bars)
    choice = select_universe(panel, strategy, chosen, ExecutionConfig(sl=0.03), rule, window,
                             252.0)  # fmt: skip
    assert list(choice.symbols) == universe["symbols"]
    for sl, same in ((0.03, True), (None, False)):
        metrics = chosen_metrics(panel, choice.columns, strategy, chosen, ExecutionConfig(sl=sl),
                                 rule, window, 252.0)  # fmt: skip
        assert (metrics["sharpe"] == universe["metrics"]["sharpe"]) == same, sl
