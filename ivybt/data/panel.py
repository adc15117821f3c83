"""Panels: the bars of several symbols aligned on one timeline (bars x symbols), the data of a
portfolio.

Conventions (also in the docstrings of `Panel`):

- **Alignment.** The panel's index is the sorted union of the timestamps at which *some* symbol
  has a bar. Row t, column j holds symbol j's bar stamped index[t], or NaN in every field when
  symbol j has no bar there. A timestamp where no symbol has a bar is not a row.
- **NaN means no bar**, never a bad price: every bar placed in the panel passed
  `ivybt.data.validate` (or came validated from `ivybt.data.loader`), so where `close` is
  finite, all five fields are.
- **Listing.** Symbol j is *listed* from its first bar to its last one (`first[j]`..`last[j]`,
  inclusive). Inside the listing, a row without a bar is a missing bar (a halt, a holiday of its
  exchange, a vendor gap): the symbol does not trade there and a held position is valued at the
  last close (`Panel.mark`). Outside its listing a symbol is not listed: no orders, weight 0.
- **Missing rows in frames.** For `panel_from_frames`, a row whose open, high, low and close are
  *all* NaN is a missing bar: it is dropped before validation and counted in the symbol's record
  as `missing_rows`. A row with some but not all prices NaN is invalid data, refused as for one
  symbol.
- **One interval, one kind of timestamp.** A universe mixing intervals (SPY 1d with EURUSD 1h) or
  tz-naive session dates with tz-aware times is refused. Tz-aware frames in different zones are
  converted to UTC (the canonical zone of intraday bars).
- **Prices traded.** The panel holds open, high, low, close and volume. Loading applies the
  adjusted/raw choice (`adjusted=`) first, as for one symbol; a raw view's `adj_close` is not
  kept in the panel (the records' hashes still cover it).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ivybt._typing import Float64Array1D, Float64Array2D, Int64Array1D
from ivybt.data.cache import normalise_symbol
from ivybt.data.intervals import Interval, day_label, parse_interval, to_range
from ivybt.data.loader import Source, load_series
from ivybt.data.store import data_sha256
from ivybt.data.timestamps import TIME_COLUMN, time_column
from ivybt.data.universe import as_symbols, unique_symbols
from ivybt.data.validate import INDEX_NAME, OHLC_COLUMNS, check_max_jump, validate_ohlcv
from ivybt.errors import ConfigError, DataError, DataRangeWarning

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_RANGE_SLACK = pd.Timedelta(days=7)  # as the single-symbol loader: a bound this far out warns
_DESCRIBE_NAMES = 5  # symbols named by `Panel.describe` before "..."
_MIN_VOTING_BARS = 5  # a frame this long shows its interval (as `ivybt.data.importer` checks)


@dataclass(frozen=True, eq=False, repr=False)
class Panel:
    """Bars of several symbols aligned on the union of their timestamps (bars x symbols).

    Attributes
    ----------
    symbols : normalised tickers, in the order given; column j of every array is symbols[j].
    interval : the canonical interval name ("1d", "1h", ...), one for every symbol.
    index : the union of every symbol's bar timestamps, sorted and unique, named "date".
    open, high, low, close, volume : float64 (n_bars, n_symbols), C-contiguous; NaN = the
        symbol has no bar at that timestamp (all five fields NaN together).
    first, last : int64 (n_symbols,): the row of each symbol's first and last bar; -1 for both
        when the symbol has no bar in the panel (possible only in a `window`).
    records : per symbol, the manifest record of its series (`LoadedSeries.record()` for loaded
        data; for frames: symbol, interval, source "frame", rows, first, last, sha256,
        missing_rows). They describe the data loaded, also in a `window`.

    The arrays are shared, not copied, by `window`; treat them as read-only.
    """

    symbols: tuple[str, ...]
    interval: str
    index: pd.DatetimeIndex
    open: Float64Array2D
    high: Float64Array2D
    low: Float64Array2D
    close: Float64Array2D
    volume: Float64Array2D
    first: Int64Array1D
    last: Int64Array1D
    records: tuple[dict[str, Any], ...]

    def __post_init__(self) -> None:
        shape = (len(self.index), len(self.symbols))
        for name in FIELDS:
            values = getattr(self, name)
            if values.shape != shape or values.dtype != np.float64:
                raise ValueError(
                    f"Panel.{name} must be float64 {shape}, got {values.dtype} {values.shape}"
                )
            if not values.flags.c_contiguous:
                raise ValueError(f"Panel.{name} must be C-contiguous")
        for name in ("first", "last"):
            values = getattr(self, name)
            if values.shape != (shape[1],) or values.dtype != np.int64:
                raise ValueError(f"Panel.{name} must be int64 ({shape[1]},)")
        if len(self.records) != shape[1]:
            raise ValueError(
                f"Panel.records must hold {shape[1]} records, got {len(self.records)}"
            )

    # -- shape -----------------------------------------------------------------------------

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    # -- bars and listing ------------------------------------------------------------------

    @property
    def has_bar(self) -> np.ndarray:
        """bool (n_bars, n_symbols): the symbol has a bar (a finite close) at that row."""
        return np.isfinite(self.close)

    @property
    def listed(self) -> np.ndarray:
        """bool (n_bars, n_symbols): first <= row <= last, the symbol's listing."""
        rows = np.arange(self.n_bars, dtype=np.int64)[:, None]
        return (rows >= self.first[None, :]) & (rows <= self.last[None, :])

    @property
    def mark(self) -> Float64Array2D:
        """float64 (n_bars, n_symbols): the close, carried forward over missing bars inside the
        listing; NaN outside it. The price a held position is valued at when its symbol has no
        bar."""
        rows = np.arange(self.n_bars, dtype=np.int64)[:, None]
        seen = np.where(self.has_bar, rows, -1)
        np.maximum.accumulate(seen, axis=0, out=seen)
        marked = np.take_along_axis(self.close, np.maximum(seen, 0), axis=0)
        marked[(seen < 0) | ~self.listed] = np.nan
        return np.ascontiguousarray(marked)

    def column(self, symbol: str | int) -> int:
        """The column of `symbol` (a ticker, normalised, or a column number)."""
        if isinstance(symbol, int | np.integer):
            if not 0 <= int(symbol) < self.n_symbols:
                raise ConfigError(
                    f"column {symbol} is outside the panel's {self.n_symbols} symbols"
                )
            return int(symbol)
        name = normalise_symbol(symbol)
        if name not in self.symbols:
            raise ConfigError(f"{name} is not in the panel ({', '.join(self.symbols)})")
        return self.symbols.index(name)

    def bars_of(self, symbol: str | int) -> Int64Array1D:
        """int64: the rows where `symbol` has a bar, ascending."""
        return np.flatnonzero(np.isfinite(self.close[:, self.column(symbol)])).astype(np.int64)

    def columns(self, symbol: str | int) -> dict[str, Float64Array1D]:
        """The symbol's own bars as C-contiguous float64 arrays (copies) "open", "high", "low",
        "close", "volume", and their timestamps "time" (int64 ns): what `bar_columns` gives
        for `frame(symbol)`."""
        j = self.column(symbol)
        rows = self.bars_of(j)
        columns = {name: np.ascontiguousarray(getattr(self, name)[rows, j]) for name in FIELDS}
        stamps = time_column(self.index[rows])
        if stamps is not None:
            columns[TIME_COLUMN] = stamps
        return columns

    def frame(self, symbol: str | int) -> pd.DataFrame:
        """The symbol's own bars as the usual validated OHLCV frame (no NaN rows), its record in
        ``attrs["ivybt"]``, as `ivybt.load` returns it."""
        j = self.column(symbol)
        rows = self.bars_of(j)
        out = pd.DataFrame(
            {name: getattr(self, name)[rows, j] for name in FIELDS},
            index=self.index[rows].rename(INDEX_NAME),
        )
        out.attrs["ivybt"] = dict(self.records[j])
        return out

    # -- identity and views ----------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """One hash of the panel's data: SHA-256 over each symbol's name and data hash (its
        record's sha256), in column order. Like the records, it names the data loaded, also
        for a `window`."""
        digest = hashlib.sha256()
        for symbol, record in zip(self.symbols, self.records, strict=True):
            digest.update(f"{symbol}\0{record['sha256']}\n".encode())
        return digest.hexdigest()

    def window(self, lo: int, hi: int) -> Panel:
        """The panel restricted to rows [lo, hi), sharing this panel's arrays.

        Every symbol stays a column, so the symbol axis is the same in every window (a
        walk-forward fold, a train/test split). Listing bounds are recomputed from the bars
        inside the window: a symbol's first and last bar there; -1 for both when it has none
        (never listed in the window, e.g. IBM after 2013). A symbol halted across `lo` is listed
        from its first bar inside the window, since the window holds no earlier close to value
        it at. Records (and `sha256`) are kept: they name the data loaded.
        """
        if not (isinstance(lo, int | np.integer) and isinstance(hi, int | np.integer)):
            raise ConfigError(f"window bounds must be integers, got {lo!r} and {hi!r}")
        if not 0 <= lo < hi <= self.n_bars:
            raise ConfigError(
                f"a window needs 0 <= lo < hi <= {self.n_bars} (the panel's bars), got "
                f"[{lo}, {hi})"
            )
        sliced = {name: getattr(self, name)[lo:hi] for name in FIELDS}
        first, last = _bounds(np.isfinite(sliced["close"]))
        return Panel(
            self.symbols,
            self.interval,
            self.index[lo:hi],
            **sliced,
            first=first,
            last=last,
            records=self.records,
        )

    def subset(self, columns: Sequence[int]) -> Panel:
        """The panel with only the symbols in `columns` (column numbers, kept in that order),
        on the same union rows: a row where none of them has a bar is all-NaN, a halt for
        the account (the rows stay so results line up with the whole universe's)."""
        picked = np.asarray(list(columns), dtype=np.int64)
        if picked.size and (picked.min() < 0 or picked.max() >= self.n_symbols):
            raise ConfigError(f"columns {list(columns)} are outside the panel's symbols")
        return Panel(
            tuple(self.symbols[j] for j in picked),
            self.interval,
            self.index,
            **{name: np.ascontiguousarray(getattr(self, name)[:, picked]) for name in FIELDS},
            first=np.ascontiguousarray(self.first[picked]),
            last=np.ascontiguousarray(self.last[picked]),
            records=tuple(self.records[j] for j in picked),
        )

    def describe(self) -> str:
        """'SPY, MSFT, AAPL, GOOG, IBM (5 symbols) 1990-01-02..2022-03-10', for messages."""
        names = list(self.symbols)
        if len(names) > _DESCRIBE_NAMES:
            names = [*names[: _DESCRIBE_NAMES - 1], "..."]
        count = f"{self.n_symbols} symbol{'s' if self.n_symbols != 1 else ''}"
        span = f" {day_label(self.index[0])}..{day_label(self.index[-1])}" if self.n_bars else ""
        return f"{', '.join(names)} ({count}){span}"

    def __repr__(self) -> str:
        return f"Panel({self.describe()}, {self.interval}, {self.n_bars} bars)"


def load_panel(
    symbols: str | Iterable[str],
    interval: str | Interval = "1d",
    start: object = None,
    end: object = None,
    *,
    source: Source = "auto",
    adjusted: bool | None = None,
    cache_dir: str | Path | None = None,
    max_jump: float | None = None,
) -> Panel:
    """Load every symbol of a universe for [start, end) and align them (`Panel`).

    Parameters
    ----------
    symbols : "SPY,MSFT,AAPL" or a list of tickers; normalised, each once, in this order.
    interval, start, end, source, adjusted, cache_dir : as for `ivybt.load`, applied to every
        symbol.
    max_jump : checked (a factor above 1) for one configuration model with the single-symbol
        path; it has no effect here, since loaded series were validated when fetched or
        imported, with the factor stored with the cached series.

    A symbol that cannot be loaded fails the whole panel with the loader's error, prefixed
    with the symbol ("MSFT: ..."). Symbols listed later or delisted earlier than the range are
    normal in a universe, so their range warnings are not shown; one `DataRangeWarning` is given
    when the whole panel falls short of [start, end).

    >>> panel = load_panel("SPY,IBM", start="2013-01-01", end="2014-01-01", source="sample")
    >>> panel.describe(), panel.index[panel.last[1]].date()
    ('SPY, IBM (2 symbols) 2013-01-02..2013-12-31', datetime.date(2013, 3, 1))
    """
    names = as_symbols(symbols)
    check_max_jump(max_jump)
    iv = parse_interval(interval)
    lo, hi = to_range(start, end, iv)
    frames: dict[str, pd.DataFrame] = {}
    records: dict[str, dict[str, Any]] = {}
    for symbol in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataRangeWarning)
                loaded = load_series(
                    symbol,
                    iv,
                    start,
                    end,
                    source=source,
                    adjusted=adjusted,
                    cache_dir=cache_dir,
                )
        except DataError as err:
            raise _prefixed(err, symbol) from err
        frames[symbol], records[symbol] = loaded.frame, loaded.record()
    panel = _assemble(frames, iv.name, records)
    _warn_if_short(panel, lo, hi)
    return panel


