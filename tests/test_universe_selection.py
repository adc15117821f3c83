"""`--select-universe`: the traded symbols chosen by their in-sample results, judged out of
sample in walk-forward folds, and warned about as in-sample in a backtest or grid."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.config import PortfolioConfig, build_config
from ivybt.data.panel import panel_from_frames
from ivybt.engine.portfolio import simulate_portfolio
from ivybt.errors import ConfigError, InSampleWarning
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.report.universe import CHOSEN_MARK, UNIVERSE_HEADING
from ivybt.strategies import get_strategy
from ivybt.studies.universe_selection import choose, select_universe, symbol_results
from tests.browser import Chromium, require_chromium

DEMO = ("SPY", "MSFT", "AAPL", "GOOG", "IBM")
SMA = {"fast": "10,20", "slow": "50"}


def _random_walks(n_symbols: int, n_bars: int, seed: int) -> dict[str, pd.DataFrame]:
    """Random walks on one shared index, drifts from -0.05 % to +0.1 % a bar."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2012-01-02", periods=n_bars)
    frames = {}
    for s in range(n_symbols):
        drift = -0.0005 + 0.0015 * s / max(n_symbols - 1, 1)
        close = 50.0 * np.exp(np.cumsum(rng.normal(drift, 0.015, n_bars)))
        opens = close * np.exp(rng.normal(0.0, 0.003, n_bars))
        frames[f"S{s}"] = pd.DataFrame(
            {"open": opens, "high": np.maximum(opens, close) * 1.005,
             "low": np.minimum(opens, close) * 0.995, "close": close, "volume": 1e6},
            index=index,
        )  # fmt: skip
    return frames


# -- the rule -----------------------------------------------------------------------------


def test_top_n_keeps_the_best_and_breaks_ties_by_universe_order():
    values = np.array([0.5, 1.0, np.nan, 1.0, -0.2])
    assert choose(values, "top:2") == (1, 3)
    assert choose(values, "top:3") == (0, 1, 3)
    assert choose(np.array([1.0, 1.0, 1.0]), "top:2") == (0, 1)  # ties: the first listed
    assert choose(values, "top:10") == (0, 1, 3, 4)  # NaN (undefined) is never chosen


def test_a_minimum_keeps_every_symbol_at_or_above_it_and_combines_with_top():
    values = np.array([0.5, 1.0, np.nan, 1.2, -0.2])
    assert choose(values, "min:0.5") == (0, 1, 3)
    assert choose(values, "top:1,min:0.5") == (3,)
    assert choose(values, "min:2") == ()


def test_max_drawdown_ranks_the_shallowest_first():
    assert choose(np.array([-0.5, -0.1, -0.3]), "top:1") == (1,)


@pytest.mark.parametrize(
    ("given", "stored"),
    [("top:3", "top:3"), (" TOP:3 , MIN:0.50 ", "top:3,min:0.5"), ("min:-1", "min:-1.0")],
)
def test_the_rule_is_stored_in_one_spelling(given, stored):
    assert PortfolioConfig(select_universe=given).select_universe == stored


@pytest.mark.parametrize("bad", ["best:3", "top:0", "top:x", "min:nan", "top:2,top:3", "top"])
def test_a_rule_that_is_not_one_names_the_forms(bad):
    with pytest.raises(ConfigError, match="is not a universe rule: use top:N"):
        build_config(data={"symbols": ["SPY", "MSFT"]}, strategy={"name": "sma_cross"},
                     portfolio={"select_universe": bad})  # fmt: skip


def test_an_unknown_metric_suggests_the_nearest():
    with pytest.raises(ConfigError, match="unknown metric 'sharp'; did you mean sharpe"):
        build_config(data={"symbols": ["SPY", "MSFT"]}, strategy={"name": "sma_cross"},
                     portfolio={"select_universe": "top:1", "select_by": "sharp"})  # fmt: skip


def test_a_rule_on_one_symbol_is_refused():
    with pytest.raises(ConfigError, match="chooses among a universe's symbols"):
        build_config(data={"symbol": "SPY"}, strategy={"name": "sma_cross"},
                     portfolio={"select_universe": "top:1"})  # fmt: skip


