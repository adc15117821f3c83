"""A batch's record of what happened: `batch.jsonl`, the jobs it ran, and the tables built from
them (`ivybt batch status DIR`, summary.parquet).

`batch.jsonl` holds one JSON object a line, appended by the batch's own process only (the
workers return their results to it), each line in one write and synced to disk (`append_record`),
so a killed batch leaves every earlier line whole; a line cut short by a kill is skipped
when read. Two kinds of lines:

- job states: ``{"time", "job", "hash", "command", "state", ...}`` with state
  pending (queued), running (sent to a worker), finished (``seconds``, ``folder``,
  ``headline``: the metrics of `headline_of`, ``warnings``, ``data_sha256``), failed
  (``error``: one line, ``seconds``), interrupted (Ctrl-C stopped it) or skipped
  (``previous``: finished or failed, so this run did not run it);
- batch events: ``{"time", "batch": "started" | "done" | "interrupted", ...}``.

`jobs.json` (written whole when a batch starts) lists the batch's jobs: name, command, hash,
configuration columns and fully resolved configuration. A job's state is that of its latest
line with its name and hash (a skipped line stands for the finished or failed line before it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt.files import jsonable, write_error
from ivybt.runs.folder import utc_now

LOG_NAME = "batch.jsonl"
JOBS_NAME = "jobs.json"
STATES = ("pending", "running", "finished", "failed", "interrupted", "skipped")
OUTCOMES = ("finished", "failed")
HEADLINE_METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "n_trades",
    "win_rate",
    "exposure",
)
"""The metrics a job's summary row carries (docs/metrics.md)."""
EVIDENCE_COLUMNS = ("pbo", "dsr", "wfe", "n_evaluated")
TIMING_COLUMNS = ("seconds", "finished")
"""Columns that differ between two runs of the same batch (the rest are equal)."""
STATUS_COLUMNS = (
    "job",
    "state",
    "seconds",
    "sharpe",
    "total_return",
    "max_drawdown",
    "pbo",
    "dsr",
    "folder",
)
"""The columns `ivybt batch status` prints."""


