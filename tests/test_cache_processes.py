"""The cache under several processes: concurrent writers, and a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas.testing as pdt
import pytest

from ivybt.data.cache import DataCache
from ivybt.data.loader import load_series
from ivybt.data.store import read_series
from tests.conftest import day

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_worker(
    cache_dir: Path, log: Path, start: str, end: str, delay: float, *extra: str
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests._cache_worker",
            str(cache_dir),
            str(log),
            start,
            end,
            str(delay),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def aapl(start: str, end: str):
    frame = load_series("AAPL", "1d", source="sample", adjusted=False).frame
    return frame.loc[(frame.index >= day(start)) & (frame.index < day(end))]


def finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().endswith("done")


def test_two_processes_same_request_fetch_once(tmp_path: Path, cache_dir: Path) -> None:
    log = tmp_path / "requests.log"
    workers = [start_worker(cache_dir, log, "2010-01-01", "2014-01-01", 1.0) for _ in range(2)]
    for proc in workers:
        finish(proc)
    assert len(log.read_text().splitlines()) == 1  # the lock made the second one wait and read
    frame, _ = read_series(cache_dir / "AAPL_1d.parquet")
    pdt.assert_frame_equal(frame, aapl("2010-01-01", "2014-01-01"))


def test_two_processes_overlapping_requests_leave_a_valid_file(tmp_path, cache_dir) -> None:
    log = tmp_path / "requests.log"
    workers = [
        start_worker(cache_dir, log, "2010-01-01", "2014-01-01", 0.5),
        start_worker(cache_dir, log, "2012-01-01", "2016-01-01", 0.5),
    ]
    for proc in workers:
        finish(proc)
    frame, meta = DataCache(cache_dir).read("AAPL", "1d")
    pdt.assert_frame_equal(frame, aapl("2010-01-01", "2016-01-01"))
    assert meta.coverage() == (day("2010-01-01"), day("2016-01-01"))


def test_write_killed_midway_leaves_previous_file_intact(tmp_path, cache_dir) -> None:
    log = tmp_path / "requests.log"
    finish(start_worker(cache_dir, log, "2010-01-01", "2012-01-01", 0.0))
    path = cache_dir / "AAPL_1d.parquet"
    before = path.read_bytes()
    proc = start_worker(cache_dir, log, "2010-01-01", "2016-01-01", 0.0, "hang-mid-write")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"  # the new file is half written now
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stale = list(cache_dir.glob(".AAPL_1d.parquet.*.tmp"))
    assert len(stale) == 1  # the half-written temporary file, never the real one
    assert path.read_bytes() == before
    frame, _ = DataCache(cache_dir).read("AAPL", "1d")
    pdt.assert_frame_equal(frame, aapl("2010-01-01", "2012-01-01"))
    # the killed holder's lock is released, and the next update cleans up after it
    finish(start_worker(cache_dir, log, "2010-01-01", "2016-01-01", 0.0))
    assert not list(cache_dir.glob(".AAPL_1d.parquet.*.tmp"))
    frame, _ = DataCache(cache_dir).read("AAPL", "1d")
    pdt.assert_frame_equal(frame, aapl("2010-01-01", "2016-01-01"))