def panel_from_frames(
    frames: Mapping[str, pd.DataFrame],
    interval: str | Interval | None = None,
    *,
    records: Mapping[str, Mapping[str, Any]] | None = None,
    max_jump: float | None = None,
) -> Panel:
    """Align OHLCV frames keyed by symbol (`Panel`), validating each as `ivybt.backtest` does
    a DataFrame passed as data=.

    Parameters
    ----------
    frames : symbol -> OHLCV frame (columns open, high, low, close, volume, optionally
        adj_close; a DatetimeIndex). Keys are normalised; the mapping's order is the column
        order. Rows with all of open/high/low/close NaN are missing bars (see the module
        docstring).
    interval : the bars' interval; every index must then be of its kind (tz-naive session dates
        or UTC times). None: inferred from each frame's median spacing (`infer_interval`; frames
        of fewer than 5 bars do not count), and frames of different intervals are refused.
    records : symbol -> record to store instead of (over) the "frame" record built here, e.g.
        the provenance of data loaded elsewhere; keys it lacks come from the built record.
    max_jump : the price-jump factor of `ivybt.data.validate` (None: its default).
    """
    if not frames:
        raise ConfigError("a universe needs at least one symbol; got no frames")
    names = unique_symbols(frames, what="frames")
    given = {normalise_symbol(key): value for key, value in (records or {}).items()}
    raw = dict(zip(names, frames.values(), strict=True))
    _check_tz_kinds({s: f.index for s, f in raw.items() if isinstance(f, pd.DataFrame)})
    iv = None if interval is None else parse_interval(interval)
    checked: dict[str, pd.DataFrame] = {}
    missing: dict[str, int] = {}
    for symbol, frame in raw.items():
        checked[symbol], missing[symbol] = _validated(symbol, frame, iv, max_jump)
    checked = _common_zone(checked)
    name = iv.name if iv is not None else _common_interval(checked)
    built: dict[str, dict[str, Any]] = {}
    for symbol, frame in checked.items():
        record = _frame_record(symbol, name, frame, missing[symbol])
        built[symbol] = {**record, **dict(given.get(symbol, {}))}
    return _assemble(checked, name, built)


