"""One batch job in a worker process: `run_job(task)` runs the job's command on its
configuration, writes its run folder and returns what the batch records.

The batch's process sends a `JobTask` to a joblib (loky) worker process and writes every
record itself; the worker writes only the job's run folder (and its Optuna study, in the
batch's journal). A job is a pure function of its task: the same task gives the same run
folder whichever worker runs it, with however many threads.

- Threads: the worker runs Numba with `task.threads` threads (the batch sets
  NUMBA_NUM_THREADS in the workers' environment before Numba is imported, and
  `numba.set_num_threads` again here), so workers x threads stays within the cores.
- Errors: an exception of the job (a data error, a strategy failing, MemoryError,
  `sys.exit`) is returned as one line, `ok` False; the worker lives on. A crash that ends
  the process (a segmentation fault, `os._exit`, the out-of-memory killer, kill -9) is seen
  by the batch as the worker's death (`ivybt.runs.batch`).
- Memory: after each job the worker collects garbage, drops the pandas-ta row cache, hands
  Arrow's pool and glibc's free heap back to the system, so a long batch holds one job's
  memory at a time.
- Ctrl-C: workers ignore SIGINT (`ignore_interrupts`, their initializer); the batch's
  process stops them.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivybt.redact import redact


@dataclass(frozen=True)
class JobTask:
    """What a worker needs to run one job.

    config : the job's `RunConfig` as JSON, output.out its run folder.
    results_dir : the batch folder, where an Optuna job keeps its study (optuna.journal).
    cwd, sys_path : the batch process's folder and import path (plug-in strategies are
        imported from there).
    """

    name: str
    command: str
    config: dict[str, Any]
    folder: str
    results_dir: str
    cache_dir: str | None
    threads: int
    cwd: str
    sys_path: tuple[str, ...]
    command_line: tuple[str, ...]


def ignore_interrupts() -> None:
    """A worker's initializer: Ctrl-C goes to the batch's process, which stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_job(task: JobTask) -> dict[str, Any]:
    """Run `task`'s job and return {"ok", "seconds", "pid"} with "headline", "warnings"
    and "data_sha256" (finished) or "error" (one line) and "input_error" (failed)."""
    from ivybt.errors import ConfigError, IvyBTWarning
    from ivybt.runs.batch_log import headline_of

    _use_threads(task.threads)
    _use_paths(task)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            folder = _run(task)
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        shown = [_one_line(w.message) for w in caught if issubclass(w.category, IvyBTWarning)]
        return {
            "ok": True,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
            "headline": headline_of(task.command, metrics),
            "warnings": list(dict.fromkeys(shown)),
            "data_sha256": [record.get("sha256") for record in manifest.get("data", [])],
        }
    except (Exception, SystemExit) as err:
        is_input = isinstance(err, ConfigError)
        text = _one_line(err) or type(err).__name__
        if not is_input and not _is_ivybt_error(err):
            text = f"{type(err).__name__}: {text}" if text != type(err).__name__ else text
        return {
            "ok": False,
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
            "error": text,
            "input_error": is_input,
        }
    finally:
        release_memory()


def _run(task: JobTask) -> Path:
    """Run the job's command as `ivybt <command>` does and write its run folder."""
    from ivybt.config import RunConfig
    from ivybt.files import jsonable
    from ivybt.runs.folder import read_run_manifest

    config = RunConfig.model_validate(task.config)
    folder = Path(task.folder)
    manifest = read_run_manifest(folder)
    # the batch owns jobs/<name>: another configuration's run there (the job was changed in
    # the batch file) is replaced; the same configuration's is reused (folds resume)
    overwrite = manifest is not None and manifest.get("config") != jsonable(
        config.model_dump(mode="json")
    )
    common = {"results_dir": task.results_dir, "command_line": list(task.command_line)}
    quiet = _ignore_notice
    if task.command == "backtest":
        from ivybt.runs.backtest import run_backtest
        from ivybt.runs.portfolio import run_portfolio_backtest

        run = run_portfolio_backtest if config.data.is_portfolio else run_backtest
        result = run(config, cache_dir=task.cache_dir)
        return result.write(folder, overwrite=overwrite, **common)
    if task.command == "grid":
        from ivybt.runs.grid import run_grid

        grid = run_grid(config, cache_dir=task.cache_dir, notice=quiet)
        return grid.write(folder, overwrite=overwrite, **common)
    if task.command == "optimize":
        from ivybt.runs.optimize import run_search, write_search
        from ivybt.studies.study_storage import quiet_optuna

        with quiet_optuna():
            search = run_search(
                config, cache_dir=task.cache_dir, results_dir=task.results_dir, notice=quiet
            )
            return write_search(search, folder, overwrite=overwrite, **common)
    from ivybt.runs.walkforward import run_walk_forward

    walked = run_walk_forward(
        config, cache_dir=task.cache_dir, overwrite=overwrite, notice=quiet, **common
    )
    return walked.folder


def _ignore_notice(line: str) -> None:
    """The space's size line: the batch's plan already counted the jobs."""


def _use_threads(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _use_paths(task: JobTask) -> None:
    """Import and open files as the batch's process does: its folder and import path."""
    os.chdir(task.cwd)
    for entry in task.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    importlib.invalidate_caches()


def release_memory() -> None:
    """Give the memory of the job just run back: garbage, the pandas-ta row cache, Arrow's
    pool, and (glibc) the free heap pages via malloc_trim."""
    from ivybt.data.store import release_arrow_memory
    from ivybt.indicators.ta import clear_ta_cache

    clear_ta_cache()
    gc.collect()
    release_arrow_memory()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _is_ivybt_error(err: BaseException) -> bool:
    from ivybt.errors import IvyBTError

    return isinstance(err, IvyBTError)


def _one_line(text: object) -> str:
    return redact(" ".join(str(text).split()))
