"""`load`: one validated OHLCV frame from the cache, Yahoo or the bundled sample.

Sources (`source=`):

- ``"auto"`` (default): like ``"yahoo"``; a series imported from a vendor file is read from the
  cache as it is (it is never updated from Yahoo); when Yahoo cannot be reached *and* nothing
  is cached for the symbol, the bundled sample is used with a `SampleFallbackWarning`.
- ``"yahoo"``: the cache, first brought up to date for [start, end) from Yahoo (fetching only
  what is missing); fails when the network does.
- ``"cache"``: the cache only, no network; fails when the series or range is not cached.
- ``"sample"``: the bundled real series (`ivybt data list`), no network.

Prices: ``adjusted=None`` (default) gives dividend- and split-adjusted OHLC when the series has
`adj_close` and the prices as stored otherwise; ``adjusted=True`` demands the adjustment (an
error without `adj_close`); ``adjusted=False`` gives the stored prices and keeps `adj_close`.
Adjusting multiplies open, high, low and close by adj_close / close; volume is left as stored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from ivybt.data.cache import DataCache, normalise_symbol
from ivybt.data.intervals import Interval, parse_interval, to_range
from ivybt.data.sample import find_sample, load_sample, sample_catalog
from ivybt.data.store import data_sha256, read_index_summary, read_meta
from ivybt.data.validate import OHLC_COLUMNS
from ivybt.errors import (
    ConfigError,
    DataError,
    DataRangeWarning,
    NetworkUnavailableError,
    SampleFallbackWarning,
)

Source = Literal["auto", "yahoo", "cache", "sample"]
SOURCES: tuple[str, ...] = get_args(Source)
_RANGE_SLACK = pd.Timedelta(days=7)  # a requested bound this far past the data is worth a word


@dataclass(frozen=True)
class LoadedSeries:
    """A loaded frame and where it came from."""

    frame: pd.DataFrame
    symbol: str
    interval: str
    source: str  # the source actually used: "cache", "yahoo" or "sample"
    adjusted: bool
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What a manifest stores about this series."""
        first = self.frame.index[0].isoformat() if len(self.frame) else None
        last = self.frame.index[-1].isoformat() if len(self.frame) else None
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "source": self.source,
            "adjusted": self.adjusted,
            "rows": len(self.frame),
            "first": first,
            "last": last,
            "sha256": self.sha256,
            **self.provenance,
        }


def load(
    symbol: str,
    interval: str = "1d",
    start: object = None,
    end: object = None,
    *,
    source: Source = "auto",
    adjusted: bool | None = None,
    cache_dir: str | Path | None = None,
    repair: bool = False,
) -> pd.DataFrame:
    """Return the validated OHLCV frame of `symbol` for [start, end).

    Parameters
    ----------
    symbol : ticker, e.g. "SPY", "^GSPC", "EURUSD=X" (bundled samples also answer to these).
    interval : "1d" (default), "1wk", "1mo", "1h", "90m", "30m", "15m", "5m", "2m", "1m".
    start, end : half-open range; dates or times (naive times are UTC for intraday data).
        None: everything available.
    source : "auto", "yahoo", "cache" or "sample" (see the module docstring).
    adjusted : None, True or False (see the module docstring).
    cache_dir : the cache folder; default $IVYBT_CACHE_DIR or ./cache.
    repair : allow the safe repairs of freshly fetched data (`ivybt.data.validate`).

    Returns
    -------
    DataFrame indexed by `date` (session dates, or UTC bar-open times), float64 columns open,
    high, low, close, volume (+ adj_close in the raw view). ``frame.attrs["ivybt"]`` holds
    the provenance record (source used, adjustment, SHA-256 of the data).

    Examples
    --------
    >>> import ivybt
    >>> spy = ivybt.load("SPY", "1d", "2019-01-01", "2020-01-01", source="sample")
    >>> len(spy), spy.index[0].date(), spy.index[-1].date()
    (252, datetime.date(2019, 1, 2), datetime.date(2019, 12, 31))
    """
    loaded = load_series(
        symbol,
        interval,
        start,
        end,
        source=source,
        adjusted=adjusted,
        cache_dir=cache_dir,
        repair=repair,
    )
    frame = loaded.frame.copy()
    frame.attrs["ivybt"] = loaded.record()
    return frame


