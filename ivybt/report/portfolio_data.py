"""The tables of a portfolio report, built from the portfolio run's frames with pandas only.

`portfolio_report_data` turns the frames of one portfolio backtest into the tables the figures
and the trade table of `ivybt.report.portfolio` draw; it does not import plotly and is tested
without it.

Input frames (the contract with the portfolio run):

- ``equity``: indexed by the union timestamps (DatetimeIndex, daily tz-naive or intraday UTC);
  ``equity``, ``returns``, ``drawdown`` (fraction <= 0), ``gross`` (sum of |weights|), ``net``
  (sum of weights), ``benchmark_equity`` (equal-weight buy-and-hold of the universe, same
  initial cash), ``traded`` (notional traded at that bar). Only ``equity``, ``drawdown``,
  ``gross``, ``net`` and ``benchmark_equity`` are read.
- ``weights``: same index, one column per symbol: the weight held at the close (signed
  fraction of equity; 0 when not held).
- ``contributions``: indexed by symbol; ``pnl`` (net, account currency, closed + open),
  ``return_contribution`` (pnl / initial cash), ``trades`` (closed), ``win_rate``,
  ``exposure`` (fraction of bars held), ``first``, ``last`` (the symbol's listing in the run).
- ``trades``: one row per trade; ``symbol``, ``entry_time``, ``exit_time``, ``side`` ("long"
  or "short"), ``units``, ``entry_price``, ``exit_price``, ``entry_fee``, ``exit_fee``,
  ``fees``, ``gross_pnl``, ``net_pnl``, ``return``, ``bars_held``, ``is_open``. An open
  trade's ``exit_time`` is the last bar and its ``exit_price`` the mark, not an exit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError
from ivybt.report.backtest_data import empty_frame, require_columns, span_text

MAX_HEATMAP_COLUMNS = 2_000
"""The weights heatmap keeps at most this many bars: the last bar of each chunk of
`heatmap_step` bars, so 32 years of daily bars stay a light page."""
MAX_TRADES = 2_000
"""The trade table shows at most the last this many trades by entry time."""

SIDES = ("long", "short")
OUTCOMES = ("win", "loss", "open")
FILTERS = ("symbol", "side", "outcome")
"""The trade table's filters, in the order of their controls."""

_EQUITY_COLUMNS = ("equity", "drawdown", "gross", "net", "benchmark_equity")
_CONTRIBUTION_COLUMNS = (
    "pnl",
    "return_contribution",
    "trades",
    "win_rate",
    "exposure",
    "first",
    "last",
)
_TRADE_COLUMNS = (
    "symbol",
    "entry_time",
    "exit_time",
    "side",
    "units",
    "entry_price",
    "exit_price",
    "fees",
    "net_pnl",
    "return",
    "bars_held",
    "is_open",
)
TRADE_TABLE_COLUMNS = ("trade", *_TRADE_COLUMNS[:4], "outcome", *_TRADE_COLUMNS[4:])
"""The columns of ``portfolio_report_data(...)["trades"]``, in order."""