# -- construction --------------------------------------------------------------------------


def _assemble(
    frames: Mapping[str, pd.DataFrame], interval: str, records: Mapping[str, dict[str, Any]]
) -> Panel:
    """Place validated, non-empty frames (one zone) on the union of their timestamps."""
    stamps = {symbol: frame.index.as_unit("ns").asi8 for symbol, frame in frames.items()}
    union = np.unique(np.concatenate(list(stamps.values())))
    index = pd.DatetimeIndex(union.view("M8[ns]"), name=INDEX_NAME)
    zone = next(iter(frames.values())).index.tz
    if zone is not None:
        index = index.tz_localize("UTC").tz_convert(zone)
    shape = (len(union), len(frames))
    arrays = {name: np.full(shape, np.nan, dtype=np.float64) for name in FIELDS}
    first = np.empty(shape[1], dtype=np.int64)
    last = np.empty(shape[1], dtype=np.int64)
    for j, (symbol, frame) in enumerate(frames.items()):
        rows = np.searchsorted(union, stamps[symbol])
        for name in FIELDS:
            arrays[name][rows, j] = frame[name].to_numpy(dtype=np.float64)
        first[j], last[j] = rows[0], rows[-1]
    return Panel(
        tuple(frames),
        interval,
        index,
        **arrays,
        first=first,
        last=last,
        records=tuple(dict(records[symbol]) for symbol in frames),
    )