def load_series(
    symbol: str,
    interval: str | Interval = "1d",
    start: object = None,
    end: object = None,
    *,
    source: Source = "auto",
    adjusted: bool | None = None,
    cache_dir: str | Path | None = None,
    repair: bool = False,
    now: pd.Timestamp | None = None,
) -> LoadedSeries:
    """Like `load`, returning the frame with its provenance (`LoadedSeries`)."""
    iv = parse_interval(interval)
    symbol = normalise_symbol(symbol)
    lo, hi = to_range(start, end, iv)
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    cache = DataCache(cache_dir)
    used, frame, provenance = _resolve(symbol, iv, lo, hi, source, cache, repair, now)
    frame = _slice(frame, lo, hi)
    if frame.empty:
        raise DataError(
            f"no {symbol} {iv.name} bars in [{start}, {end}) from {used}; "
            "see `ivybt data show` for the range available"
        )
    frame, is_adjusted = adjust_prices(frame, adjusted, name=f"{symbol} {iv.name} ({used})")
    return LoadedSeries(frame, symbol, iv.name, used, is_adjusted, data_sha256(frame), provenance)


def local_source(symbol: str, interval: str, cache_dir: str | Path | None = None) -> str:
    """ "cache" if the series is cached, else "sample" if bundled; never the network."""
    if DataCache(cache_dir).path(symbol, interval).exists():
        return "cache"
    if find_sample(symbol, interval) is not None:
        return "sample"
    raise DataError(
        f"{normalise_symbol(symbol)} {parse_interval(interval).name} is neither cached in "
        f"{DataCache(cache_dir).root} nor bundled; fetch it with `ivybt data fetch {symbol}` "
        "or import it with `ivybt data import`"
    )


def adjust_prices(
    frame: pd.DataFrame, adjusted: bool | None, *, name: str
) -> tuple[pd.DataFrame, bool]:
    """Apply the adjusted/raw choice (see the module docstring); return the frame and
    whether it is adjusted."""
    if adjusted is False:
        return frame, False
    if "adj_close" not in frame:
        if adjusted:
            raise DataError(
                f"{name} has no adj_close, so adjusted prices cannot be computed; use --raw "
                "(adjusted=False), or fetch/import a series that has an adjusted close"
            )
        return frame, False
    factor = frame["adj_close"] / frame["close"]
    out = frame.drop(columns="adj_close")
    for column in OHLC_COLUMNS:
        out[column] = frame[column] * factor
    return out, True


