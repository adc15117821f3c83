"""Properties of the simulation and metrics kernels on real bars with random targets."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ivybt.data.sample import load_sample
from ivybt.kernels.metrics import METRIC_NAMES, metrics_nb
from ivybt.kernels.simulate import TRADE_DTYPE, Execution, count_entries_nb, simulate_nb

_SPY, _ = load_sample("SPY", "1d")
_OPEN = _SPY["open"].to_numpy()
_CLOSE = _SPY["close"].to_numpy()
N_BARS = 300


@st.composite
def runs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A real 300-bar SPY slice and a random target path that changes every few bars."""
    offset = draw(st.integers(0, len(_CLOSE) - N_BARS))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sides = draw(st.sampled_from([(-1, 0, 1), (0, 1), (-1, 0)]))
    hold = draw(st.integers(1, 30))
    target = np.repeat(rng.choice(sides, size=N_BARS // hold + 1), hold)[:N_BARS]
    window = slice(offset, offset + N_BARS)
    return _OPEN[window].copy(), _CLOSE[window].copy(), target.astype(np.int8)


def simulate(open_, close, target, *, fee=0.001, slippage=0.0005, on_close=False):
    execution = Execution(fee, slippage, 1.0, on_close, 10_000.0)
    equity = np.empty(len(close))
    units = np.empty(len(close))
    trades = np.empty(count_entries_nb(target), dtype=TRADE_DTYPE)
    n_trades = simulate_nb(open_, close, target, execution, equity, units, trades)
    values = metrics_nb(equity, units, trades, n_trades, 1e4, 252.0)
    metrics = dict(zip(METRIC_NAMES, values, strict=True))
    return equity, units, trades[:n_trades], metrics


@given(run=runs(), on_close=st.booleans())
def test_flat_target_gives_zero_pnl(run, on_close):
    open_, close, _ = run
    equity, units, trades, metrics = simulate(
        open_, close, np.zeros(N_BARS, np.int8), on_close=on_close
    )
    assert (equity == 10_000.0).all() and (units == 0).all() and len(trades) == 0
    assert metrics["total_return"] == 0.0 and metrics["n_trades"] == 0
    assert np.isnan(metrics["sharpe"]) and np.isnan(metrics["win_rate"])


@given(run=runs(), on_close=st.booleans(), low=st.floats(0, 0.01), extra=st.floats(1e-5, 0.01))
def test_higher_costs_never_raise_the_result(run, on_close, low, extra):
    open_, close, target = run
    base = simulate(open_, close, target, fee=low, on_close=on_close)[0][-1]
    assert simulate(open_, close, target, fee=low + extra, on_close=on_close)[0][-1] <= base
    assert (
        simulate(open_, close, target, fee=low, slippage=extra, on_close=on_close)[0][-1]
        <= (simulate(open_, close, target, fee=low, slippage=0.0, on_close=on_close)[0][-1])
    )


@given(run=runs(), on_close=st.booleans())
def test_positions_follow_targets_and_pnl_adds_up(run, on_close):
    open_, close, target = run
    equity, units, trades, metrics = simulate(open_, close, target, on_close=on_close)
    wanted = target if on_close else np.r_[0, target[:-1]]
    np.testing.assert_array_equal(np.sign(units), wanted)
    np.testing.assert_allclose(equity[-1] - 10_000.0, trades["net_pnl"].sum(), atol=1e-7)
    assert metrics["exposure"] == np.mean(wanted != 0)
    assert metrics["n_trades"] == (~trades["is_open"]).sum()
    assert len(trades) <= count_entries_nb(target)
    assert (trades["exit_bar"] >= trades["entry_bar"]).all()


@given(run=runs())
def test_inputs_are_not_modified(run):
    open_, close, target = run
    copies = open_.copy(), close.copy(), target.copy()
    simulate(open_, close, target)
    for before, after in zip(copies, (open_, close, target), strict=True):
        np.testing.assert_array_equal(before, after)