# -- a symbol's in-sample result -------------------------------------------------------------


def test_each_symbols_result_is_its_one_symbol_backtest():
    """Per-symbol strategy, equal weights: symbol s alone in the account is the one-symbol
    universe's backtest of s (itself the single-symbol run, tests/test_portfolio_runs.py)."""
    frames = _random_walks(4, 500, seed=11)
    panel = panel_from_frames(frames)
    strategy = get_strategy("sma_cross")
    params = strategy.resolve_params({"fast": 10, "slow": 40})
    config = build_config(data={"symbols": list(frames)}, strategy={"name": "sma_cross"})
    window = slice(100, 400)
    got = symbol_results(panel, strategy, params, config.execution, config.portfolio, window,
                         252.0)  # fmt: skip
    for s in range(len(frames)):
        sub = simulate_portfolio(
            panel.subset((s,)), strategy, params, config.execution, config.portfolio,
            window=window, periods_per_year=252.0,
        )  # fmt: skip
        want = np.array([sub.metrics[m] for m in METRIC_NAMES])
        np.testing.assert_array_equal(got[s], want)


def test_a_symbol_the_ranking_never_picks_has_no_result_and_is_not_chosen():
    frames = _random_walks(4, 400, seed=5)
    panel = panel_from_frames(frames)
    strategy = get_strategy("momentum_rotation")
    params = strategy.resolve_params({"lookback": 60, "skip": 0, "k": 1})
    config = build_config(data={"symbols": list(frames)}, strategy={"name": "momentum_rotation"},
                          portfolio={"select_universe": "top:4"})  # fmt: skip
    choice = select_universe(panel, strategy, params, config.execution, config.portfolio,
                             slice(0, 400), 252.0)  # fmt: skip
    n_trades = choice.results[:, METRIC_NAMES.index("n_trades")]
    never = np.flatnonzero(n_trades == 0)
    assert never.size >= 1  # one held symbol at a time: some symbol is never the best
    assert not set(never) & set(choice.columns)
    assert np.isnan(choice.values[never]).all()


# -- walk-forward ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory: pytest.TempPathFactory):
    frames = _random_walks(6, 1_000, seed=21)
    common = {"symbols": list(frames), "data": frames, "params": SMA, "in_sample": 300,
              "out_of_sample": 150, "periods_per_year": 252}  # fmt: skip
    root = tmp_path_factory.mktemp("select")
    chosen = ivybt.walk_forward("sma_cross", **common, out=root / "chosen",
                                portfolio={"select_universe": "top:2"})  # fmt: skip
    every = ivybt.walk_forward("sma_cross", **common, out=root / "every")
    return frames, chosen, every


def test_each_fold_chooses_on_its_in_sample_bars_only(synthetic_runs):
    frames, chosen, _ = synthetic_runs
    panel = panel_from_frames(frames)
    strategy = get_strategy("sma_cross")
    config = chosen.config
    for fold in chosen.folds.itertuples():
        params = strategy.resolve_params(
            {n: getattr(fold, f"param_{n}") for n in ("fast", "slow")}
        )
        # the bars after the IS window do not exist for the choice
        want = select_universe(
            panel.window(0, fold.is_end), strategy, params, config.execution, config.portfolio,
            slice(fold.is_start, fold.is_end), 252.0,
        )  # fmt: skip
        got = [s for s in frames if getattr(fold, f"universe_{s}")]
        assert got == list(want.symbols) and fold.n_chosen == 2
        for s, value in zip(frames, want.values, strict=True):
            assert getattr(fold, f"universe_score_{s}") == pytest.approx(value, nan_ok=True)