def portfolio_report_data(
    equity: pd.DataFrame,
    weights: pd.DataFrame,
    contributions: pd.DataFrame,
    trades: pd.DataFrame,
    *,
    max_columns: int = MAX_HEATMAP_COLUMNS,
    max_trades: int = MAX_TRADES,
) -> dict[str, pd.DataFrame]:
    """The tables the portfolio report draws. Pure pandas; the inputs are not modified.

    Parameters
    ----------
    equity, weights, contributions, trades : the portfolio run's frames (module docstring).
    max_columns : the most bars the weights heatmap keeps (`heatmap_step`).
    max_trades : the most trades the trade table shows (the last ones by entry time).

    Returns
    -------
    dict with these DataFrames:

    - ``equity``: index ``date``; ``strategy`` and ``buy_and_hold`` (equal-weight) account
      values.
    - ``drawdown``: index ``date``; ``drawdown`` as a fraction <= 0.
    - ``exposure``: index ``date``; ``gross`` and ``net`` exposure (fractions of equity).
    - ``weights``: index ``date``, one column per symbol (the order of `weights`): the held
      weight at the last bar of each chunk of `heatmap_step` bars (every bar when there are
      at most `max_columns`); NaN where the symbol is not listed (before its ``first`` or
      after its ``last`` in `contributions`), so the heatmap leaves those cells empty.
    - ``contribution``: index ``symbol``, largest PnL first; ``pnl``,
      ``return_contribution``, ``trades``, ``win_rate``, ``exposure``, ``first``, ``last``.
    - ``trades``: the last `max_trades` trades by entry time, oldest first, columns
      `TRADE_TABLE_COLUMNS`: ``trade`` (1-based number among all trades by entry time),
      the trade's fields, and ``outcome`` ("open" for an open trade, else "win" if
      ``net_pnl`` > 0, else "loss").
    - ``filters``: the trade table's filter options, one row each: ``filter`` ("symbol",
      "side", "outcome") and ``value``: the symbols of the shown trades (in the order of
      `contributions`, then any others sorted), then their sides (long, short) and outcomes
      (win, loss, open), each only if present.
    - ``sizes``: one row: ``bars``, ``symbols``, ``heatmap_columns``, ``heatmap_step``,
      ``trades`` (all), ``trades_shown``.

    Raises
    ------
    ConfigError : a required column is missing, `weights` is not indexed like `equity`, or a
        trade's side is not "long"/"short".
    """
    require_columns(equity, _EQUITY_COLUMNS, "equity", "the portfolio run")
    require_columns(contributions, _CONTRIBUTION_COLUMNS, "contributions", "the portfolio run")
    if not weights.index.equals(equity.index):
        raise ConfigError(
            f"weights must have the same index as equity: {len(weights)} bars "
            f"({span_text(weights.index)}) vs {len(equity)} bars ({span_text(equity.index)}); "
            "pass the frames of one portfolio run"
        )
    if max_columns < 1 or max_trades < 1:
        raise ConfigError(f"max_columns and max_trades must be >= 1; got {max_columns}, "
                          f"{max_trades}")  # fmt: skip
    index = pd.DatetimeIndex(equity.index).rename("date")

    def columns(names: Iterable[tuple[str, str]]) -> pd.DataFrame:
        return pd.DataFrame(
            {new: equity[old].to_numpy(dtype="float64") for new, old in names}, index=index
        )

    table = _trade_table(trades)
    shown = table.iloc[max(0, len(table) - max_trades) :].reset_index(drop=True)
    contribution = _contribution(contributions)
    heatmap, step = _heatmap(weights, index, contribution, max_columns)
    sizes = pd.DataFrame(
        {
            "bars": [len(index)],
            "symbols": [weights.shape[1]],
            "heatmap_columns": [len(heatmap)],
            "heatmap_step": [step],
            "trades": [len(table)],
            "trades_shown": [len(shown)],
        }
    )
    return {
        "equity": columns((("strategy", "equity"), ("buy_and_hold", "benchmark_equity"))),
        "drawdown": columns((("drawdown", "drawdown"),)),
        "exposure": columns((("gross", "gross"), ("net", "net"))),
        "weights": heatmap,
        "contribution": contribution,
        "trades": shown,
        "filters": filter_options(shown, order=contribution.index),
        "sizes": sizes,
    }


def heatmap_step(n_bars: int, max_columns: int = MAX_HEATMAP_COLUMNS) -> int:
    """Bars per heatmap column: 1 up to `max_columns` bars, else ceil(n_bars / max_columns),
    which keeps ceil(n_bars / step) <= `max_columns` columns."""
    return max(1, math.ceil(n_bars / max_columns))


