"""Grid engine: every combination equals its single backtest; spaces; chunks; CLI and API."""

from __future__ import annotations

import itertools
import json
import sys

import numba
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import ivybt
from ivybt.cli import cli
from ivybt.config import ExecutionConfig
from ivybt.engine.simulation import simulate_strategy
from ivybt.errors import ConfigError
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN, Param, get_strategy
from ivybt.studies import grid as grid_module
from ivybt.studies.grid import evaluate_space, evaluate_windows
from ivybt.studies.space import build_space, parse_spec
from tests.test_strategies import _docs_example

SPACES = {
    "sma_cross": {"fast": "5:25:5", "slow": "20:80:15"},
    "ema_cross": {"fast": "3,8,12", "slow": "20:60:20"},
    "macd_cross": {"fast": "6:12:3", "slow": "20:30:5", "signal": "5,9"},
    "rsi_reversion": {"window": "7:21:7", "lower": "20:35:5", "upper": "55,70"},
    "bollinger_reversion": {"window": "10:30:10", "num_std": "1.5:2.5:0.5"},
    "donchian_breakout": {"entry_window": "10:40:10", "exit_window": "5:20:5"},
    "bbkc_squeeze": {"bb_std": "1.5,2.0", "kc_mult": "1.0:2.0:0.5", "momentum_window": "8,12"},
}


def single_rows(columns, space, execution, *, window=None):
    return np.array(
        [
            [
                simulate_strategy(
                    columns, space.strategy, space.combination(j), execution, window=window,
                    periods_per_year=252.0,
                ).metrics[name]
                for name in METRIC_NAMES
            ]
            for j in range(len(space))
        ]
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(SPACES))
def test_grid_rows_equal_single_backtests_bit_for_bit(spy_columns, name):
    space = build_space(BUILTIN[name], SPACES[name])
    execution = ExecutionConfig(direction="both", fill="next_open")
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    want = single_rows(spy_columns, space, execution)
    np.testing.assert_array_equal(got, want)
    assert (got[:, METRIC_NAMES.index("n_trades")] > 0).any()


@pytest.mark.parametrize("name", ["sma_cross", "macd_cross"])
@pytest.mark.parametrize("fill", ["close", "next_open"])
@pytest.mark.parametrize("direction", ["long", "short", "both"])
@pytest.mark.parametrize("first_bar", [0, 1400])
def test_fused_crossover_path_equals_single_backtests(spy_columns, name, fill, direction,
                                                      first_bar):  # fmt: skip
    """Crossovers skip the target array (`follow_moves_metrics_nb`); every setting that path
    branches on still gives the single backtest's metrics bit for bit."""
    space = build_space(BUILTIN[name], SPACES[name])
    execution = ExecutionConfig(fill=fill, direction=direction, slippage=0.001)
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0,
                         first_bar=first_bar)  # fmt: skip
    window = slice(first_bar, len(spy_columns["close"])) if first_bar else None
    np.testing.assert_array_equal(got, single_rows(spy_columns, space, execution, window=window))


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_window_equals_the_single_backtest_on_it(spy_columns, name):
    """Walk-forward evaluation: one signal pass, each window traded from flat; each equals a
    single backtest of that window, and bars after a window's end change nothing in it."""
    space = build_space(BUILTIN[name], SPACES[name])
    execution = ExecutionConfig(direction="both", slippage=0.001)
    windows = np.array([[300, 1100], [1100, 1400], [1400, 2000], [1150, 1400]])
    got = evaluate_windows(spy_columns, space, execution, windows, periods_per_year=252.0)
    for w, (start, end) in enumerate(windows):
        want = single_rows(spy_columns, space, execution, window=slice(start, end))
        np.testing.assert_array_equal(got[:, w], want)
    changed = {key: value.copy() for key, value in spy_columns.items()}
    for key in ("open", "high", "low", "close"):
        changed[key][1400:] *= 1.37  # everything after the second window's end
    again = evaluate_windows(changed, space, execution, windows[:2], periods_per_year=252.0)
    np.testing.assert_array_equal(again, got[:, :2])


