"""`check_lookahead` and `ivybt check-lookahead`: every built-in strategy passes, on standard
bars and on Renko bricks; deliberately leaky user strategies are caught, with the first
differing bar and signal named; the documented user strategy passes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ivybt.cli import IvyBTGroup
from ivybt.cli.lookahead import check_lookahead as command
from ivybt.data.sample import load_sample
from ivybt.engine import tables
from ivybt.errors import ConfigError
from ivybt.runs.lookahead import check_lookahead
from ivybt.strategies import SIGNAL_BUILTIN
from ivybt.studies.lookahead import cut_bars

ROOT = Path(__file__).resolve().parents[1]
DATA = {"symbol": "SPY", "source": "sample", "start": "2012-01-01"}  # about 2,200 bars
CUTS = 8
RENKO = {"bars": "renko", "renko": {"box": 2.0}}
CLEAN = f"no look-ahead: {CUTS} cuts, positions and signals identical up to each cut"

LEAKY_MODULE = """
from numba import njit

from ivybt.strategies import Indicator, Param, Strategy


@njit
def next_close_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    n = close.shape[0]
    for t in range(n):
        tomorrow = close[t + 1] if t + 1 < n else close[t]  # reads the next bar: look-ahead
        out_target[t] = 1 if tomorrow > close[t] else -1


@njit
def future_high_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    horizon = int(params[0])
    n = close.shape[0]
    for t in range(n):
        highest = close[t]
        for k in range(t, min(n, t + horizon + 1)):  # the max over the coming bars
            highest = max(highest, close[k])
        out_target[t] = 1 if highest > close[t] * 1.01 else 0


class NextClose(Strategy):
    name = "next_close"
    summary = "Long when the next bar closes higher: look-ahead."
    params = ()
    signal_kernel = next_close_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("price"),)


class FutureHigh(Strategy):
    name = "future_high"
    summary = "Long when the coming bars rise 1%: look-ahead through a future max."
    params = (Param("horizon", int, 5, 2, 20, minimum=1),)
    signal_kernel = future_high_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("sma", (10,)),)
