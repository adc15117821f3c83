"""Local worker processes of `ivybt optimize --workers N` (issue #18).

The command creates and records the study, then starts N - 1 `ivybt worker` processes on it
(`start_workers`) and runs batches itself: N processes on one study, which stops at
`--trials` whoever runs the trials (`ivybt.studies.study_storage`). The storage URL reaches
the workers through the environment (`STORAGE_ENV`), never their command line, so a
password in it does not show in `ps`. A worker that fails is reported with its last line of
error output, the password hidden.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from ivybt.errors import IvyBTError
from ivybt.redact import redact

STORAGE_ENV = "IVYBT_STORAGE"  # `ivybt worker --storage` reads it when the option is not given


class Workers:
    """`ivybt worker` processes on one study: `wait` for them, `stop` them."""

    def __init__(self, processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]]) -> None:
        self.processes = processes

    def wait(self) -> None:
        """Wait for every worker; an IvyBTError naming the first that failed."""
        failed = []
        for process, log in self.processes:
            if process.wait() != 0:
                log.seek(0)
                lines = log.read().decode(errors="replace").strip().splitlines() or ["(no output)"]
                failed.append(f"exit {process.returncode}: {redact(lines[-1])}")
        if failed:
            raise IvyBTError(
                f"{len(failed)} of {len(self.processes)} worker processes failed ("
                + "; ".join(failed)
                + "); the trials stored are kept: rerun to resume"
            )

    def stop(self) -> None:
        for process, log in self.processes:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
                if process.poll() is None:
                    process.kill()
                    process.wait()
            log.close()


def start_workers(
    storage_url: str,
    study_name: str,
    n: int,
    *,
    cache_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
) -> Workers:
    """Start `n` `ivybt worker` processes on `study_name` in `storage_url`."""
    env = {**os.environ, STORAGE_ENV: storage_url}
    argv = [sys.executable, "-m", "ivybt"]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    if results_dir is not None:
        argv += ["--results-dir", str(results_dir)]
    argv += ["worker", "--study", study_name, "--quiet"]
    processes = []
    for _ in range(n):
        log = tempfile.TemporaryFile()
        processes.append((
            subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=log),
            log,
        ))  # fmt: skip
    return Workers(processes)