def test_the_stitched_equity_trades_only_the_chosen_symbols(synthetic_runs):
    frames, chosen, every = synthetic_runs
    panel = panel_from_frames(frames)
    strategy = get_strategy("sma_cross")
    config = chosen.config
    equity = chosen.oos_equity
    held = config.execution.initial_cash
    for fold in chosen.folds.itertuples():
        params = strategy.resolve_params(
            {n: getattr(fold, f"param_{n}") for n in ("fast", "slow")}
        )
        columns = tuple(k for k, s in enumerate(frames) if getattr(fold, f"universe_{s}"))
        run = simulate_portfolio(
            panel.window(0, fold.oos_end).subset(columns), strategy, params, config.execution,
            config.portfolio, window=slice(fold.oos_start, fold.oos_end), periods_per_year=252.0,
        )  # fmt: skip
        part = equity.loc[equity["fold"] == fold.fold, "equity"].to_numpy()
        np.testing.assert_allclose(part, run.equity * held / config.execution.initial_cash,
                                   rtol=1e-12)  # fmt: skip
        assert fold.universe_oos_total_return == pytest.approx(run.metrics["total_return"])
        held = part[-1]
    # the yardstick: every symbol with the same parameters is the study without a choice
    np.testing.assert_array_equal(equity["all_symbols"], every.oos_equity["equity"])
    assert chosen.metrics["universe_selection"]["oos_all_symbols"] == every.metrics["oos"]
    worth = chosen.metrics["universe_selection"]["worth"]["sharpe"]
    assert worth == pytest.approx(chosen.metrics["oos"]["sharpe"] - every.metrics["oos"]["sharpe"])
    # the surfaces are the parameters' verdict on every symbol, the same in both studies
    pd.testing.assert_frame_equal(chosen.surface, every.surface)


def test_a_rerun_resumes_from_the_folds_with_the_same_result(synthetic_runs):
    frames, chosen, _ = synthetic_runs
    again = ivybt.walk_forward(
        "sma_cross", symbols=list(frames), data=frames, params=SMA, in_sample=300,
        out_of_sample=150, periods_per_year=252, out=chosen.folder,
        portfolio={"select_universe": "top:2"},
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.folds, chosen.folds)
    pd.testing.assert_frame_equal(again.oos_equity, chosen.oos_equity)


def test_walkforward_on_the_bundled_equities_draws_the_universe_per_fold(tmp_path):
    """Done-when: offline, on the bundled demo equities, through the CLI; the report opens in
    headless Chromium with every figure drawn and a mark on each chosen cell."""
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "walkforward", "sma_cross", "--symbols", ",".join(DEMO), "--source", "sample",
        "-p", "fast=10,20", "-p", "slow=50,100", "--is", "3y", "--oos", "2y",
        "--start", "2006-01-01", "--select-universe", "top:2,min:0", "--by", "sortino",
        "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "every symbol" in result.output and "universe: top 2 by sortino" in result.output
    folds = pd.read_parquet(out / "folds.parquet")
    marks = int(folds[[f"universe_{s}" for s in DEMO]].to_numpy().sum())
    assert marks == folds["n_chosen"].sum() and (folds["n_chosen"] <= 2).all() and marks > 0
    metrics = json.loads((out / "metrics.json").read_text())["universe_selection"]
    assert metrics["described"] == "top 2 by sortino with sortino >= 0"
    assert sum(metrics["times_chosen"].values()) == marks
    assert "all_symbols" in pd.read_parquet(out / "oos_equity.parquet")
    report = out / "report.html"
    text = report.read_text()
    assert UNIVERSE_HEADING in text
    require_chromium()
    count_marks = (f"[...document.querySelectorAll('.js-plotly-plot text')]"
                   f".filter(t => t.textContent === '{CHOSEN_MARK}').length")  # fmt: skip
    with Chromium() as browser:
        page = browser.open(report, checks={"marks": count_marks})
    assert page.errors == [] and page.external_requests == []
    assert page.graphs == page.plots == text.count('<section class="figure">') == 7
    assert page.values["marks"] == marks


# -- backtest and grid: in-sample, and said so -----------------------------------------------


def test_a_backtest_choosing_on_its_own_bars_warns_that_it_is_in_sample():
    with pytest.warns(InSampleWarning, match="in-sample"):
        result = ivybt.backtest("sma_cross", symbols=DEMO, source="sample",
                                portfolio={"select_universe": "top:2"})  # fmt: skip
    universe = result.headline()["universe_selection"]
    assert result.symbols == tuple(universe["symbols"]) and len(result.symbols) == 2
    assert universe["in_sample"] is True and set(universe["values"]) == set(DEMO)
    assert [record["symbol"] for record in result.data] == list(DEMO)  # the choice saw them all


