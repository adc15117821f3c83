"""Monte Carlo bootstraps (issue #8, section 4): kernels against a slow pure-Python twin with the
same splitmix64 stream (bit for bit), reproducibility, thread-count independence, compounding,
and `ivybt montecarlo` on finished backtest and walk-forward run folders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.cli.montecarlo import montecarlo as montecarlo_command
from ivybt.errors import ConfigError
from ivybt.kernels.montecarlo import (
    block_bootstrap_nb,
    draw_index_nb,
    path_stats_nb,
    stream_start_nb,
    trade_bootstrap_nb,
)
from ivybt.runs import montecarlo as mc
from ivybt.runs.montecarlo import monte_carlo

# -- the slow twin -------------------------------------------------------------------------

MASK = 2**64 - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def splitmix_draws(seed: int, path: int, n: int):
    """Indices in [0, n) of one path: splitmix64 (Vigna) from mix64(mix64(seed) ^ path*gamma)."""
    state = mix64(mix64(seed % 2**64) ^ ((path * GAMMA) & MASK))
    while True:
        state = (state + GAMMA) & MASK
        yield mix64(state) % n


def reference_path(returns: list[float], periods_per_year: float):
    """(total_return, max_drawdown, sharpe, equity after each return) of returns in order:
    compounded from 1.0, floored at 0 (ruin); Welford's mean and variance (ddof 1)."""
    equity, peak, worst, mean, squares, curve = 1.0, 1.0, 0.0, 0.0, 0.0, []
    for count, r in enumerate(returns, start=1):
        delta = r - mean
        mean += delta / count
        squares += delta * (r - mean)
        if equity > 0.0:
            equity = max(equity * (1.0 + r), 0.0)
            peak = max(peak, equity)
            worst = min(worst, equity / peak - 1.0)
        curve.append(equity)
    n = len(returns)
    std = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
    sharpe = mean / std * math.sqrt(periods_per_year) if std > 0.0 else math.nan
    return equity - 1.0, worst, sharpe, curve


def reference_bootstrap(returns, block_size, seed, path, periods_per_year):
    """One path: circular blocks from uniform starts, concatenated and cut to len(returns)."""
    n = len(returns)
    draws, drawn = splitmix_draws(seed, path, n), []
    while len(drawn) < n:
        start = next(draws)
        drawn += [returns[(start + k) % n] for k in range(block_size)]
    return reference_path([float(r) for r in drawn[:n]], periods_per_year)


def _steps(n: int, points: int) -> np.ndarray:
    return np.unique(np.round(np.linspace(1, n, min(n, points)))).astype(np.int64)


RNG = np.random.default_rng(8)
BARS = RNG.normal(0.0005, 0.012, 37)
TRADES = RNG.normal(0.01, 0.06, 23)


# -- kernels -------------------------------------------------------------------------------


def test_splitmix_matches_the_published_generator_and_the_twin():
    assert int(draw_index_nb(np.uint64(0), 2**62)[1]) == 0xE220A8397B1DCDAF % 2**62  # Vigna
    for seed, path in ((0, 0), (7, 3), (2**64 - 1, 12345)):
        state, twin = stream_start_nb(np.uint64(seed), path), splitmix_draws(seed, path, 1000)
        for _ in range(50):
            state, index = draw_index_nb(np.uint64(state), 1000)
            assert int(index) == next(twin)


@pytest.mark.parametrize("block_size", [1, 3, 7, 36, 37])
@pytest.mark.parametrize("seed", [0, 42, 2**64 - 1])
def test_block_bootstrap_nb_matches_reference(block_size, seed):
    steps = _steps(len(BARS), 10)
    stats, fan = block_bootstrap_nb(BARS, block_size, 12, np.uint64(seed), 252.0, steps, 5)
    assert stats.dtype == np.float64 and stats.shape == (12, 3) and fan.shape == (5, len(steps))
    for i in range(12):
        total, worst, sharpe, curve = reference_bootstrap(BARS, block_size, seed, i, 252.0)
        np.testing.assert_array_equal(stats[i], [total, worst, sharpe], err_msg=f"path {i}")
        if i < 5:
            np.testing.assert_array_equal(fan[i], np.array(curve)[steps - 1])


