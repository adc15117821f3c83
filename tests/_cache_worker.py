"""A cache update in its own process, for tests/test_cache_processes.py.

usage: python -m tests._cache_worker CACHE_DIR LOG START END DELAY_S [hang-mid-write]

The fetcher serves the bundled real AAPL bars, appends each requested range to LOG and sleeps
DELAY_S so that two processes overlap. With `hang-mid-write` the Parquet writer leaves a
half-written temporary file, prints "ready" and hangs, waiting to be killed.
"""

from __future__ import annotations

import os
import sys
import time

import pandas as pd

from ivybt.data.cache import DataCache
from ivybt.data.loader import load_series
from ivybt.data.yahoo import FetchResult

NOW = pd.Timestamp("2018-01-23 12:00", tz="UTC")


def main(argv: list[str]) -> None:
    cache_dir, log_path, start, end, delay = argv[:5]
    frame = load_series("AAPL", "1d", source="sample", adjusted=False).frame

    def fetcher(symbol: str, iv: object, lo: pd.Timestamp, hi: pd.Timestamp) -> FetchResult:
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()} {lo.date()} {hi.date()}\n")
        time.sleep(float(delay))
        return FetchResult(frame.loc[(frame.index >= lo) & (frame.index < hi)], "America/New_York")

    if argv[5:] == ["hang-mid-write"]:
        import ivybt.data.store as store

        real_write = store.pq.write_table

        def half_write(table: object, where: str, **kwargs: object) -> None:
            real_write(table, where, **kwargs)
            with open(where, "r+b") as handle:
                handle.truncate(os.path.getsize(where) // 2)
            print("ready", flush=True)
            time.sleep(120)

        store.pq.write_table = half_write
    DataCache(cache_dir).update(
        "AAPL", "1d", pd.Timestamp(start), pd.Timestamp(end), fetcher=fetcher, now=NOW
    )
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
