"""Strategies: signal kernels vs their twins on real data, parameter checks, user strategies."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ivybt.cli import cli
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import strategy_targets
from ivybt.engine.tables import bar_columns
from ivybt.errors import ConfigError
from ivybt.strategies import BUILTIN, SIGNAL_BUILTIN, Constraint, Indicator, get_strategy
from tests import reference_signals

ROOT = Path(__file__).resolve().parents[1]
NEAR_TIE = 1e-12  # |fast - slow| relative to price below which a crossover is a float tie

CASES = [
    ("sma_cross", {"fast": 10, "slow": 50}),
    ("sma_cross", {"fast": 3, "slow": 7}),
    ("ema_cross", {"fast": 12, "slow": 26}),
    ("macd_cross", {"fast": 12, "slow": 26, "signal": 9}),
    ("macd_cross", {"fast": 5, "slow": 35, "signal": 5}),
    ("rsi_reversion", {"window": 14, "lower": 30.0, "upper": 70.0}),
    ("rsi_reversion", {"window": 5, "lower": 20.0, "upper": 55.0}),
    ("bollinger_reversion", {"window": 20, "num_std": 2.0}),
    ("bollinger_reversion", {"window": 10, "num_std": 1.5}),
    ("donchian_breakout", {"entry_window": 20, "exit_window": 10}),
    ("donchian_breakout", {"entry_window": 55, "exit_window": 20}),
    ("bbkc_squeeze", {}),
    ("bbkc_squeeze", {"bb_window": 14, "bb_std": 1.8, "kc_window": 30, "kc_mult": 1.2}),
    ("bbkc_squeeze", {"htf_ema": 10, "htf": 2}),
    ("bbkc_squeeze", {"bb_window": 14, "kc_window": 30, "htf_ema": 6, "htf": 3}),
    ("supertrend", {}),
    ("supertrend", {"length": 7, "multiplier": 2.5}),
    ("adx_trend", {}),
    ("adx_trend", {"length": 7, "threshold": 20.0}),
]


@pytest.fixture(scope="module", params=[("SPY", "1d"), ("BTCUSD", "1d"), ("EURUSD", "1h")])
def bars(request):
    frame, _ = load_sample(*request.param)
    return bar_columns(frame.iloc[-6000:])


@pytest.mark.parametrize(("name", "given"), CASES)
def test_signal_kernel_equals_reference(bars, name, given):
    strategy = BUILTIN[name]
    params = strategy.resolve_params(given)
    got = strategy_targets(bars, strategy, params, "both")
    want = reference_signals.SIGNALS[name](bars, **params)
    mismatch = got != want
    if name in reference_signals.CROSS_LINES:
        line, other = reference_signals.CROSS_LINES[name](bars, **params)
        starts = np.flatnonzero(mismatch & ~np.r_[False, mismatch[:-1]])
        near_tie = np.abs(line - other)[starts] <= NEAR_TIE * np.abs(bars["close"][starts])
        assert near_tie.all(), f"{name} {params}: disagreement not at a near-tie, bars {starts}"
        assert mismatch.mean() < 0.001
    else:
        bad = np.flatnonzero(mismatch)
        assert bad.size == 0, f"{name} {params}: first differing bars {bad[:5]}"
    assert (got != 0).any(), "the case should trade"


@pytest.mark.parametrize("name", sorted(SIGNAL_BUILTIN))
def test_direction_filters_sides(bars, name):
    strategy = BUILTIN[name]
    params = strategy.resolve_params({})
    both = strategy_targets(bars, strategy, params, "both")
    long_only = strategy_targets(bars, strategy, params, "long")
    short_only = strategy_targets(bars, strategy, params, "short")
    np.testing.assert_array_equal(long_only, np.where(both > 0, both, 0))
    np.testing.assert_array_equal(short_only, np.where(both < 0, both, 0))


def test_inputs_are_not_modified(bars):
    before = {name: values.copy() for name, values in bars.items()}
    for strategy in SIGNAL_BUILTIN.values():
        strategy_targets(bars, strategy, strategy.resolve_params({}), "both")
    for name, values in bars.items():
        np.testing.assert_array_equal(values, before[name])


def test_every_builtin_declares_a_consistent_shape():
    for name, strategy in BUILTIN.items():
        assert strategy.name == name
        defaults = strategy.resolve_params({})
        assert tuple(defaults) == strategy.param_names()
        for param in strategy.params:
            assert param.low <= param.default <= param.high, (name, param.name)
        assert strategy.warmup_bars(defaults) >= 1
        assert all(isinstance(ind, Indicator) for ind in strategy.indicators(defaults))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"fsat": 5},
            "unknown parameter 'fsat' for sma_cross (did you mean 'fast'?); parameters: fast, "
            "slow (see `ivybt strategies`)",
        ),
        (
            {"fast": "10.5"},
            "parameter fast of sma_cross must be an integer, got '10.5'; e.g. -p fast=10",
        ),
        (
            {"fast": "ten"},
            "parameter fast of sma_cross must be a number, got 'ten'; e.g. -p fast=10",
        ),
        (
            {"fast": 50, "slow": 10},
            "constraint 'fast < slow' of sma_cross does not hold for fast=50, slow=10; choose "
            "parameters that satisfy it",
        ),
        (
            {"fast": 0},
            "parameter fast of sma_cross must be >= 1, got 0; a sensible range is 2..100",
        ),
        ({"fast": float("nan")}, "parameter fast of sma_cross must be a finite number, got nan"),
    ],
)
def test_bad_parameters_get_one_clear_line(given, message):
    with pytest.raises(ConfigError) as caught:
        BUILTIN["sma_cross"].resolve_params(given)
    assert str(caught.value) == message


def test_integer_strings_and_floats_are_accepted():
    params = BUILTIN["rsi_reversion"].resolve_params({"window": "21", "lower": "25", "upper": 60})
    assert params == {"window": 21, "lower": 25.0, "upper": 60.0}
    assert isinstance(params["window"], int) and isinstance(params["lower"], float)


def test_unknown_strategy_names_suggest():
    with pytest.raises(
        ConfigError, match=r"unknown strategy 'sma_crss' \(did you mean 'sma_cross'"
    ):
        get_strategy("sma_crss")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_x'"):
        get_strategy("no_such_module_x:Thing")
    with pytest.raises(ConfigError, match=r"module 'ivybt\.config' has no 'Nothing'"):
        get_strategy("ivybt.config:Nothing")
    with pytest.raises(ConfigError, match=r"is not a subclass of ivybt\.strategies\.Strategy"):
        get_strategy("ivybt.config:RunConfig")


@pytest.mark.parametrize(
    ("text", "values", "holds"),
    [
        ("fast < slow", {"fast": 1, "slow": 2}, True),
        ("fast * 2 <= slow", {"fast": 10, "slow": 19}, False),
        ("1 < fast < slow and not slow > 100", {"fast": 5, "slow": 50}, True),
        ("lower < 50 or upper > 90", {"lower": 60, "upper": 95}, True),
        ("-fast + slow % 7 == 1", {"fast": 0, "slow": 8}, True),
    ],
)
def test_constraints_evaluate(text, values, holds):
    assert Constraint(text).holds(values) is holds


@pytest.mark.parametrize(
    "text", ["__import__('os').system('true')", "fast.real < 3", "[fast]", "fast <"]
)
def test_constraints_refuse_anything_but_arithmetic(text):
    with pytest.raises(ConfigError, match="constraint"):
        Constraint(text)


def test_indicator_declarations_are_checked():
    with pytest.raises(ConfigError, match=r"unknown indicator kind 'smaa' \(did you mean 'sma'"):
        Indicator("smaa", (3,))
    with pytest.raises(ConfigError, match="indicator macd_hist takes 3 integer argument"):
        Indicator("macd_hist", (12, 26))
    assert Indicator("macd_hist", (12, 26, 9)).warmup_bars == 33  # TA-Lib MACD lookback


def _docs_example() -> str:
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0]


def test_documented_user_strategy_runs_from_the_cli(tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(_docs_example(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_strategies", raising=False)
    runner = CliRunner()
    listed = runner.invoke(cli, ["strategies", "my_strategies:KeltnerBreakout"])
    assert listed.exit_code == 0, listed.output
    assert "keltner_breakout: Long above the upper Keltner band" in listed.output
    ran = runner.invoke(
        cli,
        ["backtest", "my_strategies:KeltnerBreakout", "--symbol", "SPY", "--source", "sample",
         "-p", "window=30", "-p", "multiplier=2.5", "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "run" / "report.html").exists()
    bad = runner.invoke(
        cli, ["backtest", "my_strategies:KeltnerBreakout", "-s", "SPY", "-p", "windw=3"]
    )
    assert bad.exit_code == 2
    assert "unknown parameter 'windw' for keltner_breakout (did you mean 'window'?)" in bad.output


def test_a_strategy_class_missing_a_part_fails_at_definition():
    from ivybt.strategies import Strategy

    with pytest.raises(TypeError, match="must define summary, signal_kernel, indicators"):

        class Incomplete(Strategy):  # pragma: no cover - the class statement raises
            name = "incomplete"
            params = ()
