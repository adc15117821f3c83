"""The backtest engine against a plain pandas/Python implementation written here, on real SPY.

The reference shares no code with ivybt: SMAs from pandas rolling means, crossovers from the
sign of fast - slow, and a loop that buys with all cash (commission included) and sells
everything, with slippage moving each fill against the trader.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ivybt
from ivybt.data.sample import load_sample
from tests.tolerances import RTOL_BACKTEST

INITIAL_CASH = 10_000.0


@pytest.fixture(scope="module")
def spy() -> pd.DataFrame:
    frame, _ = load_sample("SPY", "1d")
    return frame


def _crossover_sides(close: pd.Series, fast: int, slow: int, both: bool) -> pd.Series:
    """Side wanted after each bar: +1 after a cross up, 0 (or -1 if both) after a cross down."""
    diff = close.rolling(fast).mean() - close.rolling(slow).mean()
    sign = np.sign(diff).replace(0.0, np.nan).ffill()
    wanted = pd.Series(np.nan, index=close.index)
    wanted[(sign == 1) & (sign.shift() == -1)] = 1.0
    wanted[(sign == -1) & (sign.shift() == 1)] = -1.0 if both else 0.0
    return wanted.ffill().fillna(0.0)


def reference_backtest(
    frame: pd.DataFrame,
    fast: int,
    slow: int,
    *,
    fee: float,
    slippage: float,
    fill: str,
    both: bool = False,
) -> tuple[float, float, list[float]]:
    """(total return, Sharpe with 252 periods a year, per-trade net PnL) of an SMA cross."""
    wanted = _crossover_sides(frame["close"], fast, slow, both).to_numpy()
    opens = frame["open"].to_numpy()
    closes = frame["close"].to_numpy()
    cash, units, equity, pnl = INITIAL_CASH, 0.0, [], []
    entry_cost = 0.0
    for t in range(len(frame)):
        if fill == "close":
            side_wanted, price = wanted[t], closes[t]
        else:
            side_wanted, price = (wanted[t - 1], opens[t]) if t > 0 else (np.sign(units), 0.0)
        held = np.sign(units)
        if side_wanted != held:
            if held != 0:  # close everything
                fill_price = price * (1 - slippage * held)
                proceeds = units * fill_price  # negative for a short: buying back
                fee_paid = fee * abs(proceeds)
                cash += proceeds - fee_paid
                pnl.append(proceeds - fee_paid - entry_cost)
                units = 0.0
            if side_wanted != 0:  # open with all cash, commission included
                fill_price = price * (1 + slippage * side_wanted)
                notional = cash / (1 + fee)
                units = side_wanted * notional / fill_price
                cash -= side_wanted * notional + fee * notional
                entry_cost = side_wanted * notional + fee * notional
        equity.append(cash + units * closes[t])
    curve = pd.Series(equity)
    returns = curve / curve.shift(1).fillna(INITIAL_CASH) - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    return curve.iloc[-1] / INITIAL_CASH - 1, sharpe, pnl


@pytest.mark.parametrize(
    ("fill", "slippage", "fast", "slow"),
    [("close", 0.0, 10, 50), ("next_open", 0.0005, 10, 50), ("next_open", 0.002, 20, 100)],
)
def test_sma_cross_long_only_equals_reference(spy, fill, slippage, fast, slow):
    result = ivybt.backtest(
        "sma_cross",
        data=spy,
        params={"fast": fast, "slow": slow},
        commission=0.001,
        slippage=slippage,
        fill=fill,
        direction="long",
        size=1.0,
        initial_cash=INITIAL_CASH,
    )
    total, sharpe, pnl = reference_backtest(
        spy, fast, slow, fee=0.001, slippage=slippage, fill=fill
    )
    assert result.periods_per_year == 252
    assert result.metrics["total_return"] == pytest.approx(total, rel=RTOL_BACKTEST, abs=1e-12)
    assert result.metrics["sharpe"] == pytest.approx(sharpe, rel=RTOL_BACKTEST)
    closed = result.trades.loc[~result.trades["is_open"], "net_pnl"].to_numpy()
    np.testing.assert_allclose(closed, pnl[: len(closed)], rtol=RTOL_BACKTEST)
    assert result.metrics["n_trades"] == len(closed) > 10


def test_sma_cross_both_directions_equals_reference(spy):
    result = ivybt.backtest(
        "sma_cross", data=spy, params={"fast": 15, "slow": 60}, commission=0.0005,
        slippage=0.001, fill="next_open", direction="both", initial_cash=INITIAL_CASH,
    )  # fmt: skip
    total, sharpe, _ = reference_backtest(
        spy, 15, 60, fee=0.0005, slippage=0.001, fill="next_open", both=True
    )
    assert (result.trades["side"] == "short").any()
    assert result.metrics["total_return"] == pytest.approx(total, rel=RTOL_BACKTEST)
    assert result.metrics["sharpe"] == pytest.approx(sharpe, rel=RTOL_BACKTEST)


def test_trade_log_statistics_equal_kernel_metrics(spy):
    result = ivybt.backtest(
        "rsi_reversion", data=spy, direction="both", commission=0.001, slippage=0.0005
    )
    closed = result.trades[~result.trades["is_open"]]
    wins = closed[closed["net_pnl"] > 0]
    losses = closed[closed["net_pnl"] < 0]
    metrics = result.metrics
    assert len(wins) > 0 and len(losses) > 0
    assert metrics["n_trades"] == len(closed)
    assert metrics["win_rate"] == pytest.approx(len(wins) / len(closed), rel=1e-12)
    assert metrics["gross_profit"] == pytest.approx(wins["net_pnl"].sum(), rel=1e-12)
    assert metrics["gross_loss"] == pytest.approx(losses["net_pnl"].sum(), rel=1e-12)
    assert metrics["profit_factor"] == pytest.approx(
        wins["net_pnl"].sum() / -losses["net_pnl"].sum(), rel=1e-12
    )
    assert metrics["avg_win"] == pytest.approx(wins["return"].mean(), rel=1e-12)
    assert metrics["avg_loss"] == pytest.approx(losses["return"].mean(), rel=1e-12)
    # and the log adds up: net PnL of all trades (the open one marked) is the equity change
    change = result.equity["equity"].iloc[-1] - result.config.execution.initial_cash
    assert result.trades["net_pnl"].sum() == pytest.approx(change, rel=1e-9)
    np.testing.assert_allclose(
        result.trades["net_pnl"],
        result.trades["gross_pnl"] - result.trades["fees"],
        rtol=1e-12,
    )


def test_return_metrics_equal_pandas(spy):
    """Every return-based metric recomputed from the equity curve with pandas."""
    result = ivybt.backtest("ema_cross", data=spy, direction="both")
    equity = result.equity["equity"]
    returns = result.equity["returns"]
    ppy = result.periods_per_year
    growth = equity.iloc[-1] / INITIAL_CASH
    drawdown = (equity / equity.cummax().clip(lower=INITIAL_CASH) - 1).min()
    cagr = growth ** (ppy / len(equity)) - 1
    downside = math.sqrt((returns.clip(upper=0) ** 2).mean())
    want = {
        "total_return": growth - 1,
        "cagr": cagr,
        "volatility": returns.std(ddof=1) * math.sqrt(ppy),
        "sharpe": returns.mean() / returns.std(ddof=1) * math.sqrt(ppy),
        "sortino": returns.mean() / downside * math.sqrt(ppy),
        "max_drawdown": drawdown,
        "calmar": cagr / abs(drawdown),
        "exposure": (result.equity["units"] != 0).mean(),
    }
    for name, value in want.items():
        assert result.metrics[name] == pytest.approx(value, rel=RTOL_BACKTEST), name


def test_open_position_is_marked_and_shown_open(spy):
    # long or short after the first cross: a position is always open at the end
    result = ivybt.backtest(
        "sma_cross", data=spy.iloc[:400], params={"fast": 5, "slow": 20}, direction="both"
    )
    last = result.trades.iloc[-1]
    assert last["is_open"] and not result.trades["is_open"].iloc[:-1].any()
    assert last["exit_time"] == result.equity.index[-1]
    assert last["exit_fee"] == 0.0
    assert last["exit_price"] == spy["close"].iloc[399]
    assert result.equity["units"].iloc[-1] != 0


def test_buy_and_hold_yardstick_equals_pandas(spy):
    result = ivybt.backtest("sma_cross", data=spy, start="2010-01-01")
    close = spy.loc["2010-01-01":, "close"]
    returns = close.pct_change().fillna(0.0)
    assert result.benchmark["total_return"] == pytest.approx(close.iloc[-1] / close.iloc[0] - 1)
    assert result.benchmark["sharpe"] == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(252), rel=RTOL_BACKTEST
    )
    assert result.benchmark["max_drawdown"] == pytest.approx(
        (close / close.cummax() - 1).min(), rel=RTOL_BACKTEST
    )
    assert result.headline()["buy_and_hold"] == result.benchmark