def test_a_test_split_chooses_on_the_training_bars_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InSampleWarning)
        result = ivybt.backtest(
            "sma_cross", symbols=DEMO, source="sample", train_split=0.6, run_mode="test",
            portfolio={"select_universe": "top:2"},
        )  # fmt: skip
    universe = result.headline()["universe_selection"]
    assert universe["in_sample"] is False
    assert universe["last"] < result.equity.index[0].isoformat()  # chosen before the test part


def test_a_grid_says_the_best_combinations_universe_is_in_sample(tmp_path):
    with pytest.warns(InSampleWarning, match="best combination"):
        result = ivybt.grid("sma_cross", symbols=DEMO, source="sample", params=SMA,
                            portfolio={"select_universe": "top:2"})  # fmt: skip
    universe = result.headline()["universe_selection"]
    assert universe["params"] == result.best_params() and len(universe["symbols"]) == 2
    with pytest.warns(InSampleWarning):
        alone = ivybt.backtest("sma_cross", symbols=DEMO, source="sample",
                               params=result.best_params(),
                               portfolio={"select_universe": "top:2"})  # fmt: skip
    assert universe["symbols"] == list(alone.symbols)
    assert universe["metrics"]["sharpe"] == pytest.approx(alone.metrics["sharpe"], rel=1e-12)


@pytest.mark.parametrize(
    ("command", "message"),
    [(["optimize", "--trials", "4"], "not a search"),
     (["check-lookahead"], "see the future by construction")],
)  # fmt: skip
def test_commands_it_does_not_fit_refuse_it_in_one_line(command, message, tmp_path):
    result = CliRunner().invoke(cli, [
        command[0], "sma_cross", *command[1:], "--symbols", "SPY,MSFT", "--source", "sample",
        "--select-universe", "top:1",
    ])  # fmt: skip
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_a_positional_benchmark_cannot_be_renumbered():
    with pytest.raises(ConfigError, match="names a symbol by its position"):
        ivybt.walk_forward("relative_strength", symbols=DEMO, source="sample",
                           in_sample="3y", out_of_sample="2y",
                           portfolio={"select_universe": "top:2"})  # fmt: skip


def test_a_backtest_where_no_symbol_qualifies_says_how_to_fix_it():
    with pytest.raises(ConfigError, match="meets sharpe >= 9; lower the minimum"):
        ivybt.backtest("sma_cross", symbols=DEMO, source="sample",
                       portfolio={"select_universe": "min:9"})  # fmt: skip


def test_the_chosen_universe_results_are_independent_of_unchosen_symbols_after_the_choice():
    """The fold's choice reads nothing after its IS window: changing every bar after it
    leaves the choice unchanged."""
    frames = _random_walks(5, 600, seed=8)
    panel = panel_from_frames(frames)
    changed = {name: frame.copy() for name, frame in frames.items()}
    for frame in changed.values():
        frame.iloc[400:] *= 1.7
    strategy = get_strategy("sma_cross")
    params = strategy.resolve_params({"fast": 10, "slow": 40})
    config = build_config(data={"symbols": list(frames)}, strategy={"name": "sma_cross"},
                          portfolio={"select_universe": "top:2"})  # fmt: skip
    picks = [
        select_universe(p.window(0, 400), strategy, params, config.execution, config.portfolio,
                        slice(100, 400), 252.0)
        for p in (panel, panel_from_frames(changed))
    ]  # fmt: skip
    assert picks[0].symbols == picks[1].symbols
    np.testing.assert_array_equal(picks[0].results, picks[1].results)


def test_the_report_notes_what_the_fold_table_measures(synthetic_runs):
    _, chosen, _ = synthetic_runs
    text = (Path(chosen.folder) / "report.html").read_text()
    assert "what choosing the universe was worth" in text and "universe_oos_*" in text