def _bounds(has_bar: np.ndarray) -> tuple[Int64Array1D, Int64Array1D]:
    """Per column, the first and last row with a bar; -1 for both in a column with none."""
    any_bar = has_bar.any(axis=0)
    n = has_bar.shape[0]
    first = np.where(any_bar, np.argmax(has_bar, axis=0), -1).astype(np.int64)
    last = np.where(any_bar, n - 1 - np.argmax(has_bar[::-1], axis=0), -1).astype(np.int64)
    return first, last


def _validated(
    symbol: str, frame: object, iv: Interval | None, max_jump: float | None
) -> tuple[pd.DataFrame, int]:
    """The frame without its missing-bar rows, validated; and how many rows were dropped."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"{symbol}: expected a pandas DataFrame, got {type(frame).__name__}")
    kept, dropped = _drop_missing_rows(frame)
    if len(kept) == 0:
        held = f"all {len(frame)} rows have NaN prices" if len(frame) else "the frame is empty"
        raise ConfigError(f"{symbol}: no bars ({held}); drop the symbol or pass its bars")
    name = f"{symbol} (DataFrame)"
    return validate_ohlcv(kept, name=name, interval=iv, max_jump=max_jump).frame, dropped


def _drop_missing_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop the rows whose open, high, low and close are all NaN (missing bars)."""
    if not all(column in frame.columns for column in OHLC_COLUMNS):
        return frame, 0  # validation names the missing columns
    prices = frame.loc[:, list(OHLC_COLUMNS)]
    try:
        gone = prices.isna().all(axis=1).to_numpy(dtype=bool)
    except (TypeError, ValueError):
        return frame, 0
    if not gone.any():
        return frame, 0
    return frame.loc[~gone], int(gone.sum())


