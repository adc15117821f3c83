"""Map vendor column names (Yahoo, Stooq, Nasdaq, MetaTrader, Dukascopy, ...) to IvyBT's.

Names are compared after lower-casing and removing everything but letters and digits, so
"Adj Close", "adj_close" and "AdjClose" are one name. The first alias found wins, so "Close"
is preferred over "Last" or "Price" when a file has both.
"""

from __future__ import annotations

import re

import pandas as pd

DATE_ALIASES: tuple[str, ...] = (
    "date",
    "datetime",
    "timestamp",
    "time",
    "gmttime",
    "localtime",
    "opentime",
    "day",
    "ts",
)
VALUE_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "openprice", "o", "opn"),
    "high": ("high", "highprice", "h", "max"),
    "low": ("low", "lowprice", "l", "min"),
    "close": ("close", "closeprice", "closelast", "last", "price", "c"),
    "adj_close": ("adjclose", "adjustedclose", "adjclosing", "closeadj"),
    "volume": ("volume", "vol", "v", "tickvolume", "volumefrom"),
}


def squash(name: object) -> str:
    """Lower-case `name` and keep only letters and digits: "Adj Close" -> "adjclose"."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def find_date_column(columns: pd.Index) -> str | None:
    """The column holding timestamps, by name, or None."""
    by_squashed = {squash(c): c for c in columns}
    for alias in DATE_ALIASES:
        if alias in by_squashed:
            return str(by_squashed[alias])
    return None


def map_value_columns(columns: pd.Index) -> dict[str, str]:
    """Return {source column: ivybt column} for the OHLCV columns found in `columns`."""
    by_squashed: dict[str, str] = {}
    for column in columns:
        by_squashed.setdefault(squash(column), str(column))
    mapping: dict[str, str] = {}
    for target, aliases in VALUE_ALIASES.items():
        for alias in aliases:
            source = by_squashed.get(alias)
            if source is not None and source not in mapping:
                mapping[source] = target
                break
    return mapping


def flatten_columns(frame: pd.DataFrame, *, name: str) -> pd.DataFrame:
    """Drop the ticker level of MultiIndex columns (as `yfinance.download` returns them).

    Raises ValueError when the frame holds more than one ticker.
    """
    if not isinstance(frame.columns, pd.MultiIndex):
        return frame
    known = {squash(a) for aliases in VALUE_ALIASES.values() for a in aliases}
    for level in range(frame.columns.nlevels):
        values = frame.columns.get_level_values(level)
        if any(squash(v) in known for v in values):
            others = [lvl for lvl in range(frame.columns.nlevels) if lvl != level]
            tickers = {
                tuple(frame.columns.get_level_values(o)[i] for o in others)
                for i in range(len(frame.columns))
            }
            if len(tickers) > 1:
                raise ValueError(
                    f"{name}: the frame holds {len(tickers)} tickers "
                    f"({', '.join(map(str, sorted(tickers)[:5]))}); give one ticker per series"
                )
            flat = frame.copy()
            flat.columns = pd.Index(list(values))
            return flat
    raise ValueError(f"{name}: no OHLCV level found in MultiIndex columns {list(frame.columns)}")
