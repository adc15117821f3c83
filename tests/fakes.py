"""A fake Yahoo Finance for tests: serves slices of the bundled real data in yfinance's shape.

It replaces `ivybt.data.yahoo.download` (the one function that calls yfinance), records every
requested range, and can be scripted to answer like Yahoo does when things go wrong: a rate
limit, an empty answer, MultiIndex columns, an unreachable network, revised history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pandas as pd
import yfinance.exceptions as yf_errors

import ivybt
from ivybt.data.intervals import parse_interval

#: IvyBT column -> the column yfinance returns.
YAHOO_NAMES = {
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "adj_close": "Adj Close",
    "volume": "Volume",
}


def yahoo_shape(frame: pd.DataFrame, interval: str, exchange_tz: str) -> pd.DataFrame:
    """A canonical frame as `yf.Ticker.history(auto_adjust=False)` returns it."""
    iv = parse_interval(interval)
    out = frame.rename(columns=YAHOO_NAMES)
    index = frame.index
    if iv.intraday:
        out.index = index.tz_convert(exchange_tz).rename("Datetime")
    else:
        out.index = index.tz_localize(exchange_tz).rename("Date")
    return out


class NetworkDown(OSError):
    """What curl_cffi raises when DNS fails (an OSError subclass named like it)."""


NetworkDown.__name__ = "DNSError"


@dataclass
class FakeYahoo:
    """Callable with `download`'s signature."""

    data: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    exchange_tz: str = "America/New_York"
    calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)
    sleeps: list[float] = field(default_factory=list)

    def serve(self, symbol: str, interval: str, frame: pd.DataFrame) -> FakeYahoo:
        self.data[(symbol, interval)] = frame
        return self

    def serve_sample(self, symbol: str, interval: str = "1d", **load_kw: object) -> pd.DataFrame:
        frame = ivybt.load(symbol, interval, source="sample", adjusted=False, **load_kw)
        frame.attrs = {}
        self.serve(symbol, interval, frame)
        return frame

    def __call__(
        self, symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> pd.DataFrame:
        self.calls.append((symbol, interval, start, end))
        action = self.script.popleft() if self.script else "ok"
        if action == "rate_limit":
            raise yf_errors.YFRateLimitError()
        if action == "network":
            raise NetworkDown("Could not resolve host: query2.finance.yahoo.com")
        if action == "empty" or (symbol, interval) not in self.data:
            return pd.DataFrame(columns=["Open", "High", "Low", "Close", "Adj Close", "Volume"])
        frame = self.data[(symbol, interval)]
        part = frame.loc[(frame.index >= start) & (frame.index < end)]
        shaped = yahoo_shape(part, interval, self.exchange_tz)
        if action == "multiindex":
            shaped.columns = pd.MultiIndex.from_product(
                [shaped.columns, [symbol]], names=["Price", "Ticker"]
            )
        return shaped

    def ranges(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        return [(start, end) for _, _, start, end in self.calls]