def list_series(cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Every cached and bundled series: symbol, interval, location, source, first, last, rows,
    adj_close, detail (file path or licence)."""
    rows: list[dict[str, Any]] = []
    for path in DataCache(cache_dir).files():
        try:
            meta = read_meta(path)
            count, first, last = read_index_summary(path)
            rows.append(
                {
                    "symbol": meta.symbol if meta else path.stem,
                    "interval": meta.interval if meta else "?",
                    "location": "cache",
                    "source": meta.source if meta else "?",
                    "first": first,
                    "last": last,
                    "rows": count,
                    "adj_close": "adj_close" in _column_names(path),
                    "detail": str(path),
                }
            )
        except Exception as err:  # one unreadable file must not hide the others
            rows.append(
                {
                    "symbol": path.stem,
                    "interval": "?",
                    "location": "cache",
                    "source": "unreadable",
                    "first": None,
                    "last": None,
                    "rows": 0,
                    "adj_close": False,
                    "detail": f"{path}: {err}",
                }
            )
    for entry in sample_catalog():
        count, first, last = read_index_summary(entry.path)
        rows.append(
            {
                "symbol": entry.symbol,
                "interval": entry.interval,
                "location": "sample",
                "source": entry.vendor,
                "first": first,
                "last": last,
                "rows": count,
                "adj_close": "adj_close" in _column_names(entry.path),
                "detail": entry.license,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "symbol",
            "interval",
            "location",
            "source",
            "first",
            "last",
            "rows",
            "adj_close",
            "detail",
        ],
    )


def _resolve(
    symbol: str,
    iv: Interval,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    source: str,
    cache: DataCache,
    repair: bool,
    now: pd.Timestamp | None,
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    if source == "sample":
        return _from_sample(symbol, iv, lo, hi)
    path = cache.path(symbol, iv)
    meta = read_meta(path) if path.exists() else None
    if source == "cache" or (source == "auto" and meta is not None and meta.source == "import"):
        return _from_cache(symbol, iv, lo, hi, cache)
    if meta is not None and meta.source == "import":
        raise DataError(
            f"{symbol} {iv.name} in {path} was imported from a vendor file and is not updated "
            "from Yahoo; use --source cache (or auto), or delete the file to fetch from Yahoo"
        )
    try:
        cache.update(symbol, iv, lo, hi, now=now, repair=repair)
    except NetworkUnavailableError as err:
        if source == "auto" and not path.exists() and find_sample(symbol, iv.name) is not None:
            warnings.warn(
                f"{err}; using the bundled sample {symbol} {iv.name} instead (pass --source "
                "sample to choose it explicitly)",
                SampleFallbackWarning,
                stacklevel=4,
            )
            return _from_sample(symbol, iv, lo, hi)
        raise
    _, frame, provenance = _from_cache(symbol, iv, lo, hi, cache)
    return "yahoo", frame, provenance


def _from_sample(
    symbol: str, iv: Interval, lo: pd.Timestamp | None, hi: pd.Timestamp | None
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    frame, entry = load_sample(symbol, iv.name)
    _warn_if_short(frame, lo, hi, f"the bundled sample {entry.symbol} {iv.name}")
    return (
        "sample",
        frame,
        {
            "sample_file": entry.file,
            "origin": entry.source,
            "license": entry.license,
            "price_basis": entry.price_basis,
        },
    )


def _from_cache(
    symbol: str, iv: Interval, lo: pd.Timestamp | None, hi: pd.Timestamp | None, cache: DataCache
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    cached = cache.read(symbol, iv)
    path = cache.path(symbol, iv)
    if cached is None:
        raise DataError(
            f"{symbol} {iv.name} is not cached in {cache.root}; fetch it first with "
            f"`ivybt data fetch {symbol} --interval {iv.name}` or use --source auto"
        )
    frame, meta = cached
    coverage = meta.coverage() if meta is not None else None
    if meta is not None and meta.source == "yahoo" and coverage is not None:
        if (lo is not None and lo < coverage[0]) or (hi is not None and hi > coverage[1]):
            raise DataError(
                f"the cache holds {symbol} {iv.name} for [{coverage[0]}, {coverage[1]}) only, "
                f"but [{lo}, {hi}) was requested; extend it with `ivybt data fetch {symbol} "
                f"--interval {iv.name} --start ... --end ...` or use --source auto"
            )
    else:
        _warn_if_short(frame, lo, hi, f"the cached {symbol} {iv.name}")
    provenance = {"cache_file": str(path)}
    if meta is not None:
        provenance.update(
            {
                "origin": meta.source,
                "price_basis": meta.price_basis,
                "updated_at": meta.updated_at,
                "exchange_tz": meta.exchange_tz,
            }
        )
        if meta.max_jump is not None:  # validated with a factor the user allowed
            limit = meta.max_jump
            provenance["max_jump"] = limit if np.isfinite(limit) else "inf"  # JSON has no inf
    return "cache", frame, provenance


def _slice(frame: pd.DataFrame, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if lo is not None:
        mask &= frame.index >= lo
    if hi is not None:
        mask &= frame.index < hi
    return frame.loc[mask]


def _warn_if_short(
    frame: pd.DataFrame, lo: pd.Timestamp | None, hi: pd.Timestamp | None, what: str
) -> None:
    if frame.empty:
        return
    first, last = frame.index[0], frame.index[-1]
    if (lo is not None and lo < first - _RANGE_SLACK) or (
        hi is not None and hi > last + _RANGE_SLACK
    ):
        warnings.warn(
            f"{what} spans {first} .. {last}, less than the requested [{lo}, {hi}); "
            "results cover only the bars available",
            DataRangeWarning,
            stacklevel=5,
        )


def _column_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)