"""


def _index() -> pd.DatetimeIndex:
    frame, _ = load_sample("SPY", "1d")
    return frame.loc[frame.index >= DATA["start"]].index


def _module(tmp_path, monkeypatch, name: str, text: str) -> None:
    (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.fixture
def leaky(tmp_path, monkeypatch) -> str:
    _module(tmp_path, monkeypatch, "leaky_strategies", LEAKY_MODULE)
    return "leaky_strategies"


def _cli(*args: str):
    group = IvyBTGroup("ivybt", commands=[command])  # the IvyBT error handling, no registration
    return CliRunner().invoke(group, ["check-lookahead", *args])


@pytest.mark.parametrize("bars", ["standard", "renko"])
@pytest.mark.parametrize("name", sorted(SIGNAL_BUILTIN))
def test_every_builtin_strategy_passes(name, bars):
    report = check_lookahead(
        name, **DATA, cuts=CUTS, direction="both", **(RENKO if bars == "renko" else {})
    )
    assert report.ok, report.message
    assert report.message == CLEAN
    assert len(report.cuts) == CUTS and len(set(report.cuts)) == CUTS
    assert report.first_cut_bar <= report.cuts[0] and report.cuts[-1] == report.n_bars - 2
    assert report.compared[-4:] == ("signal", "target", "units", "equity")


def test_a_kernel_reading_the_next_bar_is_caught(leaky):
    report = check_lookahead(f"{leaky}:NextClose", **DATA, cuts=CUTS)  # direction long
    assert not report.ok
    diff = report.first_difference
    assert (diff.kind, diff.name, diff.brick) == ("signal", "signal", None)
    assert diff.cut == report.failed_cuts[0] and diff.bar == diff.cut  # the cut bar itself
    assert diff.time == f"{_index()[diff.bar]:%Y-%m-%d}"
    assert (diff.full_value, diff.truncated_value) == (1, -1)
    assert report.message == (
        f"look-ahead: the signal at bar {diff.bar} ({diff.time}) is 1 on the full history but "
        f"-1 on the history cut after bar {diff.cut} ({diff.cut_time}); "
        f"{len(report.failed_cuts)} of {CUTS} cuts differ"
    )
    loaded = json.loads(report.to_json())
    assert loaded["ok"] is False and loaded["first_difference"]["bar"] == diff.bar
    assert loaded["seed"] == 0 and loaded["cuts"] == list(report.cuts)


def test_a_future_max_is_caught_before_the_cut(leaky):
    report = check_lookahead(f"{leaky}:FutureHigh", **DATA, cuts=CUTS, params={"horizon": 5})
    assert not report.ok
    diff = report.first_difference
    assert diff.name == "signal" and diff.cut - 5 <= diff.bar <= diff.cut
    assert (diff.full_value, diff.truncated_value) == (1, 0)


def test_a_leak_on_renko_bricks_names_the_brick_and_its_bar(leaky):
    report = check_lookahead(f"{leaky}:NextClose", **DATA, cuts=CUTS, **RENKO)
    assert not report.ok
    diff = report.first_difference
    assert diff.name == "signal" and diff.brick is not None and diff.bar <= diff.cut
    assert f"the signal at brick {diff.brick}, completed at bar {diff.bar} (" in report.message


def test_an_indicator_using_a_centred_window_is_named(monkeypatch):
    def centred_sma(columns, source, group):
        close = pd.Series(columns[source])
        return np.array([close.rolling(ind.args[0], center=True).mean() for ind in group])

    monkeypatch.setitem(tables._COMPUTE, "sma", centred_sma)
    report = check_lookahead("sma_cross", **DATA, cuts=CUTS, params={"fast": 10, "slow": 50})
    diff = report.first_difference
    # the slow SMA's centred windows reach 24 bars ahead: cut, its last 24 bars are NaN
    assert (diff.kind, diff.name) == ("indicator", "sma(50) of close")
    assert diff.bar == diff.cut - 23
    assert diff.truncated_value is None and diff.full_value > 0  # NaN when cut, else a value
    assert report.message.startswith(f"look-ahead: indicator sma(50) of close at bar {diff.bar}")


def test_the_documented_user_strategy_passes(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    _module(tmp_path, monkeypatch, "my_strategies",
            re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0])  # fmt: skip
    params = {"window": 30, "multiplier": 2.5}
    report = check_lookahead(
        "my_strategies:KeltnerBreakout", **DATA, cuts=CUTS, params=params, direction="both"
    )
    assert report.ok, report.message
    result = _cli("my_strategies:KeltnerBreakout", "-s", "SPY", "--source", "sample",
                  "--start", "2012-01-01", "--cuts", str(CUTS), "-p", "window=30")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == CLEAN + "\n"


def test_cli_exits_1_with_one_line_on_look_ahead(leaky):
    args = (f"{leaky}:NextClose", "-s", "SPY", "--source", "sample", "--start", "2012-01-01",
            "--cuts", str(CUTS))  # fmt: skip
    result = _cli(*args)
    assert result.exit_code == 1
    expected = check_lookahead(f"{leaky}:NextClose", **DATA, cuts=CUTS).message
    assert result.output == expected + "\n"
    assert "Traceback" not in result.output
    as_json = _cli(*args, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.output)["message"] == expected


def test_cli_renko_clean_run_and_errors():
    base = ("-s", "SPY", "--source", "sample", "--start", "2012-01-01", "--cuts", str(CUTS))
    clean = _cli("donchian_breakout", *base, "--bars", "renko", "--renko-box", "2", "--seed", "3")
    assert clean.exit_code == 0, clean.output
    assert clean.output == CLEAN + "\n"
    unknown = _cli("sma_cross", *base, "-p", "fats=5")
    assert unknown.exit_code == 2
    assert unknown.output.startswith("Error: unknown parameter 'fats' for sma_cross")
    assert "Traceback" not in unknown.output
    no_symbol = _cli("sma_cross")
    assert no_symbol.exit_code == 2 and "--symbol" in no_symbol.output
    no_cuts = _cli("sma_cross", *base, "--cuts", "0")
    assert no_cuts.exit_code == 2


def test_cut_bars_are_even_plus_seeded_random():
    cuts = cut_bars(100, 1000, 20, seed=1)
    assert len(cuts) == 20 and cuts == sorted(set(cuts))
    assert cuts[0] == 100 and cuts[-1] == 1000
    even = set(np.rint(np.linspace(100, 1000, 10)).astype(int).tolist())
    assert even <= set(cuts)
    assert cut_bars(100, 1000, 20, seed=1) == cuts
    assert cut_bars(100, 1000, 20, seed=2) != cuts
    assert cut_bars(5, 9, 50, seed=0) == [5, 6, 7, 8, 9]  # fewer bars than cuts: all of them
    assert cut_bars(5, 5, 1, seed=0) == [5]


def test_seed_none_is_recorded_and_bad_inputs_raise():
    report = check_lookahead("sma_cross", **DATA, cuts=3, seed=None)
    assert isinstance(report.seed, int) and report.ok
    again = check_lookahead("sma_cross", **DATA, cuts=3, seed=report.seed)
    assert again.cuts == report.cuts
    with pytest.raises(ConfigError, match="cuts >= 1 must hold"):
        check_lookahead("sma_cross", **DATA, cuts=0)
    with pytest.raises(ConfigError, match="needs at least 51 bars"):
        check_lookahead("sma_cross", symbol="SPY", source="sample", start="2020-07-01")
