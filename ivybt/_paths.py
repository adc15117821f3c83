"""Where IvyBT keeps its working folders.

`cache/` (market data) and `results/` (run folders) are relative to the current working
directory by default. An explicit argument (the CLI's `--cache-dir` / `--results-dir`) wins over
the environment variables `IVYBT_CACHE_DIR` / `IVYBT_RESULTS_DIR`, which win over the default.

Compiled kernels (Numba's cache) go to a per-user folder, never inside the installed package:
`$NUMBA_CACHE_DIR` when set, else `numba/` in the user cache folder (`platformdirs`:
`~/.cache/ivybt/numba` on Linux, `~/Library/Caches/ivybt/numba` on macOS,
`%LOCALAPPDATA%\\ivybt\\Cache\\numba` on Windows). Numba's default, a `__pycache__` beside each
kernel module, would write into site-packages, where a left-over folder shadows the package
after a reinstall (`pip install .` then `pip install -e .`) and where users often cannot write.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_DIR_ENV = "IVYBT_CACHE_DIR"
RESULTS_DIR_ENV = "IVYBT_RESULTS_DIR"
NUMBA_CACHE_DIR_ENV = "NUMBA_CACHE_DIR"


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The market-data cache folder: `explicit`, else $IVYBT_CACHE_DIR, else ./cache."""
    return _resolve(explicit, CACHE_DIR_ENV, "cache")


def results_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The run-folder root: `explicit`, else $IVYBT_RESULTS_DIR, else ./results."""
    return _resolve(explicit, RESULTS_DIR_ENV, "results")


def _resolve(explicit: str | os.PathLike[str] | None, env: str, default: str) -> Path:
    if explicit is not None and str(explicit) != "":
        return Path(explicit)
    from_env = os.environ.get(env, "")
    return Path(from_env) if from_env else Path(default)


def numba_cache_dir() -> Path:
    """Numba's cache folder for IvyBT's kernels: $NUMBA_CACHE_DIR, else the per-user default."""
    from_env = os.environ.get(NUMBA_CACHE_DIR_ENV, "")
    if from_env:
        return Path(from_env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("ivybt", appauthor=False)) / "numba"


def use_numba_cache_dir() -> Path:
    """Point Numba's cache at `numba_cache_dir()` before any kernel is compiled.

    Sets $NUMBA_CACHE_DIR when unset, so Numba (read at its import) and worker processes use
    the same folder; when Numba was imported first, also sets its parsed config, which each
    `@njit(cache=True)` reads when its module is imported. A user's own $NUMBA_CACHE_DIR wins.
    """
    folder = numba_cache_dir()
    os.environ.setdefault(NUMBA_CACHE_DIR_ENV, str(folder))
    config = sys.modules.get("numba.core.config")
    if config is not None and not getattr(config, "CACHE_DIR", ""):
        config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    return folder
