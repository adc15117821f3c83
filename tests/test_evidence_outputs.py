"""PBO and DSR in the outputs of grids and searches (issue #8, section 3)."""

from __future__ import annotations

import json

import numpy as np
import optuna

import ivybt
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.stats.pbo import probability_of_overfitting
from ivybt.studies import evidence as evidence_module

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

    monkeypatch.setattr("ivybt.studies.grid_run.overfitting_evidence", spy)
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
                            trials=40, seed=1, results=tmp_path)  # fmt: skip
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
