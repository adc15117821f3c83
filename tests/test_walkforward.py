"""Walk-forward studies: folds, surfaces, selection, stitching, no look-ahead, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import INTERRUPTED_EXIT, cli
from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns
from ivybt.errors import StudyInterrupted
from ivybt.kernels.metrics import METRIC_NAMES
from ivybt.strategies import BUILTIN
from ivybt.studies import walkforward as walkforward_module
from ivybt.studies.selection import plateau_scores, select
from ivybt.studies.study_storage import open_storage, storage_url_of

PARAMS = {"fast": "5:30:5", "slow": "20:120:20"}
WINDOWS = {"in_sample": 500, "out_of_sample": 250}


@pytest.fixture(scope="module")
def spy():
    frame, _ = load_sample("SPY", "1d")
    return frame.iloc[-2520:]


def run(spy, tmp_path, name="wf", **kwargs):
    options = {"params": PARAMS, **WINDOWS, **kwargs}
    return ivybt.walk_forward("sma_cross", data=spy, out=tmp_path / name, **options)


def test_folds_surfaces_and_files(spy, tmp_path):
    result = run(spy, tmp_path)
    folder = result.folder
    for name in ("folds.parquet", "surface.parquet", "oos_equity.parquet", "metrics.json",
                 "manifest.json", "report.html", "surface-oos-sharpe-fast.html"):  # fmt: skip
        assert (folder / name).exists(), name
    folds = pd.read_parquet(folder / "folds.parquet")
    assert list(folds["is_start"]) == [0, 250, 500, 750, 1000, 1250, 1500, 1750]
    assert (folds["oos_start"] == folds["is_end"]).all()
    assert (folds["oos_end"] - folds["oos_start"] == 250).all()
    assert (folds["is_last"] == spy.index[folds["is_end"] - 1]).all()  # half-open
    surface = pd.read_parquet(folder / "surface.parquet")
    n_combos = len(result.space)
    assert len(surface) == len(folds) * 2 * n_combos
    assert list(surface.columns[:3]) == ["fold", "side", "combo"]
    assert set(METRIC_NAMES) <= set(surface.columns) and "valid" in surface.columns
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["command"] == "walkforward" and manifest["status"] == "finished"
    overfitting = json.loads((folder / "metrics.json").read_text())["overfitting"]
    assert len(overfitting["pbo_per_fold"]) == len(folds)
    assert all(0.0 <= p <= 1.0 for p in overfitting["pbo_per_fold"])
    assert overfitting["mean_pbo"] == pytest.approx(np.mean(overfitting["pbo_per_fold"]))
    assert "Mean in-sample PBO (CSCV)" in (folder / "report.html").read_text()


def test_each_choice_and_its_oos_row_equal_single_backtests(spy, tmp_path):
    result = run(spy, tmp_path, fill="close", direction="both")
    columns = bar_columns(spy)
    execution = ExecutionConfig(fill="close", direction="both")
    strategy = BUILTIN["sma_cross"]
    for row in result.folds.itertuples():
        params = {"fast": int(row.param_fast), "slow": int(row.param_slow)}
        truncated = {k: v[: row.oos_end] for k, v in columns.items()}
        for side, (start, end) in (("is", (row.is_start, row.is_end)),
                                   ("oos", (row.oos_start, row.oos_end))):  # fmt: skip
            single = simulate_strategy(
                truncated, strategy, params, execution, window=slice(start, end),
                periods_per_year=252.0,
            )  # fmt: skip
            for name in METRIC_NAMES:
                got, want = getattr(row, f"{side}_{name}"), single.metrics[name]
                assert got == want or (np.isnan(got) and np.isnan(want)), (row.fold, side, name)
        is_side = result.surface[(result.surface["fold"] == row.fold)
                                 & (result.surface["side"] == "is")]  # fmt: skip
        best = is_side[is_side["valid"]]["sharpe"].max()
        assert row.is_sharpe == best  # --select best


def test_no_look_ahead_at_fold_boundaries(spy, tmp_path):
    """Bars after a fold's OOS end change nothing in that fold; bars after its IS end change
    nothing on its IS side, nor its choice."""
    base = run(spy, tmp_path, "base")
    k = 3
    fold = base.folds.iloc[k]
    for cut, kept_side in ((int(fold.oos_end), ("is", "oos")), (int(fold.is_end), ("is",))):
        changed = spy.copy()
        for column in ("open", "high", "low", "close"):
            changed.iloc[cut:, changed.columns.get_loc(column)] *= 0.7
        again = run(changed, tmp_path, f"cut{cut}")
        for side in kept_side:
            mine = base.surface[(base.surface["fold"] == k) & (base.surface["side"] == side)]
            theirs = again.surface[(again.surface["fold"] == k) & (again.surface["side"] == side)]
            pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                          theirs.reset_index(drop=True))  # fmt: skip
        assert again.folds.iloc[k]["combo"] == fold["combo"]
        earlier = base.folds.iloc[:k].drop(columns=["wfe"])
        pd.testing.assert_frame_equal(earlier, again.folds.iloc[:k].drop(columns=["wfe"]))
    oos = [r.surface[(r.surface["fold"] == k) & (r.surface["side"] == "oos")]["sharpe"]
           for r in (base, again)]  # fmt: skip
    assert (oos[0].to_numpy() != oos[1].to_numpy()).any()  # the change does reach the OOS side


def test_an_interrupted_run_resumes_without_recomputing_finished_folds(spy, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    whole = run(spy, tmp_path, "whole")
    calls = []
    real = walkforward_module.evaluate_windows

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(walkforward_module, "evaluate_windows", counting)

    def interrupt_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(StudyInterrupted) as caught:
        run(spy, tmp_path, "resumed", progress=interrupt_after_three)
    assert caught.value.done == 3 and "rerun the same command" in caught.value.message
    folder = tmp_path / "resumed"
    assert len(list((folder / "folds").glob("fold-*.json"))) == 3
    assert json.loads((folder / "manifest.json").read_text())["status"] == "failed"
    calls.clear()
    resumed = run(spy, tmp_path, "resumed")
    assert len(calls) == len(whole.folds) - 3  # the three finished folds were read back
    for name in ("folds.parquet", "surface.parquet", "oos_equity.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name),
                                      pd.read_parquet(whole.folder / name))  # fmt: skip
    assert resumed.metrics == whole.metrics


def test_stitched_equity_chains_the_folds(spy, tmp_path):
    result = run(spy, tmp_path, fill="close")
    equity = result.oos_equity
    assert list(equity["fold"].unique()) == list(result.folds["fold"])
    columns = bar_columns(spy)
    cash = 10_000.0
    for row in result.folds.itertuples():
        part = equity[equity["fold"] == row.fold]["equity"].to_numpy()
        params = {"fast": int(row.param_fast), "slow": int(row.param_slow)}
        single = simulate_strategy({k: v[: row.oos_end] for k, v in columns.items()},
                                   BUILTIN["sma_cross"], params, ExecutionConfig(fill="close"),
                                   window=slice(row.oos_start, row.oos_end),
                                   periods_per_year=252.0)  # fmt: skip
        np.testing.assert_allclose(part, single.equity * (cash / 10_000.0), rtol=1e-12)
        cash = part[-1]
    total = result.metrics["oos"]["total_return"]
    assert total == pytest.approx(equity["equity"].iloc[-1] / 10_000.0 - 1.0, rel=1e-12)


def test_plateau_prefers_a_broad_high_region_to_a_spike():
    fast, slow = np.meshgrid([1, 2, 3, 4, 5], [10, 20, 30], indexing="ij")
    combos = np.column_stack([fast.ravel(), slow.ravel()]).astype(float)
    objective = np.zeros(len(combos))
    spike = 0  # (1, 10): a lone 5.0 among zeros
    objective[spike] = 5.0
    plateau = [k for k, (f, _) in enumerate(combos) if f >= 4]  # fast 4..5: all 3.0
    objective[plateau] = 3.0
    valid = np.ones(len(combos), dtype=bool)
    assert select(combos, objective, valid, "best") == spike
    chosen = select(combos, objective, valid, "plateau")
    assert tuple(combos[chosen]) == (5.0, 10.0)  # its box (fast 4..5, slow 10..20) is all 3.0
    scores = plateau_scores(combos, objective, valid)
    assert scores[spike] == pytest.approx(5.0 / 4)  # (1,10) has 4 cells in its box
    valid[chosen] = False
    assert np.isnan(plateau_scores(combos, objective, valid)[chosen])
    assert select(combos, objective, np.zeros(len(combos), dtype=bool), "best") == -1


def test_optuna_search_per_fold(spy, tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = run(spy, tmp_path, "opt", search="optuna", trials=12, seed=1,
                 results_dir=tmp_path / "results")  # fmt: skip
    storage = open_storage(storage_url_of(None, tmp_path / "results"))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == [f"opt-fold-{k:03d}" for k in range(len(result.folds))]
    per_fold = result.surface.groupby(["fold", "side"]).size()
    assert (per_fold <= 12).all() and (per_fold > 0).all()
    grid = run(spy, tmp_path, "grid")  # the same combination ids: rows of the whole space
    merged = result.surface.merge(grid.surface, on=["fold", "side", "combo"])
    assert len(merged) == len(result.surface)
    np.testing.assert_array_equal(merged["sharpe_x"], merged["sharpe_y"])


def test_cli_walkforward_and_surface(tmp_path):
    runner = CliRunner()
    out = tmp_path / "wf"
    args = ["--results-dir", str(tmp_path), "walkforward", "sma_cross", "-s", "SPY",
            "--source", "sample", "-p", "fast=5:30:5", "-p", "slow=20:120:20", "--is", "3y",
            "--oos", "1y", "--start", "2010-01-01", "--out", str(out)]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "stitched OOS sharpe" in result.output and f"wrote {out}" in result.output
    again = runner.invoke(cli, ["surface", str(out), "--param", "slow", "--metric", "calmar",
                                "--side", "is"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (out / "surface-is-calmar-slow.html").exists()
    no_is = [a for a in args if a not in ("--is", "3y")]
    bad = runner.invoke(cli, no_is)
    assert bad.exit_code == 2 and "--is" in bad.output
    no_oos = runner.invoke(cli, [a for a in args if a not in ("--oos", "1y")])
    assert no_oos.exit_code == 2
    assert "exactly one of out_of_sample (--oos) and folds" in no_oos.output
    grid_dir = tmp_path / "grid"
    runner.invoke(cli, ["grid", "sma_cross", "-s", "SPY", "--source", "sample", "-p",
                        "fast=5,10", "--out", str(grid_dir)])  # fmt: skip
    refused = runner.invoke(cli, ["surface", str(grid_dir)])
    assert refused.exit_code == 2 and "not a walk-forward one" in refused.output
    assert "Traceback" not in refused.output


def test_cli_ctrl_c_says_how_to_resume(tmp_path, monkeypatch):
    from ivybt.cli.progress import ProgressBar

    def interrupt(self, done, total):
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", interrupt)
    out = tmp_path / "wf"
    result = CliRunner().invoke(cli, ["walkforward", "sma_cross", "-s", "SPY", "--source",
                                      "sample", "-p", "fast=5,10", "--is", "3y", "--oos", "1y",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == INTERRUPTED_EXIT
    assert result.stderr.strip().splitlines()[-1].startswith("stopped by Ctrl-C after 2 of ")
    assert f"--out {out} to resume" in result.stderr


# -- issue #13: --min-trades on OOS, thin in-sample evidence, WFE floor, labels -------------


def test_min_trades_filters_the_in_sample_choice_only(spy, tmp_path):
    """--min-trades 3 leaves folds whose choice made fewer than 3 closed trades OOS: those
    OOS cells are results like any other, shown on the heatmaps with their trade count and
    scored, while the IS side still needs 3 trades to be selectable."""
    from ivybt.report.surface import surface_figures
    from ivybt.studies.stability import in_top_decile

    result = run(spy, tmp_path, min_trades=3, evidence=False)
    surface, folds = result.surface, result.folds
    is_side, oos = surface[surface["side"] == "is"], surface[surface["side"] == "oos"]
    selectable = (is_side["n_trades"] >= 3) & np.isfinite(is_side["sharpe"])
    assert (is_side["valid"] == selectable).all()
    assert (oos["valid"] == np.isfinite(oos["sharpe"])).all()
    assert (oos["n_trades"] < 3).sum() > len(oos) / 2  # most OOS cells: 1 year, few trades
    thin = folds[folds["oos_n_trades"] < 3]
    assert len(thin) >= 2, folds[["fold", "oos_n_trades"]]
    scores = result.metrics["stability"]
    for row in folds.itertuples():
        values = oos[oos["fold"] == row.fold].set_index("combo")["sharpe"]
        scored = scores["top_decile_per_fold"][row.fold]
        assert scored is not None and scored == in_top_decile(values, row.combo, True)
    written = pd.read_parquet(result.folder / "folds.parquet")
    pd.testing.assert_series_equal(written["oos_n_trades"], folds["oos_n_trades"])
    _, (_, heat), _ = surface_figures(surface, folds, param="slow", metric="sharpe",
                                      params=["fast", "slow"])  # fmt: skip
    for i, row in enumerate(folds.itertuples()):
        cells, mark = heat.data[2 * i], heat.data[2 * i + 1]
        x, y = list(cells.x).index(row.param_fast), list(cells.y).index(row.param_slow)
        assert cells.z[y][x] == row.oos_sharpe  # the chosen cell is drawn, not empty
        assert cells.customdata[y][x] == row.oos_n_trades
        assert "n_trades %{customdata}" in cells.hovertemplate
        assert f"{int(row.oos_n_trades)} closed trades" in mark.hovertemplate


def test_cli_warns_when_a_fold_has_no_in_sample_choice(spy, tmp_path):
    start = f"{spy.index[0]:%Y-%m-%d}"
    args = ["walkforward", "sma_cross", "-s", "SPY", "--source", "sample", "--start", start,
            "-p", "fast=5:30:5", "-p", "slow=20:120:20", "--is", "500", "--oos", "250",
            "--no-evidence", "--min-trades", "12", "--out", str(tmp_path / "wf")]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, result.stderr
    assert "fold 7 (at most 11 closed trades)" in warned[0] and "--min-trades 12" in warned[0]
    quiet = CliRunner().invoke(cli, [*args[:-3], "9", "--out", str(tmp_path / "wf9")])
    assert quiet.exit_code == 0 and "warning:" not in quiet.stderr


def test_wfe_is_undefined_below_the_in_sample_cagr_floor():
    from ivybt.studies.walkforward import WFE_MIN_IS_CAGR, walk_forward_efficiency

    assert WFE_MIN_IS_CAGR == 0.01
    assert np.isnan(walk_forward_efficiency(0.00049, -0.0121))  # was -24.68 (macd_cross, SPY)
    assert np.isnan(walk_forward_efficiency(0.0099, 0.05))
    assert np.isnan(walk_forward_efficiency(-0.05, 0.05))
    assert walk_forward_efficiency(0.01, 0.005) == pytest.approx(0.5)
    assert walk_forward_efficiency(0.2, -0.1) == pytest.approx(-0.5)


def test_cli_table_labels_each_column_and_applies_the_wfe_floor(tmp_path):
    """macd_cross on SPY: fold 1's IS CAGR is 0.05 % a year and its WFE was -24.68."""
    out = tmp_path / "wf"
    args = ["walkforward", "macd_cross", "-s", "SPY", "--source", "sample", "-p", "fast=5:20",
            "-p", "slow=20:60:5", "--is", "3y", "--oos", "1y", "--end", "2005-11-01",
            "--no-evidence", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "fold" in line and "OOS window" in line)
    for label in ("IS sharpe", "OOS sharpe", "IS trades", "OOS trades", "WFE (CAGR)"):
        assert label in header, header
    folds = pd.read_parquet(out / "folds.parquet")
    low = folds[folds["is_cagr"] < 0.01]
    assert 1 in set(low["fold"]) and low["wfe"].isna().all()
    assert "-24.68" not in result.stdout
    row = next(line for line in lines if line.split()[:1] == ["1"])
    assert row.split()[-1] == "n/a"
    assert "IS CAGR below 1.00% a year" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["folds"][1]["wfe"] is None and metrics["wfe_min_is_cagr"] == 0.01
    assert "below 1.00% a year" in metrics["wfe_rule"]
    assert "IS CAGR below 1.00% a year" in (out / "report.html").read_text()
