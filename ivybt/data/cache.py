"""Incremental per-(symbol, interval) Parquet cache of market data.

`cache/{SYMBOL}_{interval}.parquet` holds one validated series and its provenance
(`ivybt.data.store.SeriesMeta`). A request for [start, end):

1. is clipped at the last complete bar (a bar still forming is never cached);
2. fetches nothing when [start, end) lies inside the range already requested from the source
   (`covered_start`, `covered_end`), so a repeated request makes no network call;
3. otherwise fetches only the missing parts: [start, covered_start) before, and after the
   cache from the `overlap_bars`-th last cached bar to `end`. The overlap is compared with the
   cache: if Yahoo revised those bars beyond rounding (a dividend rewrites `adj_close`, a split
   rewrites OHLC, a missed session is backfilled), the whole series is fetched again;
4. merges (newer bars win), de-duplicates, sorts, validates, and writes atomically under a
   file lock, so concurrent processes never corrupt the file and never fetch twice.

Yahoo's intraday windows are checked before any request, and 1m requests are split into
spans Yahoo accepts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import numpy as np
import pandas as pd

from ivybt import __version__
from ivybt._paths import cache_dir
from ivybt.data.intervals import Interval, parse_interval, to_bound
from ivybt.data.store import (
    SeriesMeta,
    read_series,
    remove_stale_temp_files,
    write_series,
)
from ivybt.data.validate import OHLC_COLUMNS, validate_ohlcv
from ivybt.data.yahoo import YAHOO_PRICE_BASIS, FetchResult, fetch_yahoo
from ivybt.errors import ConfigError, DataError, EmptyDataError, HistoryRevisedWarning

logger = logging.getLogger(__name__)

Fetcher = Callable[[str, Interval, pd.Timestamp, pd.Timestamp], FetchResult]
#: Relative difference above which a re-fetched overlap bar counts as revised by the source.
REVISION_RTOL = 1e-6
DEFAULT_OVERLAP_BARS = 5
DEFAULT_LOCK_TIMEOUT_S = 600.0
_YEARS_OF_DAILY_HISTORY = 99  # yfinance's own default start for daily data


@dataclass(frozen=True)
class UpdateReport:
    """What one cache update did."""

    symbol: str
    interval: str
    path: Path
    requests: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    bars_added: int = 0
    bars_total: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    revised: str | None = None
    repairs: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line for people: what was fetched and what the cache holds now."""
        if not self.requests:
            did = "up to date, nothing fetched"
        else:
            did = f"{len(self.requests)} request(s), {self.bars_added:+,} bars"
            if self.revised:
                did += f"; re-fetched the whole series because {self.revised}"
        span = f"{_day(self.first)}..{_day(self.last)}" if self.first is not None else "empty"
        return f"{self.symbol} {self.interval}: {did}; cache {span}, {self.bars_total:,} bars"


def normalise_symbol(symbol: str) -> str:
    """Upper-case and strip a ticker; refuse empty or path-like names."""
    cleaned = str(symbol).strip().upper()
    if not cleaned or not re.fullmatch(r"[A-Z0-9^=._\-/]+", cleaned) or ".." in cleaned:
        raise ConfigError(
            f"symbol must be a ticker like SPY, ^GSPC, BRK-B or EURUSD=X, got {symbol!r}"
        )
    return cleaned


class DataCache:
    """The cache folder (default: `ivybt._paths.cache_dir()`)."""

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        overlap_bars: int = DEFAULT_OVERLAP_BARS,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        self.root = cache_dir(root)
        self.overlap_bars = max(1, int(overlap_bars))
        self.lock_timeout_s = lock_timeout_s

    def path(self, symbol: str, interval: str | Interval) -> Path:
        """The file of one series: `{SYMBOL}_{interval}.parquet` ('/' becomes '_')."""
        iv = parse_interval(interval)
        return self.root / f"{normalise_symbol(symbol).replace('/', '_')}_{iv.name}.parquet"

    def files(self) -> list[Path]:
        """Every series file in the cache, sorted by name."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.parquet") if not p.name.startswith("."))

    def read(
        self, symbol: str, interval: str | Interval
    ) -> tuple[pd.DataFrame, SeriesMeta | None] | None:
        """The cached frame and its metadata, validated; None if the series is not cached."""
        path = self.path(symbol, interval)
        if not path.exists():
            return None
        frame, meta = read_series(path)
        iv = parse_interval(interval)
        checked = validate_ohlcv(frame, name=f"{path} ({symbol} {iv.name})", interval=iv)
        return checked.frame, meta

    def update(
        self,
        symbol: str,
        interval: str | Interval,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        *,
        fetcher: Fetcher | None = None,
        now: pd.Timestamp | None = None,
        repair: bool = False,
    ) -> UpdateReport:
        """Make the cache hold every complete bar of [start, end) that the source has.

        `start`/`end` are on the interval's timeline (naive dates, or UTC for intraday);
        None means as far back as the source goes / up to the last complete bar.
        `fetcher` defaults to Yahoo (`ivybt.data.yahoo.fetch_yahoo`).
        """
        symbol = normalise_symbol(symbol)
        iv = parse_interval(interval)
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        cutoff = iv.complete_before(now)
        start = _default_start(iv, now) if start is None else start
        end = cutoff if end is None else min(end, cutoff)
        if fetcher is None:

            def fetcher(s: str, i: Interval, a: pd.Timestamp, b: pd.Timestamp) -> FetchResult:
                return fetch_yahoo(s, i, a, b, repair=repair)

        path = self.path(symbol, iv)
        cached = self.read(symbol, iv)
        if cached is not None and self._covers(cached[1], start, end, path):
            return self._report(symbol, iv, path, cached[0], ())
        if start >= end:
            frame = cached[0] if cached is not None else _empty_frame(iv)
            return self._report(symbol, iv, path, frame, ())
        with self._lock(path):
            remove_stale_temp_files(path)
            cached = self.read(symbol, iv)  # another process may have written meanwhile
            if cached is not None and self._covers(cached[1], start, end, path):
                return self._report(symbol, iv, path, cached[0], ())
            if cached is None:
                return self._first_fetch(symbol, iv, path, start, end, now, fetcher)
            return self._extend(symbol, iv, path, cached, start, end, now, fetcher)

    def store_import(
        self,
        symbol: str,
        interval: str | Interval,
        frame: pd.DataFrame,
        *,
        origin: str,
        price_basis: str,
        replace: bool = False,
        now: pd.Timestamp | None = None,
    ) -> UpdateReport:
        """Merge an imported, validated frame into the cache (imported bars win).

        A series fetched from Yahoo is not mixed with a vendor file unless `replace=True`,
        which discards the cached series first.
        """
        symbol = normalise_symbol(symbol)
        iv = parse_interval(interval)
        path = self.path(symbol, iv)
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        with self._lock(path):
            remove_stale_temp_files(path)
            cached = None if replace else self.read(symbol, iv)
            if cached is not None and (cached[1] is None or cached[1].source != "import"):
                source = cached[1].source if cached[1] else "unknown"
                raise DataError(
                    f"{path} holds {symbol} {iv.name} from {source}; mixing vendors in one "
                    "series is refused; pass --replace to discard it, or use another "
                    "--cache-dir"
                )
            old = cached[0] if cached is not None else _empty_frame(iv)
            merged = _merge(old, frame)
            meta = (
                cached[1]
                if cached is not None and cached[1] is not None
                else SeriesMeta(
                    symbol=symbol, interval=iv.name, source="import", price_basis=price_basis
                )
            )
            first, last = merged.index[0], merged.index[-1] + iv.step
            coverage = meta.coverage()
            if coverage is not None:
                first, last = min(first, coverage[0]), max(last, coverage[1])
            event = {"at": _iso(now), "action": "import", "origin": origin, "bars": len(frame)}
            meta = meta.with_event(
                event,
                price_basis=price_basis,
                covered_start=_iso(first),
                covered_end=_iso(last),
                updated_at=_iso(now),
            )
            write_series(path, merged, meta)
            added = len(merged) - len(old)
            return self._report(symbol, iv, path, merged, (), bars_added=added)

    # -- internals ------------------------------------------------------------------------

    def _covers(
        self, meta: SeriesMeta | None, start: pd.Timestamp, end: pd.Timestamp, path: Path
    ) -> bool:
        if meta is None:
            raise DataError(
                f"{path} has no IvyBT provenance metadata; delete it and fetch or import again"
            )
        if meta.source == "import":
            return True  # imported series are never updated from the network
        coverage = meta.coverage()
        return coverage is not None and coverage[0] <= start and end <= coverage[1]

    def _first_fetch(
        self,
        symbol: str,
        iv: Interval,
        path: Path,
        start: pd.Timestamp,
        end: pd.Timestamp,
        now: pd.Timestamp,
        fetcher: Fetcher,
    ) -> UpdateReport:
        _check_yahoo_window(symbol, iv, start, now)
        fresh, tz, requests, repairs = _fetch_range(symbol, iv, start, end, fetcher)
        if fresh.empty:
            raise EmptyDataError(
                f"Yahoo returned no bars for {symbol} {iv.name} in [{_day(start)}, {_day(end)}); "
                "check the symbol's Yahoo spelling and the range; nothing was cached"
            )
        meta = SeriesMeta(
            symbol=symbol,
            interval=iv.name,
            source="yahoo",
            price_basis=YAHOO_PRICE_BASIS,
            exchange_tz=tz,
        )
        meta = meta.with_event(
            {
                "at": _iso(now),
                "action": "fetch",
                "start": _iso(start),
                "end": _iso(end),
                "bars": len(fresh),
                "ivybt": __version__,
            },
            covered_start=_iso(start),
            covered_end=_iso(end),
            updated_at=_iso(now),
        )
        write_series(path, fresh, meta)
        return self._report(
            symbol, iv, path, fresh, requests, bars_added=len(fresh), repairs=repairs
        )

    def _extend(
        self,
        symbol: str,
        iv: Interval,
        path: Path,
        cached: tuple[pd.DataFrame, SeriesMeta | None],
        start: pd.Timestamp,
        end: pd.Timestamp,
        now: pd.Timestamp,
        fetcher: Fetcher,
    ) -> UpdateReport:
        frame, meta = cached
        assert meta is not None  # _covers raised otherwise
        if meta.source != "yahoo":
            raise DataError(
                f"{path} holds {symbol} {iv.name} from {meta.source}, not Yahoo; use "
                "--source cache to read it, or delete it to fetch from Yahoo"
            )
        coverage = meta.coverage()
        assert coverage is not None
        covered_start, covered_end = coverage
        plan: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        if start < covered_start:
            plan.append((start, covered_start))
        overlap_from = covered_end
        if end > covered_end:
            if len(frame):
                overlap_from = max(frame.index[-min(self.overlap_bars, len(frame))], covered_start)
            plan.append((overlap_from, end))
        for lo, _ in plan:
            _check_yahoo_window(symbol, iv, lo, now)
        pieces, requests, repairs, tz = [frame], [], [], meta.exchange_tz
        revised = None
        for lo, hi in plan:
            fresh, fresh_tz, done, fixed = _fetch_range(symbol, iv, lo, hi, fetcher)
            requests += done
            repairs += fixed
            tz = fresh_tz or tz
            if lo == overlap_from and overlap_from < covered_end:
                revised = _revision(frame, fresh, overlap_from, covered_end)
            pieces.append(fresh)
        new_start, new_end = min(start, covered_start), max(end, covered_end)
        if revised is None:
            merged = _merge(*pieces)
        else:
            warnings.warn(
                f"{symbol} {iv.name}: Yahoo revised cached history ({revised}); "
                "re-fetching the whole series",
                HistoryRevisedWarning,
                stacklevel=3,
            )
            merged, done, fixed = self._refetch_all(
                symbol, iv, frame, new_start, new_end, now, fetcher
            )
            requests += done
            repairs += fixed
        merged = validate_ohlcv(merged, name=f"{symbol} {iv.name}", interval=iv).frame
        event = {
            "at": _iso(now),
            "action": "refetch" if revised else "fetch",
            "start": _iso(start),
            "end": _iso(end),
            "requests": len(requests),
            "bars": len(merged) - len(frame),
            "ivybt": __version__,
        }
        if revised:
            event["revised"] = revised
        meta = meta.with_event(
            event,
            covered_start=_iso(new_start),
            covered_end=_iso(new_end),
            updated_at=_iso(now),
            exchange_tz=tz,
        )
        write_series(path, merged, meta)
        return self._report(
            symbol,
            iv,
            path,
            merged,
            tuple(requests),
            bars_added=len(merged) - len(frame),
            revised=revised,
            repairs=tuple(repairs),
        )

    def _refetch_all(
        self,
        symbol: str,
        iv: Interval,
        old: pd.DataFrame,
        start: pd.Timestamp,
        end: pd.Timestamp,
        now: pd.Timestamp,
        fetcher: Fetcher,
    ) -> tuple[pd.DataFrame, list[tuple[pd.Timestamp, pd.Timestamp]], list[str]]:
        earliest = iv.earliest_available(now)
        if earliest is not None and start < earliest:
            start = earliest.ceil("D")  # keep older cached bars Yahoo no longer serves
        fresh, _, requests, repairs = _fetch_range(symbol, iv, start, end, fetcher)
        kept_old = old.loc[old.index < start]
        return _merge(kept_old, fresh), requests, repairs

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """Hold the series' cross-process file lock (fcntl: released if the holder dies)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(path.with_name(f".{path.name}.lock")))
        try:
            lock.acquire(timeout=self.lock_timeout_s)
        except filelock.Timeout as err:
            raise DataError(
                f"{path} stayed locked by another process for {self.lock_timeout_s:.0f} s; "
                "wait for it to finish, or check no ivybt process is stuck"
            ) from err
        try:
            yield
        finally:
            lock.release()

    @staticmethod
    def _report(
        symbol: str,
        iv: Interval,
        path: Path,
        frame: pd.DataFrame,
        requests: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] | list,
        *,
        bars_added: int = 0,
        revised: str | None = None,
        repairs: tuple[str, ...] | list[str] = (),
    ) -> UpdateReport:
        return UpdateReport(
            symbol=symbol,
            interval=iv.name,
            path=path,
            requests=tuple(requests),
            bars_added=bars_added,
            bars_total=len(frame),
            first=frame.index[0] if len(frame) else None,
            last=frame.index[-1] if len(frame) else None,
            revised=revised,
            repairs=tuple(repairs),
        )


