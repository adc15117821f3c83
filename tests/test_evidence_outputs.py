"""PBO and DSR in the outputs of grids and searches (issue #8, section 3)."""

from __future__ import annotations

import json
import sys

import numpy as np
import optuna
import pytest

import ivybt
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.stats.pbo import probability_of_overfitting
from ivybt.studies import evidence as evidence_module
from tests.test_grid import SPACES
from tests.tolerances import ATOL_BLOCK_SUMS, RTOL_EVENTS

COMMON = {"symbol": "SPY", "source": "sample", "start": "2010-01-01"}


def test_grid_metrics_and_report_carry_pbo_and_dsr(tmp_path):
    result = ivybt.grid("sma_cross", **COMMON, params={"fast": "5:30:5", "slow": "40:120:20"},
                        out=tmp_path / "g")  # fmt: skip
    metrics = json.loads((tmp_path / "g" / "metrics.json").read_text())
    found = metrics["overfitting"]
    assert 0.0 <= found["pbo"]["pbo"] <= 1.0 and found["pbo"]["n_splits"] == 12_870
    assert 0.0 <= found["dsr"]["dsr"] <= 1.0 and found["dsr"]["n_trials"] == len(result.table)
    assert found["returns_kept"]["combinations"] == found["returns_kept"]["of_valid"] == 30
    assert found["readings"][0].startswith("the in-sample best ranks")
    report = (tmp_path / "g" / "report.html").read_text()
    assert "PBO (CSCV, 16 blocks)" in report and "Deflated Sharpe ratio" in report
    assert found["readings"][1] in report


def test_grid_pbo_equals_pbo_of_its_own_returns(tmp_path, monkeypatch):
    """The statistics see exactly the grid's per-bar returns, in table order."""
    seen = {}
    real = evidence_module.overfitting_evidence

    def spy(objective, sharpe, valid, returns_of, **kwargs):
        seen["returns"] = returns_of(np.flatnonzero(valid))
        return real(objective, sharpe, valid, returns_of, **kwargs)

    monkeypatch.setattr("ivybt.runs.grid.overfitting_evidence", spy)
    result = ivybt.grid("sma_cross", **COMMON, params={"fast": "5:30:5", "slow": "40:120:20"})
    returns = seen["returns"]
    table = result.table[result.table["valid"]]
    sharpe = returns.mean(axis=0) / returns.std(axis=0, ddof=1) * np.sqrt(252.0)
    np.testing.assert_allclose(sharpe, table["sharpe"], rtol=1e-9)
    assert result.evidence["pbo"]["pbo"] == probability_of_overfitting(returns).pbo


def test_a_grid_larger_than_the_budget_is_reduced_in_chunks_with_the_same_pbo():
    rng = np.random.default_rng(3)
    n_bars, n = 400, 40
    returns = rng.normal(0, 0.01, (n_bars, n))
    returns[:, 7] += 0.002  # a planted edge
    objective = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    calls = []

    def returns_of(rows):
        calls.append(len(rows))
        return returns[:, rows]

    found = evidence_module.overfitting_evidence(
        objective, objective, np.ones(n, dtype=bool), returns_of,
        n_bars=n_bars, periods_per_year=252.0, memory_budget=4 * 8 * n_bars * 10,
    )  # fmt: skip
    assert calls[:4] == [10, 10, 10, 10]  # four chunks of 10 columns, then the selection
    assert found["returns_kept"]["combinations"] == n
    assert found["pbo"]["pbo"] == probability_of_overfitting(returns).pbo


