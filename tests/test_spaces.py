"""Parameter spaces: default ranges for every study, limits counted before anything is built,
the memory budget, and bounded config files (issue #13 points 8 and 19)."""

from __future__ import annotations

import json
import re
import time
import tracemalloc

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from ivybt.cli import cli
from ivybt.config import StudyConfig
from ivybt.errors import ConfigError
from ivybt.strategies import BUILTIN, Param, Strategy
from ivybt.strategies.constraints import Constraint
from ivybt.studies import space as space_module
from ivybt.studies.space import DEFAULT_MAX_COMBINATIONS, build_space, default_ranges

SAMPLE = ["-s", "SPY", "--source", "sample"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


# ---- point 8: no -p range searches the declared default ranges, in every study ----


def test_grid_without_p_searches_the_default_ranges_and_says_so_first(tmp_path):
    out = tmp_path / "g"
    result = run("grid", "sma_cross", *SAMPLE, "--start", "2016-01-01", "--no-evidence",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "no -p range given: searching sma_cross's default ranges fast=2:100:1, slow=5:300:1 "
        "(`ivybt strategies`; give -p name=start:stop[:step] to choose)"
    )
    assert lines[1] == "sma_cross: 24,648 combinations (29,304 before constraints) on SPY 1d"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_combinations"] == 24_648


def test_walkforward_and_optimize_search_the_default_ranges_too(tmp_path):
    walk = run("walkforward", "bollinger_reversion", *SAMPLE, "--start", "2014-01-01", "--is",
               "3y", "--oos", "1y", "--no-evidence", "--out", str(tmp_path / "w"))  # fmt: skip
    assert walk.exit_code == 0, walk.output
    assert walk.stderr.splitlines()[0].startswith(
        "no -p range given: searching bollinger_reversion's default ranges window=5:100:1, "
        "num_std=1.0:3.5:0.25"
    )
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["n_combinations"] == 1_056
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = run("--results-dir", str(tmp_path), "optimize", "bollinger_reversion", *SAMPLE,
                 "--trials", "8", "--batch-size", "8", "--seed", "1")  # fmt: skip
    assert search.exit_code == 0, search.output
    assert (
        "no -p range given: searching bollinger_reversion's default ranges window=5:100:1, "
        "num_std=1.0:3.5:0.25 (`ivybt strategies`; give -p name=start:stop[:step] to choose); "
        "1,056 combinations before constraints"
    ) in search.stderr


def test_single_values_fix_those_parameters_and_a_range_keeps_the_rest_at_defaults():
    sma = BUILTIN["sma_cross"]
    fixed_fast = build_space(sma, {"fast": "10"})  # no range given: slow is searched
    assert fixed_fast.defaulted == {"slow": "5:300:1"}
    assert set(fixed_fast.combos[:, 0]) == {10.0} and len(fixed_fast) == 290  # slow 11..300
    ranged = build_space(sma, {"fast": "2:20"})  # a range given: slow keeps its default
    assert ranged.defaulted == {} and set(ranged.combos[:, 1]) == {50.0}
    assert len(build_space(sma, {"fast": "10", "slow": "50"})) == 1  # everything fixed
    box = {"box": (Param("box", float, 1.0, 0.1, 10.0, step=0.5), "1:3:0.5")}
    assert default_ranges(sma, {}, box) == {}  # a Renko range counts as a range


def test_default_spaces_of_the_builtins_are_searchable_and_hold_their_defaults():
    for name, strategy in BUILTIN.items():
        space = build_space(strategy, {})
        assert len(space.defaulted) == len(strategy.params), name
        assert space.n_candidates <= 50_000 < DEFAULT_MAX_COMBINATIONS, name
        defaults = np.array([float(p.default) for p in strategy.params])
        assert (space.combos == defaults).all(axis=1).any(), f"{name}: defaults not searched"


def test_a_float_without_a_step_asks_for_a_range():
    class NoStep(Strategy):
        name = "no_step"
        summary = "a float parameter without a declared step"
        params = (Param("width", float, 2.0, 1.0, 3.0, minimum=0.0),)
        signal_kernel = BUILTIN["bollinger_reversion"].signal_kernel

        @classmethod
        def indicators(cls, p):
            return ()

    with pytest.raises(ConfigError, match=r"-p width=1.0:3.0:0.2"):
        build_space(NoStep, {})
    assert len(build_space(NoStep, {"width": "1:3:0.5"})) == 5


def test_strategies_lists_each_default_step():
    shown = run("strategies", "macd_cross", "rsi_reversion").output
    assert "range 2..50 step 2;" in shown and "range 10.0..45.0 step 5.0;" in shown


# ---- point 19: counted before anything is built, limited, within the memory budget ----


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["-p", "fast=1:40000", "-p", "slow=2:40001"],
         "the parameter space has 1,600,000,000 combinations (40,000 fast x 40,000 slow) "
         "before constraints, more than the limit of 1,000,000;"),
        (["--bars", "renko", "-p", "box=0.001:1000000:0.0001", "-p", "fast=5", "-p", "slow=20"],
         "the parameter space has 9,999,999,990 combinations (9,999,999,990 box brick "
         "settings) before constraints"),
    ],
)  # fmt: skip
def test_a_huge_space_is_refused_at_once_with_the_count_and_the_override(params, message):
    started = time.perf_counter()
    result = run("grid", "sma_cross", *SAMPLE, *params)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert time.perf_counter() - started < 20.0


