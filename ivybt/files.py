"""IvyBT's output files, written whole or not at all.

`atomic_path` writes each file under a temporary name in its folder (`.<name>.<random>.tmp`)
and renames it over the target when complete, so a reader never sees half a file; a full
disk is a `DiskFullError` and a folder that cannot be written a `ConfigError`, both one line.
`write_json`, `write_table` and `write_text` write through it, passwords hidden
(`ivybt.redact`). Run folders (`ivybt.runs.folder`), walk-forward folds
(`ivybt.studies.walkforward`) and reports all write this way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt.errors import ConfigError, DiskFullError
from ivybt.redact import redact

_FILE_MODE = 0o644
_TEXT_PIECE = 1 << 20  # characters `write_text` encodes at a time


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`.

    A full disk (ENOSPC, EDQUOT) while writing raises `DiskFullError`, and a folder that
    cannot be written (permission denied, read-only file system) `ConfigError`; the
    temporary file is removed either way, so `path` is whole or untouched (`write_error`).
    """
    with _write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
    temp_path = Path(temp)
    try:
        with _write_errors(path):
            temp_path.chmod(_FILE_MODE)  # mkstemp makes 0600; results are for people to open
            yield temp_path
            os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def is_disk_full(err: BaseException) -> bool:
    """Whether `err` is a write that failed on a full disk or quota (ENOSPC, EDQUOT), also
    when a library kept only the message (pyarrow: "[Errno 28] No space left on device")."""
    if not isinstance(err, OSError):
        return False
    return err.errno in _DISK_FULL or any(os.strerror(code) in str(err) for code in _DISK_FULL)


def disk_full_message(where: object) -> str:
    """The one line of a full disk while writing `where`."""
    return (
        f"the disk is full: no space left while writing {where}; nothing is half-written (IvyBT "
        "writes each file under a temporary name and renames it when whole, so the files "
        "already written are complete and this one was not written); free space, or write "
        "elsewhere (--out, --results-dir), and rerun the same command"
    )


def write_error(err: OSError, path: Path) -> Exception | None:
    """The IvyBT error for a failed write of `path`: `DiskFullError` for a full disk,
    `ConfigError` for a folder that cannot be written; None for any other OSError."""
    if is_disk_full(err):
        return DiskFullError(disk_full_message(path))
    if err.errno in _NOT_WRITABLE:
        return ConfigError(
            f"cannot write {path}: {err.strerror or err}; choose a folder you can write to "
            "(--out, --results-dir) or make that one writable"
        )
    return None


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        converted = write_error(err, path)
        if converted is None:
            raise
        raise converted from err


def write_json(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON atomically; NaN and infinities become null."""
    with atomic_path(path) as temp:
        temp.write_text(
            json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Write `frame` atomically as Parquet or CSV, by the suffix of `path`."""
    writers: dict[str, Callable[[Path], None]] = {
        ".parquet": lambda temp: frame.to_parquet(temp),
        ".csv": lambda temp: frame.to_csv(temp),
    }
    with atomic_path(path) as temp:
        writers[path.suffix](temp)


def write_text(path: Path, text: str) -> None:
    """Write `text` atomically, passwords hidden (`ivybt.redact`).

    Encoded a piece at a time (`_TEXT_PIECE` characters): UTF-8 encoding a whole report at
    once reserves 3 bytes a character (25 MB for W1's 8.7 MB report.html), more than the
    page itself.
    """
    text = redact(text)
    with atomic_path(path) as temp, temp.open("w", encoding="utf-8") as handle:
        for start in range(0, len(text), _TEXT_PIECE):
            handle.write(text[start : start + _TEXT_PIECE])


def jsonable(value: Any) -> Any:
    """`value` with NaN/inf as None, numpy scalars as Python numbers, tuples as lists, and
    passwords hidden in every string (`ivybt.redact`: nothing written shows one, and a
    manifest compares equal to the configuration it was written from)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