@pytest.mark.parametrize("seed", [0, 5])
def test_trade_bootstrap_nb_matches_reference(seed):
    steps = _steps(len(TRADES), 500)
    stats, fan = trade_bootstrap_nb(TRADES, 30, np.uint64(seed), steps, 30)
    for i in range(30):
        total, worst, ratio, curve = reference_bootstrap(TRADES, 1, seed, i, 1.0)
        np.testing.assert_array_equal(stats[i], [total, worst, ratio], err_msg=f"path {i}")
        np.testing.assert_array_equal(fan[i], curve)


def test_path_stats_nb_matches_reference_and_pandas():
    steps = _steps(len(BARS), 500)
    stats, equity = path_stats_nb(BARS, 252.0, steps)
    total, worst, sharpe, curve = reference_path(list(BARS), 252.0)
    np.testing.assert_array_equal(stats, [total, worst, sharpe])
    np.testing.assert_array_equal(equity, curve)
    series = pd.Series(BARS)
    wealth = (1 + series).cumprod()
    peak = np.maximum(wealth.cummax(), 1.0)
    expected = [wealth.iloc[-1] - 1, min((wealth / peak - 1).min(), 0.0),
                series.mean() / series.std(ddof=1) * math.sqrt(252)]  # fmt: skip
    np.testing.assert_allclose(stats, expected, rtol=1e-9)


def test_kernels_leave_inputs_unchanged_and_zero_variance_is_nan():
    bars, steps = BARS.copy(), _steps(len(BARS), 5)
    block_bootstrap_nb(bars, 4, 8, np.uint64(1), 252.0, steps, 8)
    trade_bootstrap_nb(bars, 8, np.uint64(1), steps, 8)
    np.testing.assert_array_equal(bars, BARS)
    flat, _ = path_stats_nb(np.full(10, 0.01), 252.0, _steps(10, 5))
    assert math.isnan(flat[2])


def test_same_seed_same_paths_other_seed_other_paths():
    steps = _steps(len(BARS), 10)
    first = block_bootstrap_nb(BARS, 5, 200, np.uint64(9), 252.0, steps, 50)
    again = block_bootstrap_nb(BARS, 5, 200, np.uint64(9), 252.0, steps, 50)
    other = block_bootstrap_nb(BARS, 5, 200, np.uint64(10), 252.0, steps, 50)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_results_do_not_depend_on_the_thread_count():
    steps, threads = _steps(len(BARS), 10), numba.get_num_threads()
    trade_steps = _steps(len(TRADES), 10)
    runs = []
    for count in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(count)
        try:
            runs.append(
                (
                    *block_bootstrap_nb(BARS, 4, 1000, np.uint64(3), 252.0, steps, 100),
                    *trade_bootstrap_nb(TRADES, 1000, np.uint64(3), trade_steps, 100),
                )
            )
        finally:
            numba.set_num_threads(threads)  # fmt: skip
    for one, many in zip(*runs, strict=True):
        assert np.all(np.isfinite(one[:, :2]))
        np.testing.assert_array_equal(one, many)


def test_trade_bootstrap_compounds_returns_and_never_goes_below_minus_100_percent():
    """+50% / -50% trades: dollar PnL of +-5,000 on 10,000 would be ruined by three losses
    in a row; compounded, equity is 1.5^wins x 0.5^losses > 0 on every path."""
    returns = np.array([0.5, -0.5])
    stats, fan = trade_bootstrap_nb(returns, 2000, np.uint64(0), np.arange(1, 3), 2000)
    assert np.all(stats[:, 0] > -1.0) and np.all(stats[:, 1] > -1.0) and np.all(fan > 0.0)
    for i in range(20):
        draws = splitmix_draws(0, i, 2)
        losses = sum(next(draws) for _ in range(2))  # index 1 is the loss
        assert stats[i, 0] == 1.5 ** (2 - losses) * 0.5**losses - 1.0
    long_paths, _ = trade_bootstrap_nb(np.array([0.5, -0.5] * 10), 2000, np.uint64(1),
                                       np.arange(1, 2), 0)  # fmt: skip
    assert long_paths[:, 1].min() > -1.0 and long_paths[:, 1].min() < -0.99  # deep, never -100%
    ruin, _ = trade_bootstrap_nb(np.array([-1.2, 0.5]), 500, np.uint64(0), np.arange(1, 2), 0)
    assert ruin[:, 1].min() == -1.0 and np.all(ruin[ruin[:, 1] == -1.0, 0] == -1.0)


