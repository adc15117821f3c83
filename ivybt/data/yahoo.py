"""Yahoo Finance through yfinance: the only code in IvyBT that touches the network.

`download` makes one yfinance call for one ticker and returns what yfinance returns; tests
replace it with a fake. `fetch_yahoo` wraps it: retries with back-off when Yahoo rate-limits, turns
connection failures and empty answers into typed errors, and normalises the answer (MultiIndex
or flat columns, exchange-tz index) into a validated canonical OHLCV frame.

yfinance is quiet by default (``download()`` logs a per-ticker failure and returns an empty
frame); here every option is explicit: one ticker per call, ``auto_adjust=False`` (raw
split-adjusted OHLC plus the dividend-adjusted ``Adj Close``), no actions, no pre/post market,
no repair, ``raise_errors=True``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from ivybt.data.columns import flatten_columns, map_value_columns
from ivybt.data.intervals import Interval, parse_interval
from ivybt.data.validate import INDEX_NAME, Validated, validate_ohlcv
from ivybt.errors import (
    EmptyDataError,
    FetchError,
    NetworkUnavailableError,
    RateLimitError,
    ValidationError,
)

logger = logging.getLogger(__name__)

#: What Yahoo's OHLC prices are when fetched with auto_adjust=False.
YAHOO_PRICE_BASIS = (
    "Yahoo raw: OHLC adjusted for splits, not dividends; adj_close adjusted for both"
)
REQUEST_TIMEOUT_S = 30
_sleep = time.sleep  # tests replace it to skip the back-off waits


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for rate-limited requests: delay = min(max_delay, base * 2**k) + jitter."""

    attempts: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2**attempt) * (1 + random.random() / 4)


@dataclass(frozen=True)
class FetchResult:
    """A normalised answer: the frame, the exchange's time zone, and repairs applied."""

    frame: pd.DataFrame
    exchange_tz: str | None
    repairs: tuple[str, ...] = ()


