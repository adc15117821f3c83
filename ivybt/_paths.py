"""Where IvyBT keeps its working folders.

`cache/` (market data) and `results/` (run folders) are relative to the current working
directory by default; saved presets live in a per-user folder (`presets_dir`). An explicit
argument (the CLI's `--cache-dir` / `--results-dir` / `--presets-dir`) wins over the
environment variables `IVYBT_CACHE_DIR` / `IVYBT_RESULTS_DIR` / `IVYBT_PRESETS_DIR`, which win
over the default.

Compiled kernels (Numba's cache) go to a per-user folder, never inside the installed package,
in a subfolder per version of the kernels' sources (`kernels-<digest>`):
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


def kernels_digest() -> str:
    """12 hex digits of SHA-256 over the source of every module in `ivybt/kernels/`.

    Numba's cache checks only the file that defines a kernel, so a kernel calling one of
    another file would keep its stale compiled code after that file changed (a `git pull`
    touching `portfolio.py` but not `portfolio_grid.py`): wrong numbers, silently. Each
    version of the kernels' sources therefore gets its own cache folder."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "kernels").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def use_numba_cache_dir() -> Path:
    """Point Numba's cache at `numba_cache_dir()` before any kernel is compiled.

    Sets $NUMBA_CACHE_DIR to that folder's `kernels-<kernels_digest()>` subfolder, so Numba
    (read at its import) and worker processes use it; when Numba was imported first, also
    sets its parsed config, which each `@njit(cache=True)` reads when its module is imported.
    A user's own $NUMBA_CACHE_DIR wins (its subfolder is used). Returns the subfolder.
    """
    folder = numba_cache_dir()
    suffix = f"kernels-{kernels_digest()}"
    versioned = folder if folder.name == suffix else folder / suffix  # a worker's: as it is
    os.environ[NUMBA_CACHE_DIR_ENV] = str(versioned)
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = str(versioned)  # type: ignore[attr-defined]
    return versioned


PRESETS_DIR_ENV = "IVYBT_PRESETS_DIR"


def presets_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder of saved presets (`ivybt preset`, docs/presets.md): `explicit`, else
    $IVYBT_PRESETS_DIR, else `presets/` in the per-user data folder (`platformdirs`:
    `~/.local/share/ivybt/presets` on Linux, `~/Library/Application Support/ivybt/presets`
    on macOS, `%LOCALAPPDATA%\\ivybt\\presets` on Windows). Per user, not per working
    folder: a preset is a decision to act on, wherever `ivybt signals` runs from."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit)
    from_env = os.environ.get(PRESETS_DIR_ENV, "")
    if from_env:
        return Path(from_env)
    import platformdirs

    return Path(platformdirs.user_data_dir("ivybt", appauthor=False)) / "presets"
