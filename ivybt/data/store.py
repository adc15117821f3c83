"""One series per Parquet file, with its provenance in the file's metadata; atomic writes.

A file holds the canonical OHLCV frame (see `ivybt.data.validate`) and, under the Parquet
schema-metadata key ``ivybt``, a JSON `SeriesMeta`. Writes go to a temporary file in the same
folder, are fsync'ed, then renamed over the target with `os.replace`, so a reader sees the old
file or the new one, never a half-written one, even if the writer is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ivybt.data.validate import INDEX_NAME
from ivybt.errors import DataError

META_KEY = b"ivybt"
SCHEMA_VERSION = 1
MAX_LOG_ENTRIES = 100


@dataclass(frozen=True)
class SeriesMeta:
    """Provenance of a stored series.

    Attributes
    ----------
    symbol, interval : what the series is.
    source : "yahoo" for fetched series, "import" for vendor files.
    price_basis : what the OHLC prices are, e.g. Yahoo's split-adjusted, not dividend-adjusted
        close; `adj_close`, when present, is adjusted for splits and dividends.
    exchange_tz : the exchange's time zone as the source reports it (None if unknown).
    covered_start, covered_end : ISO timestamps; the half-open range [start, end) that has
        been requested from the source. Bars missing inside it do not exist at the source, so
        a request inside the range fetches nothing.
    updated_at : ISO UTC time of the last write.
    max_jump : the price-jump factor the series is validated with, when the user allowed more
        than `ivybt.data.validate.MAX_JUMP` (`--max-jump`); None for the default.
    log : the last updates, newest last: {"at", "action", "start", "end", "bars", ...}.
    """

    symbol: str
    interval: str
    source: str
    price_basis: str
    exchange_tz: str | None = None
    covered_start: str | None = None
    covered_end: str | None = None
    updated_at: str | None = None
    max_jump: float | None = None
    log: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    schema_version: int = SCHEMA_VERSION

    def coverage(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """[covered_start, covered_end) as timestamps, or None."""
        if self.covered_start is None or self.covered_end is None:
            return None
        return pd.Timestamp(self.covered_start), pd.Timestamp(self.covered_end)

    def with_event(self, event: dict[str, Any], **changes: Any) -> SeriesMeta:
        """A copy with `changes` applied and `event` appended to the log."""
        log = (*self.log, event)[-MAX_LOG_ENTRIES:]
        return replace(self, log=log, **changes)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SeriesMeta:
        data = json.loads(raw)
        data["log"] = tuple(data.get("log", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def write_series(path: Path, frame: pd.DataFrame, meta: SeriesMeta) -> None:
    """Write `frame` with `meta` to `path` atomically (temp file, fsync, os.replace)."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    metadata = dict(table.schema.metadata or {})
    metadata[META_KEY] = meta.to_json()
    table = table.replace_schema_metadata(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temp files left by writers of `path` that were killed; call under the lock."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def release_arrow_memory() -> None:
    """Hand the memory Arrow's pool keeps after a read back to the system (~10 MB a series):
    a long grid holds its peak with the read's leftovers otherwise."""
    pa.default_memory_pool().release_unused()


def read_series(path: Path) -> tuple[pd.DataFrame, SeriesMeta | None]:
    """Read a series file: the frame (index `date`, ns resolution) and its metadata."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(
            f"cannot read {path}: {err}; delete the file and fetch or import the series again"
        ) from err
    frame = table.to_pandas()
    raw = (table.schema.metadata or {}).get(META_KEY)
    del table
    release_arrow_memory()
    if isinstance(frame.index, pd.DatetimeIndex):
        frame.index = frame.index.as_unit("ns").rename(INDEX_NAME)
    return frame, SeriesMeta.from_json(raw) if raw else None


def read_meta(path: Path) -> SeriesMeta | None:
    """Read only the metadata of a series file (cheap: no data pages)."""
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return SeriesMeta.from_json(raw) if raw else None


def read_index_summary(path: Path) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    """(rows, first timestamp, last timestamp) of a series file, reading only its index."""
    table = pq.read_table(path, columns=[INDEX_NAME])
    column = table.column(INDEX_NAME)
    if table.num_rows == 0:
        return 0, None, None
    first, last = column[0].as_py(), column[table.num_rows - 1].as_py()
    return table.num_rows, pd.Timestamp(first), pd.Timestamp(last)


def data_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's timestamps (int64 ns), column names and float64 values.

    Equal for equal data whatever the file or memory layout; manifests record it.
    """
    digest = hashlib.sha256()
    index = pd.DatetimeIndex(frame.index)
    digest.update(str(index.tz).encode())
    digest.update(np.ascontiguousarray(index.as_unit("ns").asi8).tobytes())
    for column in frame.columns:
        digest.update(str(column).encode())
        digest.update(np.ascontiguousarray(frame[column].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
