"""The run folder: `results/<command>-<strategy>-<symbol>-<UTC time>/` or the folder `--out` names.

Every file is written to a temporary name in the folder and renamed, so a reader never sees half
a file. `manifest.json` is written first with status "running" and rewritten with "finished"
last; a folder whose manifest holds a different configuration is refused unless `overwrite`.

What IvyBT may write into and remove from a folder (`check_reusable`, `clear_run_files`):

- a run goes into a new folder, an empty one, or an IvyBT run folder: one whose manifest.json
  is IvyBT's (a JSON object with `schema_version` and `command`). Any other existing folder
  (or a file) is refused with a `ConfigError`, with or without `overwrite`: nothing the user
  put there is ever replaced.
- `overwrite` replaces an IvyBT run folder by removing the files IvyBT writes (`RUN_FILES`:
  every command's outputs, the pages `ivybt surface` and `ivybt montecarlo` add, the folds
  and any temporary file a killed write left) and nothing else: a file of the user's beside
  them stays. The old manifest.json stays until the new run's replaces it, so a run killed
  in between is still recognised as IvyBT's. A command that writes a new file name must add
  it to `RUN_FILES`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ivybt import __version__, _paths
from ivybt.errors import ConfigError
from ivybt.files import jsonable, write_json

SCHEMA_VERSION = 1
KEY_PACKAGES = ("numba", "numpy", "pandas", "pandas-ta", "pyarrow", "plotly", "optuna", "pydantic")
RUN_FILES = re.compile(
    r"(manifest|metrics|montecarlo)\.json|(report|montecarlo)\.html|surface-[^/]+\.html"
    r"|montecarlo-[^/]+\.(json|html)"
    r"|trades\.(csv|parquet)|(equity|grid|trials|folds|surface|oos_equity|weights|factor)\.parquet"
    r"|folds/fold-\d{3,}\.(parquet|json)"
)
"""Paths (relative to the run folder) of the files IvyBT writes there, by any command."""
_TEMPORARY = re.compile(r"(?P<dir>(folds/)?)\.(?P<name>[^/]+)\.[^/.]+\.tmp")
"""A temporary file of `ivybt.files.atomic_path`, `.<name>.<random>.tmp`, a killed write left."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_run_name(command: str, strategy: str, symbol: str, when: datetime) -> str:
    """`<command>-<strategy>-<symbol>-<YYYYmmddTHHMMSSZ>` with unsafe characters replaced."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    parts = (command, strategy.rpartition(":")[2], symbol, stamp)
    return "-".join(re.sub(r"[^A-Za-z0-9_.=^+]+", "_", part) for part in parts)


def resolve_run_folder(
    out: str | Path | None, name: str, results_dir: str | Path | None = None
) -> Path:
    """The folder `out` names, else a new `<results dir>/<name>` (`-2`, `-3`... appended when
    a run of the same second already took the name). `ConfigError` when the folder, or a
    folder above it, is a file."""
    if out is not None:
        return _check_not_a_file(Path(out))
    base = _check_not_a_file(_paths.results_dir(results_dir) / name)
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def check_reusable(folder: Path, config: Mapping[str, Any], *, overwrite: bool) -> None:
    """Refuse a folder IvyBT must not write into (module docstring): a file, a non-empty
    folder that holds no IvyBT run (even with `overwrite`), or an IvyBT run folder holding
    another configuration's results unless `overwrite`. All `ConfigError`s (exit 2)."""
    check_out_folder(folder)
    manifest = read_run_manifest(folder)
    if manifest is not None and not overwrite and manifest.get("config") != jsonable(config):
        raise ConfigError(
            f"{folder} holds a run with another configuration; choose another --out, "
            "or pass --overwrite to replace it"
        )


def check_out_folder(folder: str | Path | None) -> None:
    """Refuse, before any work, a `--out` IvyBT must not write into whatever the
    configuration: a file, or an existing non-empty folder that holds no IvyBT run
    (`ConfigError`). A new folder, an empty one and an IvyBT run folder pass; None (no
    --out) passes."""
    if folder is None:
        return
    folder = _check_not_a_file(Path(folder))
    check_writable(folder)  # nor one that cannot be written (permissions, read-only disk)
    if not folder.exists() or read_run_manifest(folder) is not None:
        return
    if any(not _is_temporary(path.name) for path in folder.iterdir()):
        raise ConfigError(_not_a_run(folder))


def read_run_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of the IvyBT run in `folder`, or None when it holds none (no
    manifest.json, or one that is not IvyBT's: not a JSON object with `schema_version` and
    `command`)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not {"schema_version", "command"} <= manifest.keys():
        return None
    return manifest