def test_search_metrics_carry_pbo_and_dsr(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = ivybt.optimize("sma_cross", **COMMON, params={"fast": "3:30", "slow": "30:120"},
                            trials=40, seed=1, results_dir=tmp_path)  # fmt: skip
    found = result.evidence()
    complete = [t for t in result.study.trials if t.state.name == "COMPLETE"]
    assert found["n_valid"] == len(complete) and 0.0 <= found["pbo"]["pbo"] <= 1.0
    assert found["dsr"]["n_trials_tried"] == len(complete)
    assert set(METRIC_NAMES) >= {"sharpe"}


def test_no_evidence_skips_the_statistics(tmp_path):
    from click.testing import CliRunner

    from ivybt.cli import cli

    out = tmp_path / "g"
    args = ["-s", "SPY", "--source", "sample", "-p", "fast=5,10", "--no-evidence"]
    result = CliRunner().invoke(cli, ["grid", "sma_cross", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["overfitting"] is None
    walk = CliRunner().invoke(cli, ["walkforward", "sma_cross", "-s", "SPY", "--source", "sample",
                                    "-p", "fast=5,10", "--is", "3y", "--oos", "1y",
                                    "--no-evidence", "--out", str(tmp_path / "w")])  # fmt: skip
    assert walk.exit_code == 0, walk.output
    found = json.loads((tmp_path / "w" / "metrics.json").read_text())["overfitting"]
    assert found["mean_pbo"] is None


def test_the_api_mirrors_no_evidence(tmp_path):
    grid = ivybt.grid("sma_cross", **COMMON, params={"fast": "5,10", "slow": "30,50"},
                      evidence=False)  # fmt: skip
    assert grid.evidence is None
    walk = ivybt.walk_forward("sma_cross", **COMMON, params={"fast": "5,10"}, in_sample="3y",
                              out_of_sample="1y", evidence=False, out=tmp_path / "w")  # fmt: skip
    assert walk.metrics["overfitting"]["mean_pbo"] is None


# ---- issue #13 point 24: block tables straight from the kernels, no returns matrix ----


def assert_block_twins(got, want):
    """The fused tables against the returns matrix's: levels exactly, the sums to
    `RTOL_EVENTS` (`ivybt.kernels.grid_blocks`: held runs add prefix-sum differences)."""
    sums, squares, levels = got
    np.testing.assert_array_equal(levels, want[2])
    np.testing.assert_allclose(sums, want[0], rtol=RTOL_EVENTS, atol=ATOL_BLOCK_SUMS)
    np.testing.assert_allclose(squares, want[1], rtol=RTOL_EVENTS, atol=ATOL_BLOCK_SUMS)


def matrix_tables(columns, space, execution, first_bar, **bars):
    from ivybt.stats.pbo import block_tables
    from ivybt.studies.grid import evaluate_returns

    return block_tables(evaluate_returns(columns, space, execution, first_bar=first_bar,
                                         **bars), 16)  # fmt: skip


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize(
    ("fill", "direction", "first_bar"),
    [("next_open", "both", 0), ("close", "long", 517), ("next_open", "short", 1003)],
)
def test_block_tables_equal_those_of_the_returns_matrix(
    spy_columns, name, fill, direction, first_bar
):
    from ivybt.config import ExecutionConfig
    from ivybt.strategies import BUILTIN
    from ivybt.studies.grid import evaluate_block_tables
    from ivybt.studies.space import build_space

    space = build_space(BUILTIN[name], SPACES[name])
    execution = ExecutionConfig(fill=fill, direction=direction)
    got = evaluate_block_tables(spy_columns, space, execution, n_blocks=16, first_bar=first_bar)
    assert_block_twins(got, matrix_tables(spy_columns, space, execution, first_bar))


def test_block_tables_in_chunks_on_bricks_and_for_a_user_strategy(spy_columns, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    from ivybt.config import ExecutionConfig
    from ivybt.strategies import BUILTIN, get_strategy
    from ivybt.studies.grid import evaluate_block_tables
    from ivybt.studies.space import build_space
    from tests.test_strategies import _docs_example

    execution = ExecutionConfig(direction="both")
    space = build_space(BUILTIN["sma_cross"], {"fast": "2:60", "slow": "5:150"})  # 149 SMAs
    calls = []
    chunked = evaluate_block_tables(
        spy_columns, space, execution, n_blocks=16, first_bar=300,
        memory_budget=2 * 40 * 8 * 2000 + 2**20, progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert len(calls) > 3 and calls[-1] == (len(space), len(space))
    assert_block_twins(chunked, matrix_tables(spy_columns, space, execution, 300))
    n_bars = len(spy_columns["close"])  # Renko-like signal bars: every third bar
    signal_of = np.arange(n_bars, dtype=np.int64) // 3
    signals = {name: np.ascontiguousarray(values[::3]) for name, values in spy_columns.items()}
    signal_of = np.minimum(signal_of, len(signals["close"]) - 1)
    bars = {"signal_columns": signals, "signal_of": signal_of}
    small = build_space(BUILTIN["sma_cross"], SPACES["sma_cross"])
    got = evaluate_block_tables(spy_columns, small, execution, n_blocks=16, first_bar=200, **bars)
    assert_block_twins(got, matrix_tables(spy_columns, small, execution, 200, **bars))
    (tmp_path / "my_strategies.py").write_text(_docs_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_strategies", raising=False)
    strategy = get_strategy("my_strategies:KeltnerBreakout")
    user = build_space(strategy, {"window": "10:30:10", "multiplier": "1.5,2.5"})
    got = evaluate_block_tables(spy_columns, user, execution, n_blocks=16, first_bar=100)
    for mine, theirs in zip(got, matrix_tables(spy_columns, user, execution, 100), strict=True):
        np.testing.assert_array_equal(mine, theirs)