def _check_tz_kinds(indexes: Mapping[str, pd.Index]) -> None:
    """Refuse a universe mixing tz-naive and tz-aware timestamps, in one line."""
    kinds = {
        symbol: ("naive" if index.tz is None else str(index.tz))
        for symbol, index in indexes.items()
        if isinstance(index, pd.DatetimeIndex)
    }
    naive = [s for s, kind in kinds.items() if kind == "naive"]
    aware = [s for s, kind in kinds.items() if kind != "naive"]
    if naive and aware:
        raise ConfigError(
            f"a universe mixes tz-naive and tz-aware timestamps: {naive[0]} naive, {aware[0]} "
            f"{kinds[aware[0]]}; use one kind for every symbol (session dates tz-naive, "
            "intraday times in UTC)"
        )


def _common_zone(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Tz-aware frames in different zones, all converted to UTC; otherwise as they are."""
    zones = {str(frame.index.tz) for frame in frames.values()}
    if len(zones) <= 1:
        return frames
    return {
        symbol: frame.set_axis(frame.index.tz_convert("UTC"), axis=0)
        for symbol, frame in frames.items()
    }


def infer_interval(index: pd.DatetimeIndex) -> str | None:
    """The canonical interval of bars stamped `index`, from their median spacing; None with
    fewer than two bars.

    Timestamps all at midnight spaced a day or more apart are daily-type bars: a median
    spacing under 4 days is "1d" (weekends and holidays are gaps), under 20 days "1wk", up to
    45 days "1mo". Other timestamps are intraday: the median spacing must equal an intraday
    interval's length. Anything else is a `ConfigError` asking for the interval.
    """
    if len(index) < 2:
        return None
    spacing = pd.Series(np.diff(index.as_unit("ns").asi8)).median()
    median = pd.Timedelta(int(spacing), unit="ns")
    day = pd.Timedelta(days=1)
    if median >= day and bool((index == index.normalize()).all()):
        if median < 4 * day:
            return "1d"
        if median < 20 * day:
            return "1wk"
        if median <= 45 * day:
            return "1mo"
        raise _no_interval(median)
    for name in ("1m", "2m", "5m", "15m", "30m", "90m", "1h"):
        if parse_interval(name).step == median:
            return name
    raise _no_interval(median)


def _no_interval(median: pd.Timedelta) -> ConfigError:
    return ConfigError(
        f"cannot tell the bar interval from bars typically {median} apart; pass the interval "
        "(interval= / --interval)"
    )


def _common_interval(frames: Mapping[str, pd.DataFrame]) -> str:
    """The one interval every frame's spacing shows; a `ConfigError` for a mix.

    Frames of fewer than `_MIN_VOTING_BARS` bars do not vote (two bars around a halt are a
    week apart); when none has that many, tz-naive dates at midnight are "1d" and anything
    else needs the interval given.
    """
    found: dict[str, str] = {}
    for symbol, frame in frames.items():
        if len(frame) < _MIN_VOTING_BARS:
            continue
        try:
            name = infer_interval(pd.DatetimeIndex(frame.index))
        except ConfigError as err:
            raise ConfigError(f"{symbol}: {err}") from None
        if name is not None:
            found[symbol] = name
    distinct = dict.fromkeys(found.values())
    if len(distinct) > 1:
        shown = [f"{next(s for s, n in found.items() if n == name)} {name}" for name in distinct]
        raise ConfigError(
            f"a universe mixes intervals: {', '.join(shown)}; use one interval for every symbol"
        )
    if distinct:
        return next(iter(distinct))
    indexes = [pd.DatetimeIndex(frame.index) for frame in frames.values()]
    if all(ix.tz is None and (ix == ix.normalize()).all() for ix in indexes):
        return "1d"  # a few session dates
    raise ConfigError(
        f"cannot tell the bar interval from fewer than {_MIN_VOTING_BARS} bars a symbol; pass "
        "the interval (interval= / --interval)"
    )


def _frame_record(symbol: str, interval: str, frame: pd.DataFrame, missing: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "interval": interval,
        "source": "frame",
        "rows": len(frame),
        "first": frame.index[0].isoformat(),
        "last": frame.index[-1].isoformat(),
        "sha256": data_sha256(frame),
        "missing_rows": missing,
    }


def _prefixed(err: DataError, symbol: str) -> DataError:
    """The loader's error, its message prefixed with the symbol, of the same type."""
    message = f"{symbol}: {err}"
    try:
        return type(err)(message)
    except TypeError:
        return DataError(message)


def _warn_if_short(panel: Panel, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> None:
    first, last = panel.index[0], panel.index[-1]
    if (lo is not None and lo < first - _RANGE_SLACK) or (
        hi is not None and hi > last + _RANGE_SLACK
    ):
        warnings.warn(
            f"the universe {panel.describe()} spans less than the requested [{lo}, {hi}); "
            "results cover only the bars available",
            DataRangeWarning,
            stacklevel=3,
        )
