"""No look-ahead, for every built-in strategy: data after bar t cannot move anything up to t.

Real SPY bars up to a random bar t; after t, the bars are changed at random (each bar's OHLC
scaled by its own random factor, so bars stay valid). Targets, held units, equity and every fill
(entry or exit) at a bar <= t must be identical, for random parameters, both fill modes and
all directions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numba import njit

from ivybt.config import ExecutionConfig
from ivybt.data.sample import load_sample
from ivybt.engine.simulation import simulate_strategy
from ivybt.engine.tables import bar_columns
from ivybt.strategies import BUILTIN, SIGNAL_BUILTIN, Indicator, Strategy

_SPY, _ = load_sample("SPY", "1d")
N_BARS = 500


def draw_params(data: st.DataObject, strategy: type[Strategy]) -> dict[str, float | int]:
    """Random parameters inside each parameter's sensible range that satisfy the constraints."""
    values: dict[str, float | int] = {}
    for param in strategy.params:
        if param.kind is int:
            values[param.name] = data.draw(st.integers(int(param.low), int(param.high)))
        else:
            values[param.name] = data.draw(
                st.floats(float(param.low), float(param.high), allow_nan=False)
            )
    assume(all(constraint.holds(values) for constraint in strategy.parsed_constraints()))
    return values


def perturbed_after(frame: pd.DataFrame, t: int, factors: np.ndarray) -> pd.DataFrame:
    changed = frame.copy()
    scale = np.ones(len(frame))
    scale[t + 1 :] = factors[: len(frame) - t - 1]
    for column in ("open", "high", "low", "close"):
        changed[column] = frame[column].to_numpy() * scale
    return changed


def assert_causal(
    strategy: type[Strategy],
    params: dict[str, float | int],
    frame: pd.DataFrame,
    t: int,
    factors: np.ndarray,
    execution: ExecutionConfig,
) -> None:
    """Assert that perturbing the bars after `t` leaves every position and fill up to t alone."""
    runs = [
        simulate_strategy(bar_columns(bars), strategy, params, execution, periods_per_year=252.0)
        for bars in (frame, perturbed_after(frame, t, factors))
    ]
    original, changed = runs
    upto = slice(0, t + 1)
    np.testing.assert_array_equal(original.target[upto], changed.target[upto])
    np.testing.assert_array_equal(original.units[upto], changed.units[upto])
    np.testing.assert_array_equal(original.equity[upto], changed.equity[upto])
    entered = original.trades["entry_bar"] <= t
    changed_entered = changed.trades["entry_bar"] <= t
    for field in ("entry_bar", "side", "units", "entry_price", "entry_fee"):
        np.testing.assert_array_equal(
            original.trades[field][entered], changed.trades[field][changed_entered], err_msg=field
        )
    exited = (original.trades["exit_bar"] <= t) & ~original.trades["is_open"]
    changed_exited = (changed.trades["exit_bar"] <= t) & ~changed.trades["is_open"]
    for field in ("exit_bar", "exit_price", "exit_fee", "net_pnl"):
        np.testing.assert_array_equal(
            original.trades[field][exited], changed.trades[field][changed_exited], err_msg=field
        )


@pytest.mark.parametrize("name", sorted(SIGNAL_BUILTIN))
@given(data=st.data())
def test_changing_data_after_t_changes_nothing_up_to_t(name, data):
    strategy = BUILTIN[name]
    params = draw_params(data, strategy)
    offset = data.draw(st.integers(0, len(_SPY) - N_BARS), label="offset")
    frame = _SPY.iloc[offset : offset + N_BARS]
    t = data.draw(st.integers(1, N_BARS - 2), label="t")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    factors = np.random.default_rng(seed).uniform(0.5, 1.5, N_BARS)
    execution = ExecutionConfig(
        commission=0.001,
        slippage=0.0005,
        fill=data.draw(st.sampled_from(["next_open", "close"]), label="fill"),
        direction=data.draw(st.sampled_from(["long", "short", "both"]), label="direction"),
    )
    assert_causal(strategy, params, frame, t, factors, execution)


@njit
def _peeking_signal_nb(table, rows, params, out_target):
    close = table[rows[0]]
    for t in range(close.shape[0]):
        tomorrow = close[t + 1] if t + 1 < close.shape[0] else close[t]
        out_target[t] = 1 if tomorrow > close[t] else -1


class _Peeking(Strategy):
    name = "peeking"
    summary = "Trades on tomorrow's close: the look-ahead check must catch it."
    params = ()
    signal_kernel = _peeking_signal_nb

    @classmethod
    def indicators(cls, p):
        return (Indicator("price"),)


def test_the_check_catches_a_peeking_strategy():
    frame = _SPY.iloc[:300]
    factors = np.linspace(0.6, 1.4, 300)
    with pytest.raises(AssertionError):
        assert_causal(_Peeking, {}, frame, 150, factors, ExecutionConfig(direction="both"))