def test_block_size_equal_to_the_run_gives_rotations_and_start_zero_the_run_itself():
    """Circular rule: one block of n bars starting at s is the run rotated by s; s = 0 is
    the run, bit for bit."""
    steps = np.arange(1, len(BARS) + 1, dtype=np.int64)
    stats, fan = block_bootstrap_nb(BARS, len(BARS), 200, np.uint64(4), 252.0, steps, 200)
    own, own_equity = path_stats_nb(BARS, 252.0, steps)
    starts = [next(splitmix_draws(4, i, len(BARS))) for i in range(200)]
    assert 0 in starts
    for i, start in enumerate(starts):
        rotated = np.roll(BARS, -start)
        np.testing.assert_array_equal(fan[i], reference_path(list(rotated), 252.0)[3])
        np.testing.assert_allclose(stats[i, [0, 2]], own[[0, 2]], rtol=1e-12)
        if start == 0:
            np.testing.assert_array_equal(stats[i], own)
            np.testing.assert_array_equal(fan[i], own_equity)


# -- run folders ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    common = {"symbol": "SPY", "source": "sample"}
    ivybt.backtest("sma_cross", **common, out=root / "bt")
    ivybt.backtest("sma_cross", **common, size=0.5, start="2015-01-01", out=root / "half")
    space = {"fast": "5:20:5", "slow": "30:60:10"}
    ivybt.walk_forward("sma_cross", **common, params=space, in_sample="3y",
                       out_of_sample="1y", start="2008-01-01", out=root / "wf")  # fmt: skip
    ivybt.grid("sma_cross", **common, params=space, start="2015-01-01", out=root / "grid")
    return {name: root / name for name in ("bt", "half", "wf", "grid")}


def _metrics(folder: Path, key: str) -> dict[str, float]:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))[key]


@pytest.mark.parametrize("name", ["bt", "wf"])
def test_block_bootstrap_of_a_run_compares_with_the_runs_own_metrics(runs, name):
    result = monte_carlo(runs[name], n=300, method="block", seed=1)
    own = _metrics(runs[name], "metrics" if name == "bt" else "oos")
    for metric in mc.METRICS:
        assert result.observed[metric] == pytest.approx(own[metric], rel=1e-9)
    assert result.block_size == round(math.sqrt(result.n_returns))
    assert result.total_return.shape == (300,) and result.periods_per_year == 252.0


def test_trade_bootstrap_uses_account_returns_of_every_trade(runs):
    for name in ("bt", "half"):
        result = monte_carlo(runs[name], n=200, seed=2)
        trades = pd.read_parquet(runs[name] / "trades.parquet")
        manifest = json.loads((runs[name] / "manifest.json").read_text(encoding="utf-8"))
        execution = manifest["config"]["execution"]
        cash = execution["initial_cash"]
        assert result.method == "trades" and result.n_returns == len(trades)
        assert result.n_open == int(trades["is_open"].sum())
        expected = trades["net_pnl"].sum() / cash
        assert result.observed["total_return"] == pytest.approx(expected, rel=1e-9)
        first = trades["return"].iloc[0] * execution["size"] / (1 + execution["commission"])
        assert result.fan["observed"].iloc[1] == pytest.approx(1 + first, rel=1e-9)
        assert result.fan["observed"].iloc[0] == 1.0 and result.fan["step"].iloc[0] == 0