def test_grid_of_a_user_strategy_equals_single_backtests(spy_columns, tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(_docs_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_strategies", raising=False)
    strategy = get_strategy("my_strategies:KeltnerBreakout")
    space = build_space(strategy, {"window": "10:30:10", "multiplier": "1.5,2.5"})
    execution = ExecutionConfig(fill="close")
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    np.testing.assert_array_equal(got, single_rows(spy_columns, space, execution))


def test_test_window_grid_equals_test_mode_backtests(spy_columns):
    space = build_space(BUILTIN["sma_cross"], SPACES["sma_cross"])
    execution = ExecutionConfig()
    got = evaluate_space(spy_columns, space, execution, periods_per_year=252.0, first_bar=1400)
    want = single_rows(spy_columns, space, execution, window=slice(1400, 2000))
    np.testing.assert_array_equal(got, want)


def test_memory_budget_chunks_give_the_same_table(spy_columns):
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:60", "slow": "5:150"})  # 149 SMAs
    execution = ExecutionConfig(fill="close", slippage=0.0)
    n_bars = len(spy_columns["close"])
    buffers = grid_module.working_bytes(n_bars)
    room_for_40_rows = 2 * (buffers + 40 * 8 * n_bars)
    calls = []
    whole = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    chunked = evaluate_space(
        spy_columns, space, execution, periods_per_year=252.0, memory_budget=room_for_40_rows,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    np.testing.assert_array_equal(whole, chunked)
    assert len(calls) > 3 and calls[-1] == (len(space), len(space))
    with pytest.raises(ConfigError, match=r"too small for 2,000 bars .*; give --memory-budget"):
        evaluate_space(spy_columns, space, execution, periods_per_year=252.0, memory_budget=2**17)


def _room_for(rows: int, n_bars: int) -> int:
    """A memory budget whose chunks hold `rows` indicator rows of `n_bars` bars."""
    buffers = grid_module.working_bytes(n_bars)
    return 2 * (buffers + rows * 8 * n_bars)


def _check_plan(slot_ids, rows_budget):
    """`chunk_plan`'s contract: every combination once, each chunk ascending and within the
    row budget (or a single combination); returns the rows summed over the chunks."""
    order, breaks = grid_module.chunk_plan(slot_ids, rows_budget)
    n_combos = len(slot_ids)
    order = np.arange(n_combos) if order is None else order
    assert sorted(order.tolist()) == list(range(n_combos))
    assert [b for _, b in breaks][-1:] == ([n_combos] if n_combos else [])
    assert all(a == b for (_, a), (b, _) in itertools.pairwise(breaks))
    rows = 0
    for start, stop in breaks:
        chunk = order[start:stop]
        assert stop > start and (np.diff(chunk) > 0).all()
        needed = len(np.unique(slot_ids[chunk]))
        assert needed <= rows_budget or len(chunk) == 1
        rows += needed
    return rows


def test_budget_chunks_tile_the_parameter_plane():
    """W1's 15,247 SMA pairs with room for 34 of the 203 rows: tiles need about 1,700 rows in
    all, where chunks in enumeration order needed 15,800 (each about 34 slow rows again)."""
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": "5:204"})
    _, slot_ids = grid_module.space_indicators(space)
    assert _check_plan(slot_ids, 34) < 2_000
    enumeration = list(grid_module._chunks(slot_ids, 34))
    assert sum(len(np.unique(slot_ids[a:b])) for a, b in enumeration) > 15_000
    assert grid_module.chunk_plan(slot_ids, 203) == (None, [(0, len(space))])  # all fit


@settings(max_examples=60)
@given(
    st.integers(0, 4).flatmap(lambda k: st.tuples(
        st.lists(st.lists(st.integers(0, 30), min_size=k, max_size=k), max_size=200),
        st.just(k), st.integers(1, 40),
    ))
)  # fmt: skip
def test_budget_chunks_cover_every_combination_once(case):
    rows, n_slots, rows_budget = case
    slot_ids = np.array(rows, dtype=np.int64).reshape(len(rows), n_slots)
    _check_plan(slot_ids, rows_budget)
    assert list(grid_module._chunks(slot_ids, rows_budget)) == _chunks_one_by_one(
        slot_ids, rows_budget
    )


def _chunks_one_by_one(slot_ids, rows_budget):
    """`_chunks`' slow twin: blocks grown one combination at a time while their rows fit."""
    blocks, start, held = [], 0, set()
    for j, ids in enumerate(slot_ids.tolist()):
        if j > start and len(held | set(ids)) > rows_budget:
            blocks.append((start, j))
            start, held = j, set()
        held |= set(ids)
    return [*blocks, (start, len(slot_ids))] if len(slot_ids) else []


def test_tight_budget_on_many_indicator_kinds_gives_the_same_tables(spy_columns):
    """bbkc_squeeze reads 7 slots of 5 kinds (a weekly EMA among them); with room for 12
    rows its chunks share one table whose rows are replaced chunk by chunk: metrics on two
    windows and PBO's block tables equal the unbudgeted ones bit for bit."""
    space = build_space(BUILTIN["bbkc_squeeze"], {
        "bb_window": "10:30:5", "kc_window": "10:30:10", "htf_ema": "0,5,10",
        "kc_mult": "1.0,2.0",
    })  # fmt: skip
    execution = ExecutionConfig(direction="both")
    n_bars = len(spy_columns["close"])
    windows = np.array([[300, 1200], [1200, n_bars]])
    kw = {"periods_per_year": 252.0}
    whole = evaluate_windows(spy_columns, space, execution, windows, **kw)
    calls = []
    tight = evaluate_windows(spy_columns, space, execution, windows, **kw,
                             memory_budget=_room_for(12, n_bars),
                             progress=lambda done, total: calls.append(done))  # fmt: skip
    np.testing.assert_array_equal(whole, tight)
    assert len(calls) > 3 and calls[-1] == len(space)
    blocks = grid_module.evaluate_block_tables(spy_columns, space, execution, n_blocks=8)
    tight_blocks = grid_module.evaluate_block_tables(
        spy_columns, space, execution, n_blocks=8, memory_budget=_room_for(12, n_bars)
    )
    for got, want in zip(tight_blocks, blocks, strict=True):
        np.testing.assert_array_equal(got, want)


def test_results_do_not_depend_on_the_thread_count(spy_columns):
    space = build_space(BUILTIN["rsi_reversion"], SPACES["rsi_reversion"])
    execution = ExecutionConfig(direction="both")
    default = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = evaluate_space(spy_columns, space, execution, periods_per_year=252.0)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(default, single)


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("2:6", [2, 3, 4, 5, 6]),
        ("2:10:4", [2, 6, 10]),
        ("5,10,20", [5, 10, 20]),
        ("20,5,5", [5, 20]),
        (7, [7]),
    ],
)
def test_integer_specs(spec, values):
    assert parse_spec(BUILTIN["sma_cross"].params[0], spec, "sma_cross") == values


def test_float_specs_are_inclusive_and_rounded():
    num_std = BUILTIN["bollinger_reversion"].params[1]
    assert parse_spec(num_std, "1.5:3.0:0.25", "b") == [1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0]
    assert parse_spec(num_std, "0.1:0.3:0.1", "b") == [0.1, 0.2, 0.3]
    assert parse_spec(num_std, "1:2", "b") == [1.0, 1.25, 1.5, 1.75, 2.0]  # its declared step
    no_step = Param("width", float, 2.0, 1.0, 3.0)
    with pytest.raises(ConfigError, match="float range '1:2' for width of b needs a step"):
        parse_spec(no_step, "1:2", "b")


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ({"window": "30:10"}, "must have start <= stop and a positive step"),
        ({"window": "a:b"}, "must hold numbers, e.g. 2:101:3"),
        ({"window": "1:3:1:1"}, "must be start:stop or start:stop:step"),
        ({"window": "0:5"}, "parameter window of bollinger_reversion must be >= 2, got 0"),
        ({"windw": "5:10"}, "unknown parameter 'windw' for bollinger_reversion"),
    ],
)
def test_bad_specs_get_one_line(specs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_space(BUILTIN["bollinger_reversion"], specs)


def test_constraints_filter_and_report_an_empty_space():
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": "5:204"})
    assert (len(space), space.n_candidates) == (15_247, 20_000)  # the #5 benchmark's W1 grid
    assert (space.combos[:, 0] < space.combos[:, 1]).all()
    narrower = build_space(BUILTIN["sma_cross"], {"fast": "2:101", "slow": "5:204"},
                           ["fast * 2 <= slow"])  # fmt: skip
    assert len(narrower) < len(space)
    with pytest.raises(ConfigError, match="no admissible parameter combination: the constraints"):
        build_space(BUILTIN["sma_cross"], {"fast": "50:60", "slow": "10:20"})


def test_api_grid_table_and_best(tmp_path):
    result = ivybt.grid(
        "sma_cross", symbol="SPY", source="sample", params={"fast": "5:20:5", "slow": "30:60:10"},
        min_trades=5, objective="calmar", out=tmp_path / "g",
    )  # fmt: skip
    table = result.table
    assert list(table.columns[:2]) == ["param_fast", "param_slow"]
    assert list(table.columns[2:-1]) == list(METRIC_NAMES) and table.columns[-1] == "valid"
    assert len(table) == 16
    best = result.best()
    assert best["calmar"] == table.loc[table["valid"], "calmar"].max()
    assert result.best_params() == {
        "fast": int(best["param_fast"]),
        "slow": int(best["param_slow"]),
    }
    single = ivybt.backtest(
        "sma_cross", symbol="SPY", source="sample", params=result.best_params()
    )
    assert single.metrics["calmar"] == best["calmar"]
    saved = pd.read_parquet(tmp_path / "g" / "grid.parquet")
    pd.testing.assert_frame_equal(saved, table)
    headline = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert headline["best"]["params"] == result.best_params()
    assert headline["n_combinations"] == 16 and headline["objective"] == "calmar"


def test_cli_grid_prints_the_size_first_and_writes_the_folder(tmp_path):
    out = tmp_path / "grid"
    result = CliRunner().invoke(
        cli,
        ["grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p", "fast=2:30",
         "-p", "slow=10:100:10", "--min-trades", "3", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "sma_cross: 257 combinations (290 before constraints) on SPY 1d"
    assert "257/257 combinations" in result.output and "best 5 by sharpe:" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "grid.parquet", "manifest.json", "metrics.json", "report.html",
    ]  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["strategy"]["space"] == {"fast": "2:30", "slow": "10:100:10"}
    assert manifest["config"]["study"]["min_trades"] == 3 and manifest["status"] == "finished"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "sharp"], "unknown objective 'sharp' (did you mean 'sharpe'?)"),
        (["-p", "fast=5:1"], "range '5:1' for fast of sma_cross must have start <= stop"),
        (["--constraint", "fast <"], "constraint 'fast <' is not an expression"),
        (["--constraint", "fats < 3"], "names 'fats', which is not a parameter of sma_cross"),
    ],
)
def test_cli_grid_bad_input(tmp_path, args, message):
    result = CliRunner().invoke(
        cli, ["grid", "sma_cross", "-s", "SPY", "--source", "sample", *args,
              "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", sorted(SPACES))
def test_indicators_declared_for_whole_columns_match_one_by_one(name):
    space = build_space(BUILTIN[name], SPACES[name])
    distinct, slot_ids = grid_module.space_indicators(space)
    for j in range(len(space)):
        want = BUILTIN[name].indicators(space.combination(j))
        assert tuple(distinct[i] for i in slot_ids[j]) == tuple(want)
    assert len(distinct) == len(set(distinct))


def test_export_study_holds_the_best_and_an_even_sample(tmp_path):
    import optuna

    from ivybt.runs.grid_export import export_grid_study
    from ivybt.studies.study_storage import open_storage

    result = ivybt.grid("sma_cross", symbol="SPY", source="sample",
                        params={"fast": "5:30:5", "slow": "20:100:10"})  # fmt: skip
    name, url = export_grid_study(result, best_k=5, sample=3, results_dir=tmp_path)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    assert len(study.trials) == 8 and name == "sma_cross-SPY-grid"
    assert study.best_value == result.best()["sharpe"]
    assert study.best_trial.params == result.best_params()
    assert set(METRIC_NAMES) <= set(study.best_trial.user_attrs)
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    assert any("ivybt-grid-heatmap" in key for key in system_attrs)
    assert study.metric_names == ["sharpe"]
    with pytest.raises(ConfigError, match="already exists"):
        export_grid_study(result, results_dir=tmp_path)


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion", "bbkc_squeeze"])
def test_per_bar_returns_give_the_grid_metrics(spy_columns, name):
    """The return matrix the overfitting statistics use is the grid's own account."""
    from ivybt.studies.grid import evaluate_returns

    space = build_space(BUILTIN[name], SPACES[name])
    execution = ExecutionConfig(direction="both", fill="next_open")
    returns = evaluate_returns(spy_columns, space, execution, first_bar=500)
    metrics = evaluate_space(spy_columns, space, execution, periods_per_year=252.0, first_bar=500)
    assert returns.shape == (len(spy_columns["close"]) - 500, len(space))
    total = np.prod(1.0 + returns, axis=0) - 1.0
    np.testing.assert_allclose(total, metrics[:, METRIC_NAMES.index("total_return")],
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = returns.mean(axis=0) / returns.std(axis=0, ddof=1) * np.sqrt(252.0)
    np.testing.assert_allclose(sharpe, metrics[:, METRIC_NAMES.index("sharpe")], rtol=1e-9)
