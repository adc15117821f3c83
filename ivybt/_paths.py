"""Where IvyBT keeps its working folders.

`cache/` (market data) and `results/` (run folders) are relative to the current working
directory by default. An explicit argument (the CLI's `--cache-dir` / `--results-dir`) wins over
the environment variables `IVYBT_CACHE_DIR` / `IVYBT_RESULTS_DIR`, which win over the default.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "IVYBT_CACHE_DIR"
RESULTS_DIR_ENV = "IVYBT_RESULTS_DIR"


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