def test_the_runs_own_line_is_the_backtests_total_return(runs):
    # SPY sma_cross 10/50 ends with a trade open since 2020-04-28: 37.27% with it, 14.1% for
    # the closed trades alone; the run's line is the backtest's own total return
    trades = pd.read_parquet(runs["bt"] / "trades.parquet")
    assert trades["is_open"].iloc[-1]
    result = monte_carlo(runs["bt"], n=200, seed=2)
    own = _metrics(runs["bt"], "metrics")["total_return"]
    assert result.observed["total_return"] == pytest.approx(own, rel=1e-9)
    assert result.n_open == 1 and "the open trade (marked at the last bar)" in result.resampled
    payload = json.loads(result.files[0].read_text(encoding="utf-8"))
    assert payload["n_open_trades"] == 1 and payload["the_run"] == result.run_label
    page = result.files[1].read_text(encoding="utf-8")
    assert "the run&#x27;s trades in order (the open one marked at the last bar)" in page


def test_percentiles_are_ordered_and_drawdowns_bounded(runs):
    for name, method in (("bt", "trades"), ("bt", "block"), ("wf", "block")):
        result = monte_carlo(runs[name], n=400, method=method, seed=3)
        table = result.percentiles.to_numpy()
        assert np.all(np.diff(table, axis=1) >= 0), (name, method)
        bands = result.fan[[f"p{p}" for p in mc.PERCENTILES]].to_numpy()
        assert np.all(np.diff(bands, axis=1) >= 0)
        assert np.all((result.max_drawdown <= 0) & (result.max_drawdown >= -1))
        assert len(result.fan) <= mc.FAN_POINTS + 1
        for metric in mc.METRICS:
            values = getattr(result, metric)
            values = values[np.isfinite(values)]
            share = np.mean(values < result.observed[metric])
            assert result.share_worse[metric] == share


def test_same_seed_writes_identical_files(runs):
    first = monte_carlo(runs["bt"], n=500, seed=11)
    json_path, html_path = first.files
    assert json_path == runs["bt"] / "montecarlo-trades-n500-seed11.json"
    assert html_path == runs["bt"] / "montecarlo-trades-n500-seed11.html"
    text = json_path.read_bytes()
    again = monte_carlo(runs["bt"], n=500, seed=11)
    assert json_path.read_bytes() == text
    np.testing.assert_array_equal(first.max_drawdown, again.max_drawdown)
    other = monte_carlo(runs["bt"], n=500, seed=12)
    assert not np.array_equal(first.max_drawdown, other.max_drawdown)
    payload = json.loads(other.files[0].read_text(encoding="utf-8"))
    assert payload == json.loads(other.to_json())
    assert payload["seed"] == 12 and payload["n"] == 500 and payload["method"] == "trades"
    assert payload["source_run"]["command"] == "backtest"
    assert set(payload["percentiles"]["max_drawdown"]) == {"p5", "p25", "p50", "p75", "p95"}


def test_a_rerun_with_other_settings_keeps_the_earlier_output(runs, tmp_path):
    # each rerun used to overwrite montecarlo.json/.html: one pair per method, block size,
    # n and seed now, so earlier studies stay
    import shutil

    folder = tmp_path / "bt"
    shutil.copytree(runs["bt"], folder, ignore=shutil.ignore_patterns("montecarlo*"))
    for kwargs in (
        {"seed": 1},
        {"seed": 2},
        {"seed": 1, "method": "block"},
        {"seed": 1, "method": "block", "block_size": 5},
        {"seed": 1, "n": 300},
    ):
        result = monte_carlo(folder, **{"n": 200, **kwargs})
        kept = json.loads(result.files[0].read_text(encoding="utf-8"))
        assert (kept["seed"], kept["method"], kept["n"]) == (
            kwargs["seed"], kwargs.get("method", "trades"), kwargs.get("n", 200))  # fmt: skip
    names = sorted(p.name for p in folder.glob("montecarlo*"))
    assert names == sorted(f"montecarlo-{stem}.{suffix}" for suffix in ("json", "html")
                           for stem in ("trades-n200-seed1", "trades-n200-seed2",
                                        "block72-n200-seed1", "block5-n200-seed1",
                                        "trades-n300-seed1"))  # fmt: skip
    from ivybt.runs.folder import RUN_FILES

    assert all(RUN_FILES.fullmatch(name) for name in names)  # --overwrite removes them too
    before = {p: p.read_bytes() for p in folder.glob("montecarlo*.json")}
    monte_carlo(folder, n=200, seed=2)  # the same settings: the same files, the same bytes
    assert {p: p.read_bytes() for p in folder.glob("montecarlo*.json")} == before


