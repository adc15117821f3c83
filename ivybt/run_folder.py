"""The run folder: `results/<command>-<strategy>-<symbol>-<UTC time>/` or the folder `--out` names.

Every file is written to a temporary name in the folder and renamed, so a reader never sees half
a file. `manifest.json` is written first with status "running" and rewritten with "finished"
last; a folder whose manifest holds a different configuration is refused unless `overwrite`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt import __version__
from ivybt._paths import results_dir
from ivybt.errors import ConfigError

SCHEMA_VERSION = 1
_FILE_MODE = 0o644
KEY_PACKAGES = ("numba", "numpy", "pandas", "pandas-ta", "pyarrow", "plotly", "optuna", "pydantic")


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_run_name(command: str, strategy: str, symbol: str, when: datetime) -> str:
    """`<command>-<strategy>-<symbol>-<YYYYmmddTHHMMSSZ>` with unsafe characters replaced."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    parts = (command, strategy.rpartition(":")[2], symbol, stamp)
    return "-".join(re.sub(r"[^A-Za-z0-9_.=^]+", "_", part) for part in parts)


def resolve_run_folder(
    out: str | Path | None, name: str, results: str | Path | None = None
) -> Path:
    """The folder `out` names, else a new `<results dir>/<name>` (`-2`, `-3`... appended when
    a run of the same second already took the name)."""
    if out is not None:
        return Path(out)
    base = results_dir(results) / name
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def check_reusable(folder: Path, config: Mapping[str, Any], *, overwrite: bool) -> None:
    """Refuse a folder that holds another run's results, unless `overwrite`."""
    manifest = folder / "manifest.json"
    if not manifest.exists() or overwrite:
        return
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError):
        previous = None
    if previous != _jsonable(config):
        raise ConfigError(
            f"{folder} holds a run with another configuration; choose another --out, "
            "or pass --overwrite to replace it"
        )


def package_versions() -> dict[str, str]:
    """ivybt, Python and the key dependencies' versions."""
    versions = {"ivybt": __version__, "python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    *,
    command: str,
    config: Mapping[str, Any],
    data: list[Mapping[str, Any]],
    started: datetime,
    status: str,
    command_line: list[str] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest: what ran, on what data, with which versions, and how it ended."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "status": status,
        "started": started.isoformat(),
        "finished": utc_now().isoformat() if status != "running" else None,
        "command_line": command_line if command_line is not None else list(sys.argv),
        "versions": package_versions(),
        "platform": platform.platform(),
        "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"),
        "seed": seed,
        "config": _jsonable(config),
        "data": [_jsonable(record) for record in data],
        **(_jsonable(extra) if extra else {}),
    }


@contextlib.contextmanager
def open_run_folder(
    command: str,
    config: Any,
    *,
    data: Mapping[str, Any],
    started: datetime,
    folder: str | Path | None = None,
    results: str | Path | None = None,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[Path]:
    """The run folder of one run, with its manifest kept honest around the files written.

    Resolves the folder (`folder`, else the config's output.out, else `<results dir>/<command>-
    <strategy>-<symbol>-<UTC>`), refuses one holding another configuration unless
    `overwrite`, writes manifest.json with status "running", yields the folder for the
    command's files, then rewrites the manifest "finished" (or "failed", re-raising).
    """
    name = default_run_name(command, config.strategy.name, data["symbol"], started)
    target = resolve_run_folder(folder or config.output.out, name, results)
    dumped = config.model_dump(mode="json")
    check_reusable(target, dumped, overwrite=overwrite)
    common = {"command": command, "config": dumped, "data": [data], "started": started,
              "command_line": command_line}  # fmt: skip
    write_json(target / "manifest.json", build_manifest(status="running", **common))
    try:
        yield target
    except BaseException:
        write_json(target / "manifest.json", build_manifest(status="failed", **common))
        raise
    write_json(target / "manifest.json", build_manifest(status="finished", extra=extra, **common))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp_path = Path(temp)
    temp_path.chmod(_FILE_MODE)  # mkstemp makes 0600; results are for people to open
    try:
        yield temp_path
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def write_json(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON atomically; NaN and infinities become null."""
    with atomic_path(path) as temp:
        temp.write_text(
            json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8"
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
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def _jsonable(value: Any) -> Any:
    """`value` with NaN/inf as None, numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