def downsample_last(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """The last row of each chunk of `step` rows (the rows step-1, 2*step-1, ... and the last
    row, which ends the final, possibly shorter, chunk)."""
    n = len(frame)
    if step <= 1 or n == 0:
        return frame
    rows = np.arange(step - 1, n, step)
    if len(rows) == 0 or rows[-1] != n - 1:
        rows = np.append(rows, n - 1)
    return frame.iloc[rows]


def filter_options(trades: pd.DataFrame, *, order: Iterable[str] = ()) -> pd.DataFrame:
    """The options of the trade table's filters (see `portfolio_report_data`'s ``filters``):
    values present in `trades` (a ``trades`` table of `portfolio_report_data`), symbols in
    the order of `order` first, then any others sorted."""
    present = set(trades["symbol"].astype(str)) if len(trades) else set()
    ordered = [str(s) for s in order if str(s) in present]
    symbols = ordered + sorted(present - set(ordered))
    sides = [s for s in SIDES if len(trades) and (trades["side"] == s).any()]
    outcomes = [o for o in OUTCOMES if len(trades) and (trades["outcome"] == o).any()]
    rows = [("symbol", s) for s in symbols] + [("side", s) for s in sides]
    rows += [("outcome", o) for o in outcomes]
    return pd.DataFrame(rows, columns=["filter", "value"]).astype(object)


def listing_mask(
    index: pd.DatetimeIndex, symbols: Iterable[str], contribution: pd.DataFrame
) -> np.ndarray:
    """bool (len(index), n_symbols): True where a symbol is listed, i.e. between its ``first``
    and ``last`` in `contribution` (inclusive); a symbol absent there, or with no bounds, is
    listed throughout."""
    symbols = list(symbols)
    mask = np.ones((len(index), len(symbols)), dtype=bool)
    for k, symbol in enumerate(symbols):
        if symbol not in contribution.index:
            continue
        first, last = contribution.at[symbol, "first"], contribution.at[symbol, "last"]
        if not pd.isna(first):
            mask[:, k] &= index >= _like(first, index)
        if not pd.isna(last):
            mask[:, k] &= index <= _like(last, index)
    return mask


def _heatmap(
    weights: pd.DataFrame, index: pd.DatetimeIndex, contribution: pd.DataFrame, max_columns: int
) -> tuple[pd.DataFrame, int]:
    symbols = [str(c) for c in weights.columns]
    values = weights.to_numpy(dtype="float64", copy=True)
    values[~listing_mask(index, symbols, contribution)] = np.nan
    full = pd.DataFrame(values, index=index, columns=symbols)
    step = heatmap_step(len(full), max_columns)
    return downsample_last(full, step), step


def _contribution(contributions: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "pnl": contributions["pnl"].to_numpy(dtype="float64"),
            "return_contribution": contributions["return_contribution"].to_numpy(dtype="float64"),
            "trades": contributions["trades"].to_numpy(dtype="float64"),
            "win_rate": contributions["win_rate"].to_numpy(dtype="float64"),
            "exposure": contributions["exposure"].to_numpy(dtype="float64"),
            "first": contributions["first"].to_numpy(),
            "last": contributions["last"].to_numpy(),
        },
        index=pd.Index([str(s) for s in contributions.index], name="symbol"),
    )
    return frame.sort_values("pnl", ascending=False, kind="stable")


def _trade_table(trades: pd.DataFrame) -> pd.DataFrame:
    if len(trades) == 0:
        return empty_frame(
            TRADE_TABLE_COLUMNS,
            {"trade": "int64", "net_pnl": "float64", "is_open": bool, "bars_held": "int64",
             **dict.fromkeys(("units", "entry_price", "exit_price", "fees", "return"),
                             "float64")},
        )  # fmt: skip
    require_columns(trades, _TRADE_COLUMNS, "trades", "the portfolio run")
    sides = set(trades["side"].astype(str).unique())
    if not sides <= set(SIDES):
        raise ConfigError(
            f"trades['side'] must be 'long' or 'short'; got {sorted(map(str, sides))}"
        )
    ordered = trades.sort_values("entry_time", kind="stable", ignore_index=True)
    is_open = ordered["is_open"].to_numpy(dtype=bool)
    net_pnl = ordered["net_pnl"].to_numpy(dtype="float64")
    table = pd.DataFrame(
        {
            "trade": np.arange(1, len(ordered) + 1, dtype="int64"),
            "symbol": ordered["symbol"].astype(str).to_numpy(),
            "entry_time": ordered["entry_time"],
            "exit_time": ordered["exit_time"],
            "side": ordered["side"].astype(str).to_numpy(),
            "outcome": np.where(is_open, "open", np.where(net_pnl > 0, "win", "loss")),
            "units": ordered["units"].to_numpy(dtype="float64"),
            "entry_price": ordered["entry_price"].to_numpy(dtype="float64"),
            "exit_price": ordered["exit_price"].to_numpy(dtype="float64"),
            "fees": ordered["fees"].to_numpy(dtype="float64"),
            "net_pnl": net_pnl,
            "return": ordered["return"].to_numpy(dtype="float64"),
            "bars_held": ordered["bars_held"].to_numpy(dtype="int64"),
            "is_open": is_open,
        }
    )
    return table.loc[:, list(TRADE_TABLE_COLUMNS)]


def _like(stamp: Any, index: pd.DatetimeIndex) -> pd.Timestamp:
    """`stamp` comparable with `index`: a naive stamp is read in the index's zone, an aware
    one converted to it (or to naive UTC wall time for a naive index)."""
    stamp = pd.Timestamp(stamp)
    if index.tz is not None:
        return stamp.tz_localize(index.tz) if stamp.tz is None else stamp.tz_convert(index.tz)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp
