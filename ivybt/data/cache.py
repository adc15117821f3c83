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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_field
from pathlib import Path

import pandas as pd

from ivybt import __version__
from ivybt._paths import cache_dir
from ivybt.data._update_steps import (
    Fetcher,
    check_yahoo_window,
    default_start,
    describe_revision,
    empty_frame,
    fetch_range,
    iso,
    merge_bars,
)
from ivybt.data.intervals import Interval, day_label, parse_interval, to_range
from ivybt.data.store import (
    SeriesMeta,
    read_index_summary,
    read_meta,
    read_series,
    remove_stale_temp_files,
    write_series,
)
from ivybt.data.validate import check_max_jump, validate_ohlcv
from ivybt.data.yahoo import YAHOO_PRICE_BASIS, FetchResult, fetch_yahoo
from ivybt.errors import ConfigError, DataError, EmptyDataError, HistoryRevisedWarning

logger = logging.getLogger(__name__)

#: Relative difference above which a re-fetched overlap bar counts as revised by the source.
DEFAULT_OVERLAP_BARS = 5
DEFAULT_LOCK_TIMEOUT_S = 600.0


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
    imported: int | None = None  # bars read from a vendor file (None: a fetch)

    def summary(self) -> str:
        """One line for people: what was fetched or imported and what the cache holds now."""
        if self.imported is not None:
            replaced = self.imported - self.bars_added
            did = f"imported {self.imported:,} bars ({self.bars_added:,} new"
            did += f", {replaced:,} replaced)" if replaced else ")"
        elif not self.requests:
            did = "up to date, nothing fetched"
        else:
            did = f"{len(self.requests)} request(s), {self.bars_added:+,} bars"
            if self.revised:
                did += f"; re-fetched the whole series because {self.revised}"
        span = (
            f"{day_label(self.first)}..{day_label(self.last)}"
            if self.first is not None
            else "empty"
        )
        return f"{self.symbol} {self.interval}: {did}; cache {span}, {self.bars_total:,} bars"


#: A ticker: an optional leading ^ (indices), then letters and digits, joined by single
#: '.', '-', '=' or '_' (BRK.B, BRK-B, BTC-USD, EURUSD=X, ES=F, 0700.HK); at most 32 characters.
TICKER = re.compile(r"\^?[A-Z0-9]+(?:[.\-=_][A-Z0-9]+)*")
_TICKER_MAX = 32


def normalise_symbol(symbol: str) -> str:
    """Upper-case and strip a ticker; refuse anything that is not one (`TICKER`).

    The symbol names a cache file (`{SYMBOL}_{interval}.parquet`), so names that are empty,
    start with a dot or a dash, hold a path separator ('/', '\\'), spaces or other characters
    are a `ConfigError`. Pairs are written without a slash: EURUSD=X, BTC-USD.
    """
    cleaned = str(symbol).strip().upper()
    if len(cleaned) > _TICKER_MAX or not TICKER.fullmatch(cleaned):
        pair = (
            "; write a pair without '/', e.g. EURUSD=X or BTC-USD"
            if re.fullmatch(r"[A-Z0-9]+/[A-Z0-9]+", cleaned)
            else ""
        )
        raise ConfigError(
            f"symbol must be a ticker like SPY, ^GSPC, BRK-B, BRK.B or EURUSD=X (letters and "
            f"digits joined by single '.', '-', '=' or '_', an optional leading '^', at most "
            f"{_TICKER_MAX} characters), got {symbol!r}{pair}"
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
        """The file of one series: `{SYMBOL}_{interval}.parquet`."""
        iv = parse_interval(interval)
        return self.root / f"{normalise_symbol(symbol)}_{iv.name}.parquet"

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
        checked = validate_ohlcv(
            frame,
            name=f"{path} ({symbol} {iv.name})",
            interval=iv,
            max_jump=meta.max_jump if meta is not None else None,
        )
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
        max_jump: float | None = None,
    ) -> UpdateReport:
        """Make the cache hold every complete bar of [start, end) that the source has.

        `start`/`end` are on the interval's timeline (naive dates, or UTC for intraday);
        None means as far back as the source goes / up to the last complete bar.
        `fetcher` defaults to Yahoo (`ivybt.data.yahoo.fetch_yahoo`). `max_jump` (rule 9 of
        `ivybt.data.validate`): None keeps the series' stored factor (default `MAX_JUMP`); a
        value given is used and stored with the series once something is fetched.
        """
        symbol = normalise_symbol(symbol)
        iv = parse_interval(interval)
        check_max_jump(max_jump)
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        cutoff = iv.complete_before(now)
        start = default_start(iv, now) if start is None else start
        end = cutoff if end is None else min(end, cutoff)
        path = self.path(symbol, iv)
        if path.exists() and self._covers(read_meta(path), start, end, path):
            return self._report_file(symbol, iv, path)  # metadata only: no data pages read
        if start >= end:
            return self._report_file(symbol, iv, path)
        with self._lock(path):
            remove_stale_temp_files(path)
            stored = read_meta(path) if path.exists() else None
            if max_jump is None and stored is not None:
                max_jump = stored.max_jump
            cached = self.read(symbol, iv)  # another process may have written meanwhile
            if cached is not None and self._covers(cached[1], start, end, path):
                return self._report(symbol, iv, path, cached[0], ())
            if fetcher is None:
                fetcher = _yahoo_fetcher(repair, max_jump)
            if cached is None:
                return self._first_fetch(symbol, iv, path, start, end, now, fetcher, max_jump)
            return self._extend(symbol, iv, path, cached, start, end, now, fetcher, max_jump)

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
        max_jump: float | None = None,
    ) -> UpdateReport:
        """Merge an imported, validated frame into the cache (imported bars win).

        A series fetched from Yahoo is not mixed with a vendor file unless `replace=True`,
        which discards the cached series first. The merged series is validated again (a jump
        where old and new bars meet); `max_jump` as in `update`.
        """
        symbol = normalise_symbol(symbol)
        iv = parse_interval(interval)
        check_max_jump(max_jump)
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
            old = cached[0] if cached is not None else empty_frame(iv)
            meta = (
                cached[1]
                if cached is not None and cached[1] is not None
                else SeriesMeta(
                    symbol=symbol, interval=iv.name, source="import", price_basis=price_basis
                )
            )
            max_jump = meta.max_jump if max_jump is None else max_jump
            merged = validate_ohlcv(
                merge_bars(old, frame), name=f"{symbol} {iv.name}", interval=iv, max_jump=max_jump
            ).frame
            first, last = merged.index[0], merged.index[-1] + iv.step
            coverage = meta.coverage()
            if coverage is not None:
                first, last = min(first, coverage[0]), max(last, coverage[1])
            event = {"at": iso(now), "action": "import", "origin": origin, "bars": len(frame)}
            meta = meta.with_event(
                event,
                price_basis=price_basis,
                covered_start=iso(first),
                covered_end=iso(last),
                updated_at=iso(now),
                max_jump=max_jump,
            )
            write_series(path, merged, meta)
            added = len(merged) - len(old)
            report = self._report(symbol, iv, path, merged, (), bars_added=added)
            return replace_field(report, imported=len(frame))

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
        max_jump: float | None,
    ) -> UpdateReport:
        check_yahoo_window(symbol, iv, start, now)
        fresh, tz, requests, repairs = fetch_range(symbol, iv, start, end, fetcher)
        if fresh.empty:
            raise EmptyDataError(
                f"Yahoo returned no bars for {symbol} {iv.name} in "
                f"[{day_label(start)}, {day_label(end)}); check the symbol's Yahoo spelling "
                "and the range; nothing was cached"
            )
        fresh = validate_ohlcv(
            fresh, name=f"{symbol} {iv.name}", interval=iv, max_jump=max_jump
        ).frame  # the pieces were validated one by one; this checks where they meet
        meta = SeriesMeta(
            symbol=symbol,
            interval=iv.name,
            source="yahoo",
            price_basis=YAHOO_PRICE_BASIS,
            exchange_tz=tz,
            max_jump=max_jump,
        )
        meta = meta.with_event(
            {
                "at": iso(now),
                "action": "fetch",
                "start": iso(start),
                "end": iso(end),
                "bars": len(fresh),
                "ivybt": __version__,
            },
            covered_start=iso(start),
            covered_end=iso(end),
            updated_at=iso(now),
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
        max_jump: float | None,
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
            check_yahoo_window(symbol, iv, lo, now)
        pieces, requests, repairs, tz = [frame], [], [], meta.exchange_tz
        revised = None
        for lo, hi in plan:
            fresh, fresh_tz, done, fixed = fetch_range(symbol, iv, lo, hi, fetcher)
            requests += done
            repairs += fixed
            tz = fresh_tz or tz
            if lo == overlap_from and overlap_from < covered_end:
                revised = describe_revision(frame, fresh, overlap_from, covered_end)
            pieces.append(fresh)
        new_start, new_end = min(start, covered_start), max(end, covered_end)
        if revised is None:
            merged = merge_bars(*pieces)
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
        merged = validate_ohlcv(
            merged, name=f"{symbol} {iv.name}", interval=iv, max_jump=max_jump
        ).frame
        event = {
            "at": iso(now),
            "action": "refetch" if revised else "fetch",
            "start": iso(start),
            "end": iso(end),
            "requests": len(requests),
            "bars": len(merged) - len(frame),
            "ivybt": __version__,
        }
        if revised:
            event["revised"] = revised
        meta = meta.with_event(
            event,
            covered_start=iso(new_start),
            covered_end=iso(new_end),
            updated_at=iso(now),
            exchange_tz=tz,
            max_jump=max_jump,
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
        fresh, _, requests, repairs = fetch_range(symbol, iv, start, end, fetcher)
        kept_old = old.loc[old.index < start]
        return merge_bars(kept_old, fresh), requests, repairs

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """Hold the series' cross-process file lock (fcntl: released if the holder dies)."""
        import filelock  # here, not at the top: runs on bars already cached never lock

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
    def _report_file(symbol: str, iv: Interval, path: Path) -> UpdateReport:
        """A report for an update that fetched nothing, from the file's index alone."""
        rows, first, last = read_index_summary(path) if path.exists() else (0, None, None)
        return UpdateReport(
            symbol=symbol, interval=iv.name, path=path, bars_total=rows, first=first, last=last
        )

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


def _yahoo_fetcher(repair: bool, max_jump: float | None) -> Fetcher:
    def fetcher(s: str, i: Interval, a: pd.Timestamp, b: pd.Timestamp) -> FetchResult:
        return fetch_yahoo(s, i, a, b, repair=repair, max_jump=max_jump)

    return fetcher


def fetch(
    symbols: str | Sequence[str],
    interval: str = "1d",
    start: object = None,
    end: object = None,
    *,
    cache_dir: str | Path | None = None,
    repair: bool = False,
    max_jump: float | None = None,
) -> list[UpdateReport]:
    """Bring the cache up to date for each symbol over [start, end): `ivybt data fetch`.

    Fetches only what is missing (see the module docstring); raises at the first symbol that
    fails, after the ones before it were cached. `max_jump`: see `DataCache.update`.

    Examples
    --------
    >>> ivybt.data.fetch(["SPY", "QQQ"], "1d", "2010-01-01")  # doctest: +SKIP
    """
    iv = parse_interval(interval)
    lo, hi = to_range(start, end, iv)
    cache = DataCache(cache_dir)
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    return [cache.update(symbol, iv, lo, hi, repair=repair, max_jump=max_jump) for symbol in names]