def clear_run_files(folder: Path) -> list[Path]:
    """Remove the files IvyBT wrote in the run folder `folder` (`RUN_FILES` and temporary
    files), except manifest.json, which the next run replaces; return what was removed.
    Anything else stays, and `folds/` is removed only when nothing else is left in it.
    `ConfigError` when `folder` holds no IvyBT run."""
    if read_run_manifest(folder) is None:
        raise ConfigError(_not_a_run(folder))
    removed = []
    for path in sorted(folder.glob("*")) + sorted(folder.glob("folds/*")):
        relative = path.relative_to(folder).as_posix()
        if relative == "manifest.json" or not path.is_file() or path.is_symlink():
            continue
        if RUN_FILES.fullmatch(relative) or _is_temporary(relative):
            path.unlink()
            removed.append(path)
    with contextlib.suppress(OSError):  # not empty (the user's files), or not there
        (folder / "folds").rmdir()
    return removed


def _is_temporary(relative: str) -> bool:
    match = _TEMPORARY.fullmatch(relative)
    return match is not None and RUN_FILES.fullmatch(match["dir"] + match["name"]) is not None


def _not_a_run(folder: Path) -> str:
    return (
        f"{folder} is not empty and holds no IvyBT run (no IvyBT manifest.json); IvyBT "
        "writes only into a new or empty folder or a run folder of its own, and --overwrite "
        "replaces only those: choose another --out"
    )


def _check_not_a_file(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise ConfigError(
                    f"{folder} is a file, not a folder; give --out a folder path, e.g. "
                    f"{path.parent / (path.name + '-run')}"
                )
            break
    return path


def package_versions() -> dict[str, str]:
    """ivybt, Python and the key dependencies' versions."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    """Read once a process: each manifest is written twice (running, then finished), and
    each `metadata.version` scans the installed distributions (~1.4 ms apiece)."""
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
        "config": jsonable(config),
        "data": [jsonable(record) for record in data],
        **(jsonable(extra) if extra else {}),
    }


@contextlib.contextmanager
def open_run_folder(
    command: str,
    config: Any,
    *,
    data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    started: datetime,
    folder: str | Path | None = None,
    results_dir: str | Path | None = None,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[Path]:
    """The run folder of one run, with its manifest kept honest around the files written.

    Resolves the folder (`folder`, else the config's output.out, else `<results dir>/<command>-
    <strategy>-<symbol>-<UTC>`), refuses one holding another configuration unless
    `overwrite`, writes manifest.json with status "running", yields the folder for the
    command's files, then rewrites the manifest "finished" (or "failed", re-raising).
    `data` is the record of the series used, or one record per symbol of a universe (the
    folder is then named after `config.data.label`, e.g. SPY+4).
    """
    if isinstance(data, Mapping):  # one series, or a universe's record with its "series"
        records = list(data["series"]) if "series" in data else [data]
    else:
        records = list(data)
    label = data["symbol"] if isinstance(data, Mapping) else config.data.label
    name = default_run_name(command, config.strategy.name, label, started)
    target = resolve_run_folder(folder or config.output.out, name, results_dir)
    dumped = config.model_dump(mode="json")
    check_reusable(target, dumped, overwrite=overwrite)
    if overwrite and read_run_manifest(target) is not None:
        clear_run_files(target)  # the previous run's files only; the user's stay
    seed = None if getattr(config, "study", None) is None else config.study.seed
    common = {"command": command, "config": dumped, "data": records, "started": started,
              "command_line": command_line, "seed": seed}  # fmt: skip
    write_json(target / "manifest.json", build_manifest(status="running", **common))
    try:
        yield target
    except BaseException:
        write_json(target / "manifest.json", build_manifest(status="failed", **common))
        raise
    write_json(target / "manifest.json", build_manifest(status="finished", extra=extra, **common))


def check_writable(folder: str | Path) -> None:
    """Refuse, before any work, a run folder that cannot be created or written: the folder,
    or the nearest folder above it that exists, must be a writable folder (`ConfigError`).
    The commands call it with --out (or the results folder) before loading data."""
    path = Path(folder)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise ConfigError(
            f"cannot write the run folder {path}: {existing} is a file, not a folder; give "
            "--out a folder path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "it" if existing == path else f"{existing}, the folder it would be made in,"
        raise ConfigError(
            f"cannot write the run folder {path}: {where} is not writable (permission denied "
            "or a read-only file system); choose another --out (or --results-dir), or make it "
            "writable"
        )
