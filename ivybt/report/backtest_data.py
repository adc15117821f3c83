"""The tables of a backtest report, built from the backtest's frames with pandas only.

`backtest_report_data` turns the backtest's frames into the tables the figures of
`ivybt.report.backtest` draw; it does not import plotly and is tested without it.

Input frames (the contract with the backtest):

- ``prices``: DatetimeIndex named ``date``; columns ``open, high, low, close`` (float64).
- ``equity``: same index; ``equity`` (account value after costs), ``returns``, ``drawdown``
  (fraction <= 0), ``units`` (signed), ``benchmark_equity`` (buy-and-hold scaled to the same
  initial cash).
- ``trades``: one row per round trip; ``entry_time``, ``exit_time``, ``side`` ("long" or
  "short"), ``units``, ``entry_price``, ``exit_price``, fees, ``gross_pnl``, ``net_pnl``,
  ``return``, ``bars_held``, ``is_open``. The open trade's ``exit_time`` is the last bar and its
  ``exit_price`` the price it is marked at; it is not an exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError

_TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "side",
    "entry_price",
    "exit_price",
    "net_pnl",
    "return",
    "is_open",
)
_MARKER_COLUMNS = ("time", "price", "side", "kind", "is_open", "trade", "net_pnl")
_PNL_COLUMNS = (
    "trade",
    "entry_time",
    "exit_time",
    "side",
    "net_pnl",
    "return",
    "is_open",
    "outcome",
)


def backtest_report_data(
    prices: pd.DataFrame, equity: pd.DataFrame, trades: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The tables the backtest figures draw. Pure pandas; the inputs are not modified.

    Returns
    -------
    dict with these DataFrames:

    - ``price``: index ``date``; ``close``.
    - ``markers``: one row per fill, oldest first: ``time``, ``price`` (the trade's fill
      price), ``side`` ("long"/"short"), ``kind`` ("entry"/"exit"), ``is_open``, ``trade``
      (row number in `trades`), ``net_pnl``. The open trade's "exit" row has
      ``is_open=True``: it is the mark at the last bar, not a fill.
    - ``equity``: index ``date``; ``strategy`` and ``buy_and_hold`` account values, both
      scaled to the same initial cash by the backtest.
    - ``drawdown``: index ``date``; ``drawdown`` as a fraction <= 0.
    - ``trade_pnl``: one row per trade: ``trade``, ``entry_time``, ``exit_time``, ``side``,
      ``net_pnl`` (currency), ``return`` (fraction of entry notional), ``is_open``,
      ``outcome`` ("win" if net_pnl > 0, "loss" otherwise, "open" for the open trade).

    Raises
    ------
    ConfigError : a required column is missing, `equity` is not indexed like `prices`, or a
        trade's side is not "long"/"short".
    """
    require_columns(prices, ("close",), "prices")
    require_columns(equity, ("equity", "drawdown", "benchmark_equity"), "equity")
    if not prices.index.equals(equity.index):
        raise ConfigError(
            f"equity must have the same index as prices: {len(equity)} bars "
            f"({span_text(equity.index)}) vs {len(prices)} bars ({span_text(prices.index)}); "
            "pass the frames of one backtest run"
        )
    index = prices.index.rename("date")

    price = pd.DataFrame({"close": prices["close"].to_numpy(dtype="float64")}, index=index)
    curves = pd.DataFrame(
        {
            "strategy": equity["equity"].to_numpy(dtype="float64"),
            "buy_and_hold": equity["benchmark_equity"].to_numpy(dtype="float64"),
        },
        index=index,
    )
    drawdown = pd.DataFrame(
        {"drawdown": equity["drawdown"].to_numpy(dtype="float64")}, index=index
    )
    trade_pnl = _trade_pnl(trades)
    markers = _markers(trades, trade_pnl)
    return {
        "price": price,
        "markers": markers,
        "equity": curves,
        "drawdown": drawdown,
        "trade_pnl": trade_pnl,
    }


def _trade_pnl(trades: pd.DataFrame) -> pd.DataFrame:
    if len(trades) == 0:
        return empty_frame(_PNL_COLUMNS, {"trade": "int64", "net_pnl": "float64", "is_open": bool})
    require_columns(trades, _TRADE_COLUMNS, "trades")
    sides = set(trades["side"].unique())
    if not sides <= {"long", "short"}:
        raise ConfigError(
            f"trades['side'] must be 'long' or 'short'; got {sorted(map(str, sides))}"
        )
    is_open = trades["is_open"].to_numpy(dtype=bool)
    net_pnl = trades["net_pnl"].to_numpy(dtype="float64")
    outcome = np.where(is_open, "open", np.where(net_pnl > 0, "win", "loss"))
    return pd.DataFrame(
        {
            "trade": np.arange(len(trades), dtype="int64"),
            "entry_time": trades["entry_time"].reset_index(drop=True),
            "exit_time": trades["exit_time"].reset_index(drop=True),
            "side": trades["side"].astype(str).to_numpy(),
            "net_pnl": net_pnl,
            "return": trades["return"].to_numpy(dtype="float64"),
            "is_open": is_open,
            "outcome": outcome,
        }
    )


def _markers(trades: pd.DataFrame, trade_pnl: pd.DataFrame) -> pd.DataFrame:
    if len(trades) == 0:
        return empty_frame(
            _MARKER_COLUMNS,
            {"price": "float64", "is_open": bool, "trade": "int64", "net_pnl": "float64"},
        )
    common = {
        "side": trade_pnl["side"].to_numpy(),
        "is_open": trade_pnl["is_open"].to_numpy(),
        "trade": trade_pnl["trade"].to_numpy(),
        "net_pnl": trade_pnl["net_pnl"].to_numpy(),
    }
    entries = pd.DataFrame(
        {
            "time": trades["entry_time"].reset_index(drop=True),
            "price": trades["entry_price"].to_numpy(dtype="float64"),
            "kind": "entry",
            **common,
        }
    )
    exits = pd.DataFrame(
        {
            "time": trades["exit_time"].reset_index(drop=True),
            "price": trades["exit_price"].to_numpy(dtype="float64"),
            "kind": "exit",
            **common,
        }
    )
    both = pd.concat([entries, exits], ignore_index=True)
    # a reversal exits trade k and enters trade k+1 on one bar: keep the exit first
    both = both.sort_values(["time", "trade"], kind="stable", ignore_index=True)
    return both.loc[:, list(_MARKER_COLUMNS)]


def empty_frame(columns: Iterable[str], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """A frame with no rows and these columns (dtypes by name, object otherwise)."""
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, object)) for c in columns})


def require_columns(
    frame: pd.DataFrame, columns: Iterable[str], name: str, what: str = "the backtest"
) -> None:
    """ConfigError naming the columns `frame` lacks (`name` is the frame's argument)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{name} is missing column(s) {missing}; it has {list(frame.columns)}. "
            f"Pass the frames returned by {what}."
        )


def span_text(index: pd.Index) -> str:
    """'first .. last' of an index, for messages."""
    return f"{index[0]} .. {index[-1]}" if len(index) else "empty"