def test_the_grid_sampler_of_a_search_obeys_the_same_limit(tmp_path):
    space = ["-p", "fast=1:3000", "-p", "slow=2:3001"]
    result = run("--results-dir", str(tmp_path), "optimize", "sma_cross", *SAMPLE, *space,
                 "--sampler", "grid", "--trials", "5")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "has 9,000,000 combinations (3,000 fast x 3,000 slow)" in result.stderr
    assert "another --sampler" in result.stderr


def test_counting_allocates_nothing_and_the_limit_can_be_raised():
    sma = BUILTIN["sma_cross"]
    tracemalloc.start()
    with pytest.raises(ConfigError, match=r"--max-combinations 9000000 \(study"):
        build_space(sma, {"fast": "1:3000", "slow": "2:3001"})  # 9 M pairs: 144 MB as floats
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * 2**20
    space = build_space(sma, {"fast": "1:1500", "slow": "2:801"}, max_combinations=2_000_000)
    assert (len(space), space.n_candidates) == (320_400, 1_200_000)
    with pytest.raises(ConfigError, match="2 brick settings"):
        build_space(sma, {"fast": "1:1000", "slow": "2:1001"}, multiplier=2)
    assert StudyConfig().max_combinations == DEFAULT_MAX_COMBINATIONS


def test_spaces_are_built_in_chunks_in_cartesian_order(monkeypatch):
    monkeypatch.setattr(space_module, "BUILD_CHUNK", 7)
    strategy = BUILTIN["macd_cross"]
    specs = {"fast": "2:14:3", "slow": "5:30:5", "signal": "3,9"}
    space = build_space(strategy, specs, ["slow - fast >= 5"])
    grids = np.meshgrid(*[np.asarray(space_module.parse_spec(p, specs[p.name], "m"), float)
                          for p in strategy.params], indexing="ij")  # fmt: skip
    combos = np.column_stack([grid.reshape(-1) for grid in grids])
    columns = {p.name: combos[:, k] for k, p in enumerate(strategy.params)}
    keep = Constraint("fast < slow").mask(columns) & Constraint("slow - fast >= 5").mask(columns)
    np.testing.assert_array_equal(space.combos, combos[keep])
    assert space.n_candidates == 5 * 6 * 2 == len(combos)


def test_the_results_of_every_combination_count_against_the_memory_budget(tmp_path):
    args = ["grid", "sma_cross", *SAMPLE, "-p", "fast=2:101", "-p", "slow=5:304"]
    refused = run(*args, "--memory-budget", "16")
    assert refused.exit_code == 2, refused.output
    assert (
        "25,247 combinations need about 27 MiB for their results (~1,139 bytes each: "
        "parameters, metrics, the table, PBO block tables)"
    ) in refused.stderr
    assert re.search(
        r"on 5,241 bars, more than the memory budget of 16 MiB; give "
        r"--memory-budget \d+ or more, narrow the ranges",
        refused.stderr,
    )
    assert "--no-evidence" in refused.stderr
    walk = run("walkforward", *args[1:], "--is", "3y", "--oos", "1y", "--memory-budget", "64")
    assert walk.exit_code == 2 and re.search(r" x \d+ folds need about", walk.stderr), walk.output


# ---- point 19: a config file cannot expand without bound ----


def _alias_bomb(levels: int) -> str:
    parts = ["&l0 [5, 6, 7, 8, 9, 10, 11, 12, 13]"]
    parts += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return (
        "data: {symbol: SPY, source: sample}\n"
        "strategy:\n  name: sma_cross\n  space:\n    fast: 5:20\n"
        f"    slow: [{', '.join(parts)}]\n"
    )


@pytest.mark.parametrize(
    "text",
    [_alias_bomb(9), "data: {symbol: SPY}\nstrategy: &s {name: sma_cross, space: {x: *s}}\n"],
    ids=["billion-laughs", "self-reference"],
)
def test_a_yaml_alias_bomb_fails_at_once_with_one_line(tmp_path, text):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.perf_counter()
    result = run("grid", "--config", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"Error: config file {path} expands to more than 100,000 values (YAML anchors and "
        "aliases, &name and *name, repeat data without bound, or the file is far larger than "
        "a run configuration); write the values out, with ranges such as 5:50:5 for a "
        "parameter space"
    )
    assert time.perf_counter() - started < 10.0
    small = tmp_path / "anchors.yaml"  # anchors themselves stay allowed
    small.write_text(
        "data: {symbol: SPY, source: sample}\nstrategy:\n  name: sma_cross\n"
        "  space: {fast: &f '5,10', slow: '30,60'}\nstudy: {evidence: false}\n"
    )
    ok = run("grid", "--config", str(small), "--out", str(tmp_path / "g"))
    assert ok.exit_code == 0, ok.output