def download(symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """One yfinance request: bars of `symbol` at `interval` in [start, end), as yfinance gives.

    Daily-type bounds are passed as dates (read by Yahoo in the exchange's time zone),
    intraday bounds as UTC datetimes.
    """
    import yfinance as yf  # imported here: slow to import, and only needed on the network path

    iv = parse_interval(interval)
    bounds = (start, end) if iv.intraday else (start.date(), end.date())
    with _quiet_yfinance():
        return yf.Ticker(symbol).history(
            start=bounds[0],
            end=bounds[1],
            interval=iv.name,
            auto_adjust=False,
            back_adjust=False,
            actions=False,
            prepost=False,
            repair=False,
            keepna=False,
            rounding=False,
            timeout=REQUEST_TIMEOUT_S,
            raise_errors=True,
        )


def fetch_yahoo(
    symbol: str,
    interval: str | Interval,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    repair: bool = False,
    max_jump: float | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> FetchResult:
    """Fetch bars of `symbol` in [start, end) from Yahoo and return them validated.

    `repair` and `max_jump` are passed to `ivybt.data.validate.validate_ohlcv`.

    Raises
    ------
    RateLimitError : Yahoo still rate-limits after `retry.attempts` tries.
    NetworkUnavailableError : Yahoo cannot be reached.
    EmptyDataError : Yahoo answered with no bars (unknown symbol, or no trading in range).
    ValidationError : the answer breaks a validation rule (see `ivybt.data.validate`).
    """
    iv = parse_interval(interval)
    retry = retry or RetryPolicy()
    sleep = sleep or _sleep
    label = f"{symbol} {iv.name} [{start}, {end})"
    raw = _download_with_retry(symbol, iv, start, end, retry, sleep, label)
    if raw is None or len(raw) == 0:
        raise EmptyDataError(
            f"Yahoo returned no bars for {label}; check the symbol's Yahoo spelling "
            "(e.g. ^GSPC, BRK-B, EURUSD=X) and that it traded in that range"
        )
    frame, exchange_tz = normalise_yahoo(raw, symbol=symbol, interval=iv)
    frame = frame.loc[(frame.index >= start) & (frame.index < end)]
    if frame.empty:
        raise EmptyDataError(f"Yahoo returned no bars inside {label}; widen the range")
    checked: Validated = validate_ohlcv(
        frame, name=f"{symbol} {iv.name}", interval=iv, repair=repair, max_jump=max_jump
    )
    return FetchResult(checked.frame, exchange_tz, checked.repairs)


def normalise_yahoo(
    raw: pd.DataFrame, *, symbol: str, interval: Interval
) -> tuple[pd.DataFrame, str | None]:
    """Turn a yfinance answer into the canonical frame; return it and the exchange tz.

    Handles flat and MultiIndex (price, ticker) columns. Daily-type bars keep the session date
    (the exchange-local date at midnight, tz-naive); intraday bars are converted to UTC.
    """
    name = f"{symbol} {interval.name}"
    try:
        flat = flatten_columns(raw, name=name)
    except ValueError as err:
        raise FetchError(str(err)) from err
    mapping = map_value_columns(flat.columns)
    frame = flat.loc[:, list(mapping)].rename(columns=mapping)
    if "adj_close" not in frame and "close" in frame:
        logger.info("%s: Yahoo sent no Adj Close; the series has raw prices only", name)
    index = pd.DatetimeIndex(flat.index)
    exchange_tz = str(index.tz) if index.tz is not None else None
    if interval.intraday:
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    else:
        index = (index.tz_localize(None) if index.tz is not None else index).normalize()
    frame = frame.set_axis(index.as_unit("ns").rename(INDEX_NAME), axis=0)
    try:
        frame = frame.astype("float64")
    except (TypeError, ValueError) as err:
        raise ValidationError(f"{name}: Yahoo sent non-numeric prices ({err})") from err
    return frame, exchange_tz


def _download_with_retry(
    symbol: str,
    iv: Interval,
    start: pd.Timestamp,
    end: pd.Timestamp,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    label: str,
) -> pd.DataFrame | None:
    for attempt in range(retry.attempts):
        try:
            return download(symbol, iv.name, start, end)
        except Exception as err:
            kind = _classify(err)
            if kind == "rate_limit":
                if attempt + 1 == retry.attempts:
                    raise RateLimitError(
                        f"Yahoo rate-limited {label} {retry.attempts} times in a row; wait a "
                        "few minutes and rerun (cached data is kept)"
                    ) from err
                delay = retry.delay(attempt)
                logger.warning("Yahoo rate limit on %s; retrying in %.1f s", label, delay)
                sleep(delay)
            elif kind == "network":
                raise NetworkUnavailableError(
                    f"cannot reach Yahoo Finance for {label} ({type(err).__name__}: {err}); "
                    "check the connection, or use --source cache / --source sample"
                ) from err
            elif kind == "empty":
                raise EmptyDataError(
                    f"Yahoo has no data for {label} ({err}); check the symbol's Yahoo "
                    "spelling (e.g. ^GSPC, BRK-B, EURUSD=X) and the range"
                ) from err
            else:
                raise FetchError(
                    f"Yahoo request for {label} failed: {type(err).__name__}: {err}"
                ) from err
    raise AssertionError("unreachable: the loop returns or raises")


def _classify(err: Exception) -> str:
    """'rate_limit', 'network', 'empty' or 'other' for an exception raised by yfinance."""
    names = {cls.__name__ for cls in type(err).__mro__}
    text = str(err).lower()
    if "YFRateLimitError" in names or "too many requests" in text or "429" in text:
        return "rate_limit"
    if names & {"YFPricesMissingError", "YFTickerMissingError", "YFTzMissingError"}:
        return "empty"
    if names & {"ConnectionError", "Timeout", "TimeoutError", "DNSError", "ProxyError"}:
        return "network"
    if isinstance(err, OSError):
        return "network"
    return "other"


@contextlib.contextmanager
def _quiet_yfinance() -> Iterator[None]:
    """Silence yfinance's own logging: its failures reach us as exceptions."""
    yf_logger = logging.getLogger("yfinance")
    level = yf_logger.level
    yf_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        yf_logger.setLevel(level)
