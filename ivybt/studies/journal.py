"""Optuna journal files that survive kill -9, full disks and several processes.

An Optuna journal is a file of JSON records, one a line, appended under a lock. Three
things go wrong with Optuna's own `JournalFileBackend`, and this module fixes them for every
IvyBT command that opens a journal (`ivybt.studies.study_storage.open_storage`: optimize,
walkforward --search optuna, grid --export-study, dashboard):

- **A torn tail.** A kill or a full disk in the middle of an append leaves a last line
  without its newline. Optuna's reader skips it, but the next append is written straight
  onto it, and from then on every reader fails with a JSONDecodeError: every study in the
  file is lost (optuna issue #5138). `JournalBackend` checks the tail under the lock before
  each append and when the file is opened; a torn tail is moved to a side file
  `<journal>.torn-<UTC time>`, the journal is cut back to its last complete record, and one
  `JournalRepairedWarning` says so. A journal an older version already broke that way (a torn
  record with a whole record appended to it, or a damaged line) is repaired the same way when
  it is opened. An append that fails (ENOSPC) is taken back, so IvyBT never tears a tail.
- **A stale lock.** Optuna's default lock is a symlink `<journal>.lock` with no holder pid; a
  killed holder leaves it, and every later client waits for its 30 s grace period and prints
  raw `[W ...]` lines. `JournalLock` first takes an OS lock (`filelock`: flock), which the
  system releases when its holder dies, then Optuna's symlink, so plain Optuna clients
  (`optuna-dashboard FILE`, a user's script) still exclude IvyBT and the reverse. While IvyBT
  holds the OS lock, no IvyBT process holds the symlink, and a plain Optuna client holds it for
  one append (milliseconds): a symlink older than `STALE_AFTER_S` has a dead holder and is
  removed at once.
- **Many appends per trial.** `JournalBackend.together()` writes every record of a block in
  one append, one fsync: a batch of trials is stored whole or not at all.

IvyBT's lock files live in the hidden folder `.<journal name>.locks/` beside the journal (safe
to delete when nothing runs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
from optuna.storages.journal import JournalFileBackend

from ivybt.errors import DiskFullError, JournalRepairedWarning, StorageError

logger = logging.getLogger(__name__)

STALE_AFTER_S = 1.0  # a symlink lock this old, while IvyBT holds the OS lock, is stale
_OPTUNA_SYMLINK_SUFFIX = ".lock"  # optuna.storages.journal._file.LOCK_FILE_SUFFIX
_RECORD_START = b'{"op_code":'  # how Optuna writes every record (json.dumps, compact)
_TAIL_CHUNK = 1 << 16


def lock_folder(path: str | os.PathLike[str]) -> Path:
    """`.<file name>.locks/` beside a storage file: IvyBT's lock files for it (created)."""
    path = Path(path)
    folder = path.with_name(f".{path.name}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class JournalLock:
    """The journal's append lock: an OS lock that dies with its holder, then Optuna's symlink.

    Re-entrant within a thread; each thread of a process waits for the others (the
    dashboard's server threads append too). It has the `acquire`/`release` of Optuna's
    journal file locks.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._symlink = path + _OPTUNA_SYMLINK_SUFFIX
        self._os_lock: filelock.FileLock | None = None  # made at the first append
        self._depth = threading.local()

    def acquire(self) -> bool:
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            if self._os_lock is None:
                self._os_lock = filelock.FileLock(str(lock_folder(self._path) / "journal.lock"))
            self._os_lock.acquire()
            try:
                self._take_symlink()
            except BaseException:
                self._os_lock.release()
                raise
        self._depth.n = depth + 1
        return True

    def release(self) -> None:
        self._depth.n -= 1
        if self._depth.n:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._symlink)
        finally:
            assert self._os_lock is not None
            self._os_lock.release()

    def _take_symlink(self) -> None:
        delay = 0.001
        while True:
            try:
                os.symlink(self._path, self._symlink)
                return
            except FileExistsError:
                pass
            try:
                age = time.time() - os.lstat(self._symlink).st_mtime
            except FileNotFoundError:
                continue
            if age >= STALE_AFTER_S:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._symlink)
                logger.info(
                    "removed the stale journal lock %s (its holder is gone)", self._symlink
                )
                continue
            time.sleep(delay)
            delay = min(2 * delay, 0.05)


class JournalBackend(JournalFileBackend):
    """Optuna's journal file backend with `JournalLock`, tail repair before every append,
    failed appends taken back, and `together()` for one append per block of records."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._journal_lock = JournalLock(path)
        self._held: dict[int, _Held] = {}

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        held = self._held.get(threading.get_ident())
        if held is not None:
            held.logs.extend(logs)
            return
        self._write(logs)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """The file's records from `log_number_from`, then (inside `together`) the records
        this thread holds, numbered after the file's."""
        held = self._held.get(threading.get_ident())
        if held is None:
            yield from super().read_logs(log_number_from)
            return
        if held.file_end is None or log_number_from < held.file_end:
            n = 0
            for log in super().read_logs(log_number_from):
                n += 1
                yield log
            held.file_end = log_number_from + n
        yield from held.logs[max(0, log_number_from - held.file_end) :]

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """Write this thread's records of the block in one append, one fsync, when it ends.

        The journal's lock is held for the block (no other process appends meanwhile), and
        the records held are read back after the file's, as Optuna expects of a backend
        (it reads its own writes back). A block that raises still writes what it made, so
        the storage object and the file never disagree.
        """
        key = threading.get_ident()
        if key in self._held:  # nested: the outer block writes
            yield
            return
        with _locked(self._journal_lock):
            cut_torn_tail(self._file_path)
            self._held[key] = _Held()
            try:
                yield
            finally:
                logs = self._held.pop(key).logs
                if logs:
                    self._write(logs)

    def repair(self) -> bool:
        """Repair the file under the lock (see `repair_journal`); True if anything changed."""
        with _locked(self._journal_lock):
            return repair_journal(self._file_path)

    def repair_tail(self) -> bool:
        """Cut a torn tail off under the lock (see `cut_torn_tail`); True if there was one.
        A whole journal is recognised without the lock (a read-only one too)."""
        if _ends_whole(self._file_path):
            return False
        with _locked(self._journal_lock):
            return cut_torn_tail(self._file_path)

    def _write(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        with _locked(self._journal_lock):
            cut_torn_tail(self._file_path)
            size = os.path.getsize(self._file_path)
            try:
                with open(self._file_path, "ab") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as err:
                with contextlib.suppress(OSError):  # take back what reached the file
                    os.truncate(self._file_path, size)
                raise _append_error(err, self._file_path, len(data)) from err


def _append_error(err: OSError, path: str, size: int) -> Exception:
    """`DiskFullError` for a full disk (ENOSPC, EDQUOT), else `StorageError`."""
    from ivybt.files import is_disk_full

    fix = "nothing was written to it, and rerunning the same command resumes the study"
    if is_disk_full(err):
        return DiskFullError(
            f"the disk is full: no space left to append {size:,} bytes to the Optuna journal "
            f"{path}; {fix} once space is freed"
        )
    return StorageError(
        f"could not append {size:,} bytes to the Optuna journal {path}: "
        f"{err.strerror or err}; {fix}"
    )


class _Held:
    """The records a thread holds inside `JournalBackend.together`."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []
        self.file_end: int | None = None  # number of records in the file


@contextlib.contextmanager
def _locked(lock: JournalLock) -> Iterator[None]:
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def cut_torn_tail(path: str | os.PathLike[str]) -> bool:
    """Move the bytes after the journal's last newline to a side file and cut them off.

    Call it with the journal's lock held (a tail being written by a live process looks torn
    too). Returns True if there was a torn tail. Costs one stat and a one-byte read when the
    journal is whole.
    """
    if _ends_whole(path):
        return False
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        cut, end = 0, size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            end = start
        handle.seek(cut)
        torn = handle.read()
    kept = _keep_aside(path, torn)
    os.truncate(path, cut)
    _fsync_file(path)
    _warn(
        f"the Optuna journal {path} ended in a torn record ({len(torn):,} bytes, from a write "
        f"a kill or a full disk interrupted): {kept}, and the journal was cut back to its "
        "last complete record; every study in it stays readable"
    )
    return True


def _ends_whole(path: str | os.PathLike[str]) -> bool:
    """Whether the journal is empty or ends with a newline (one stat, a one-byte read)."""
    size = os.path.getsize(path)
    if size == 0:
        return True
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def repair_journal(path: str | os.PathLike[str]) -> bool:
    """Repair a journal Optuna cannot read: drop each damaged line, keeping the whole record
    an older writer appended onto a torn one, and keep the dropped bytes in a side file.

    A damaged line is one that is not a JSON record. When its end is a whole record (a torn
    record followed by the record that was appended straight onto it, optuna issue #5138),
    that record is kept and the torn start dropped: no reader ever applied the torn record.
    Call it with the journal's lock held. Returns True if anything changed.
    """
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    kept: list[bytes] = []
    torn: list[bytes] = []
    for line in lines:
        if _is_record(line):
            kept.append(line)
            continue
        record = _trailing_record(line)
        torn.append(line[: len(line) - len(record)] if record else line)
        if record:
            kept.append(record)
    if tail:
        torn.append(tail)
    if not torn:
        return False
    moved = _keep_aside(path, b"\n".join(torn))
    temporary = Path(f"{path}.repair.tmp")
    with open(temporary, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in kept))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _warn(
        f"the Optuna journal {path} had {len(torn):,} damaged record(s) (a write torn by a "
        f"kill or a full disk, then appended to): {moved}, and the {len(kept):,} whole "
        "records were kept; every study in it is readable again"
    )
    return True


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _trailing_record(line: bytes) -> bytes:
    """The longest end of `line` that is a whole record, or b""."""
    start = line.find(_RECORD_START, 1)
    while start >= 0:
        if _is_record(line[start:]):
            return line[start:]
        start = line.find(_RECORD_START, start + 1)
    return b""


def _keep_aside(path: str | os.PathLike[str], torn: bytes) -> str:
    """Write `torn` to a new side file beside the journal; say where, or why not."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    side = Path(f"{path}.torn-{stamp}")
    n = 1
    while side.exists():
        n += 1
        side = Path(f"{path}.torn-{stamp}-{n}")
    try:
        with open(side, "xb") as handle:
            handle.write(torn)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        with contextlib.suppress(OSError):
            side.unlink()
        return f"they could not be kept ({err.strerror or err})"
    return f"they were moved to {side}"


def _fsync_file(path: str | os.PathLike[str]) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _warn(message: str) -> None:
    warnings.warn(JournalRepairedWarning(message), stacklevel=4)