def test_fan_memory_is_bounded_by_a_path_sample(runs, monkeypatch):
    monkeypatch.setattr(mc, "FAN_PATHS", 40)
    result = monte_carlo(runs["wf"], n=90, seed=0)
    assert result.fan_paths == 40 and result.total_return.shape == (90,)
    assert len(result.fan) == min(mc.FAN_POINTS, result.n_returns)


def test_report_page_is_offline_with_fan_and_histograms(runs):
    result = monte_carlo(runs["wf"], n=200, seed=0)
    page = result.files[1].read_text(encoding="utf-8")
    assert page.count("<h2>") == 4 and "Equity fan" in page and "Distribution of Sharpe" in page
    assert page.count("Plotly.newPlot(") == 4 and "<script src" not in page.lower()
    assert len(page) > 3_000_000 and "in 95% of 200 resampled paths" in page  # plotly.js inline


# -- errors and the command ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("grid", {}, "is a grid run: many combinations, no single equity curve; backtest"),
        ("bt", {"method": "blocks"}, "method must be 'trades' or 'block', got 'blocks'; did"),
        ("bt", {"n": 0}, "n must be a whole number >= 1, got 0"),
        ("bt", {"method": "block", "block_size": 10**6}, "block_size must be a whole number"),
        ("bt", {"block_size": 5}, "block_size applies to method 'block' only"),
        ("wf", {"method": "trades"}, "keeps no per-fold trades"),
        ("missing", {}, "no run folder at"),
    ],
)
def test_unusable_input_is_one_config_error(runs, tmp_path, name, kwargs, message):
    folder = runs.get(name, tmp_path / "missing")
    with pytest.raises(ConfigError, match=message) as raised:
        monte_carlo(folder, **kwargs)
    assert "\n" not in str(raised.value)


def test_command_on_a_backtest_and_a_walk_forward_run(runs):
    runner = CliRunner()
    result = runner.invoke(montecarlo_command, [str(runs["bt"]), "--n", "300", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "trades bootstrap of backtest" in result.output and "p95" in result.output
    assert "in 95% of 300 resampled paths the max drawdown is shallower than" in result.output
    assert f"wrote {runs['bt'] / 'montecarlo-trades-n300-seed4.html'}" in result.output
    assert "70 closed trades" not in result.output
    assert "69 closed trades + the open trade (marked at the last bar)" in result.output
    result = runner.invoke(montecarlo_command, [str(runs["wf"]), "--n", "300"])
    assert result.exit_code == 0, result.output
    assert "block bootstrap of walkforward" in result.output and "blocks of" in result.output
    help_text = runner.invoke(montecarlo_command, ["--help"]).output
    assert "Examples:" in help_text


@pytest.mark.parametrize(
    ("name", "args", "code", "message"),
    [
        ("grid", [], 2, "Error: "),
        ("missing", [], 2, "Error: no run folder at"),
        ("bt", ["--method", "block", "--block-size", "999999"], 2, "block_size must be"),
        ("wf", ["--method", "trades"], 2, "use --method block"),
        ("bt", ["--method", "bootstrap"], 2, "Invalid value for '--method'"),
        ("bt", ["--n", "0"], 2, "Invalid value for '--n': 0 is not in the range x>=1"),
    ],
)
def test_command_errors_are_one_line_without_traceback(runs, tmp_path, name, args, code,
                                                       message):  # fmt: skip
    folder = runs.get(name, tmp_path / "missing")
    result = CliRunner().invoke(cli, ["montecarlo", str(folder), *args])
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