def _fetch_range(
    symbol: str, iv: Interval, start: pd.Timestamp, end: pd.Timestamp, fetcher: Fetcher
) -> tuple[pd.DataFrame, str | None, list[tuple[pd.Timestamp, pd.Timestamp]], list[str]]:
    """Fetch [start, end) in spans Yahoo accepts; empty spans give no bars, not an error."""
    frames, requests, repairs, tz = [], [], [], None
    for lo, hi in _spans(iv, start, end):
        requests.append((lo, hi))
        try:
            result = fetcher(symbol, iv, lo, hi)
        except EmptyDataError:
            logger.info("%s %s: no bars in [%s, %s)", symbol, iv.name, lo, hi)
            continue
        frames.append(result.frame.loc[(result.frame.index >= lo) & (result.frame.index < hi)])
        repairs += result.repairs
        tz = result.exchange_tz or tz
    merged = _merge(*frames) if frames else _empty_frame(iv)
    return merged, tz, requests, repairs


def _spans(
    iv: Interval, start: pd.Timestamp, end: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if iv.yahoo_max_span is None:
        return [(start, end)]
    spans, lo = [], start
    while lo < end:
        hi = min(lo + iv.yahoo_max_span, end)
        spans.append((lo, hi))
        lo = hi
    return spans


def _check_yahoo_window(symbol: str, iv: Interval, start: pd.Timestamp, now: pd.Timestamp) -> None:
    earliest = iv.earliest_available(now)
    if earliest is not None and start < earliest:
        days = iv.yahoo_lookback.days if iv.yahoo_lookback is not None else 0
        raise DataError(
            f"Yahoo serves {iv.name} bars only for the last {days} days (since "
            f"{earliest:%Y-%m-%d %H:%M} UTC), but {symbol} was requested from "
            f"{start:%Y-%m-%d %H:%M}; start later, use a coarser --interval (1h goes back "
            "730 days), or import older bars with `ivybt data import`"
        )


def _revision(
    cached: pd.DataFrame, fresh: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp
) -> str | None:
    """Describe how `fresh` differs from `cached` on [lo, hi), or None when it does not."""
    old = cached.loc[(cached.index >= lo) & (cached.index < hi)]
    new = fresh.loc[(fresh.index >= lo) & (fresh.index < hi)]
    added = new.index.difference(old.index)
    if len(added):
        return f"{len(added)} bar(s) appeared inside the cached range, first {_day(added[0])}"
    dropped = old.index.difference(new.index)
    if len(dropped) and len(new):
        return f"{len(dropped)} cached bar(s) vanished, first {_day(dropped[0])}"
    common = old.index.intersection(new.index)
    columns = [c for c in (*OHLC_COLUMNS, "adj_close") if c in old and c in new]
    for column in columns:
        a = old.loc[common, column].to_numpy()
        b = new.loc[common, column].to_numpy()
        differs = ~np.isclose(a, b, rtol=REVISION_RTOL, atol=0.0)
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            return f"{column} on {_day(common[i])} changed from {a[i]:.6g} to {b[i]:.6g}"
    return None


def _merge(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate, keep the last (newest) bar per timestamp, sort."""
    frames = tuple(f for f in frames if len(f))
    if not frames:
        raise ValueError("nothing to merge")
    merged = pd.concat(frames) if len(frames) > 1 else frames[0]
    merged = merged.loc[~merged.index.duplicated(keep="last")].sort_index(kind="stable")
    partial = [c for c in merged.columns if merged[c].isna().any()]
    if partial:
        logger.warning("dropping column(s) %s: not every merged bar has them", partial)
    return merged.drop(columns=partial)  # adj_close only when every bar has it


def _empty_frame(iv: Interval) -> pd.DataFrame:
    index = pd.DatetimeIndex(
        [], dtype="datetime64[ns, UTC]" if iv.intraday else "datetime64[ns]", name="date"
    )
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in (*OHLC_COLUMNS, "volume")}, index=index
    )


def _default_start(iv: Interval, now: pd.Timestamp) -> pd.Timestamp:
    earliest = iv.earliest_available(now)
    if earliest is not None:
        return (earliest + pd.Timedelta(days=1)).floor("D")
    today = pd.Timestamp(now).tz_convert("UTC").tz_localize(None).normalize()
    return today - pd.DateOffset(years=_YEARS_OF_DAILY_HISTORY)


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).isoformat()


def _day(stamp: pd.Timestamp | None) -> str:
    if stamp is None:
        return "-"
    stamp = pd.Timestamp(stamp)
    if stamp.tzinfo is None and stamp == stamp.normalize():
        return f"{stamp:%Y-%m-%d}"
    return f"{stamp:%Y-%m-%d %H:%M}"


def fetch(
    symbols: str | Sequence[str],
    interval: str = "1d",
    start: object = None,
    end: object = None,
    *,
    cache_dir: str | Path | None = None,
    repair: bool = False,
) -> list[UpdateReport]:
    """Bring the cache up to date for each symbol over [start, end): `ivybt data fetch`.

    Fetches only what is missing (see the module docstring); raises at the first symbol that
    fails, after the ones before it were cached.

    Examples
    --------
    >>> ivybt.data.fetch(["SPY", "QQQ"], "1d", "2010-01-01")  # doctest: +SKIP
    """
    iv = parse_interval(interval)
    lo, hi = to_bound(start, iv, name="start"), to_bound(end, iv, name="end")
    if lo is not None and hi is not None and lo >= hi:
        raise ConfigError(f"start must be before end, got start={start} and end={end}")
    cache = DataCache(cache_dir)
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    return [cache.update(symbol, iv, lo, hi, repair=repair) for symbol in names]