def append_record(path: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """Append `record` (with its `time`) to the JSON-lines file `path` as one line: one
    write, then fsync, so the line is whole on disk or absent. A line a killed writer left
    without its newline is ended first. Returns the record written."""
    line = {"time": utc_now().isoformat(), **record}
    data = (json.dumps(jsonable(line), allow_nan=False, separators=(",", ":")) + "\n").encode()
    try:
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(handle).st_size and _last_byte(path) != b"\n":
                data = b"\n" + data
            os.write(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
    except OSError as err:
        converted = write_error(err, path)
        if converted is None:
            raise
        raise converted from err
    return line


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every whole record of the JSON-lines file `path` (none if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a kill
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def latest_states(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(job, hash) -> the job's current state record: its latest line, a skipped line
    replaced by the finished or failed line it stands for."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    outcome: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if "job" not in record:
            continue
        key = (str(record["job"]), str(record.get("hash")))
        if record.get("state") in OUTCOMES:
            outcome[key] = dict(record)
        if record.get("state") == "skipped" and key in outcome:
            latest[key] = outcome[key]
        else:
            latest[key] = dict(record)
    return latest


def last_outcomes(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(job, hash) -> the job's latest finished or failed record."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("state") in OUTCOMES and "job" in record:
            found[(str(record["job"]), str(record.get("hash")))] = dict(record)
    return found


def headline_of(command: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A job's summary numbers from its metrics.json: `HEADLINE_METRICS`, the parameters
    they belong to, what they measure (`basis`), and PBO, DSR, WFE and the number of
    combinations or trials evaluated where the command has them.

    basis: "backtest" (one parameter set on the whole range, or its train/test part),
    "in-sample best" (a grid's or search's best combination on the bars it was chosen on:
    optimistic; read it with PBO and DSR), "out-of-sample" (a walk-forward's stitched
    out-of-sample windows).
    """
    overfitting: Mapping[str, Any] = metrics.get("overfitting") or {}
    pbo = dsr = wfe = evaluated = None
    if command == "backtest":
        values, params, basis = (
            metrics.get("metrics") or {},
            metrics.get("params") or {},
            "backtest",
        )
    elif command in ("grid", "optimize"):  # a grid's best row; a search's first best trial
        best = metrics.get("best") or {}
        if isinstance(best, list):
            best = best[0] if best else {}
        values, params, basis = (
            best.get("metrics") or {},
            best.get("params") or {},
            "in-sample best",
        )
        pbo = (overfitting.get("pbo") or {}).get("pbo")
        dsr = (overfitting.get("dsr") or {}).get("dsr")
        evaluated = metrics.get("n_combinations" if command == "grid" else "n_trials")
    else:
        values, basis = metrics.get("oos") or {}, "out-of-sample"
        folds = metrics.get("folds") or []
        params = {"last fold": (folds[-1].get("params") or {})} if folds else {}
        pbo, dsr = overfitting.get("mean_pbo"), overfitting.get("mean_dsr")
        wfe, evaluated = metrics.get("wfe"), metrics.get("n_combinations")
    return {
        "basis": basis,
        "best_params": _params_text(params),
        **{name: values.get(name) for name in HEADLINE_METRICS},
        "pbo": pbo,
        "dsr": dsr,
        "wfe": wfe,
        "n_evaluated": evaluated,
    }


def _params_text(params: Mapping[str, Any]) -> str:
    parts = []
    for name, value in params.items():
        if isinstance(value, Mapping):
            parts.append(f"{name}: {_params_text(value)}")
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def read_jobs(folder: Path) -> dict[str, Any] | None:
    """The batch's jobs.json, or None when the folder holds none."""
    try:
        content = json.loads((folder / JOBS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and "jobs" in content else None


def summary_frame(
    jobs: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]], *, live: bool
) -> pd.DataFrame:
    """One row per job of `jobs` (jobs.json's entries), in order: its configuration
    columns, state, headline numbers, time, folder, report and error.

    A job with no line for its hash is "pending"; with `live` False (no batch process holds
    the folder) a job still "running" is shown "interrupted": its process is gone.
    """
    states = latest_states(records)
    rows = []
    for job in jobs:
        record = states.get((str(job["name"]), str(job["hash"])), {})
        state = record.get("state", "pending")
        if state == "running" and not live:
            state = "interrupted"
        headline = (record.get("headline") or {}) if state == "finished" else {}
        folder = record.get("folder") or f"jobs/{job['name']}"
        rows.append(
            {
                **dict(job["columns"]),
                "state": state,
                "basis": headline.get("basis"),
                "best_params": headline.get("best_params"),
                **{name: headline.get(name) for name in HEADLINE_METRICS},
                **{name: headline.get(name) for name in EVIDENCE_COLUMNS},
                "seconds": record.get("seconds") if state in OUTCOMES else None,
                "finished": record.get("time") if state in OUTCOMES else None,
                "folder": folder,
                "report": f"{folder}/report.html" if state == "finished" else None,
                "error": record.get("error") if state == "failed" else None,
                "hash": job["hash"],
            }
        )
    frame = pd.DataFrame(rows)
    if rows:  # the matrix columns (of every job's keys) go with the configuration's
        matrix = [name for name in frame.columns if str(name).startswith("matrix.")]
        others = [name for name in frame.columns if name not in matrix]
        first = others.index("state")
        frame = frame[others[:first] + matrix + others[first:]]
    for name in (*HEADLINE_METRICS, *EVIDENCE_COLUMNS, "seconds"):
        if name in frame:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def counts(frame: pd.DataFrame) -> dict[str, int]:
    """Jobs per state, in `STATES` order (states with no job left out)."""
    found = frame["state"].value_counts() if len(frame) else pd.Series(dtype=int)
    return {state: int(found[state]) for state in STATES if state in found}
