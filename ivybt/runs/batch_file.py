"""Batch files: many runs in one YAML file, for `ivybt batch FILE` and `ivybt.batch(...)`.

A batch file lists jobs; each job is one run of the configuration model (the sections of a
`--config` file: data, strategy, execution, portfolio, split, study) and the command that
runs it (backtest, grid, optimize, walkforward)::

    name: demo                      # the batch folder: results/batch-<name>
    objective: sharpe               # the metric summary.html ranks the jobs by
    defaults:                       # sections every job starts from
      data: {source: sample, start: 2010-01-01}
    jobs:
      - command: grid
        strategy: {name: sma_cross, space: {fast: 5:50:5, slow: 20:200:20}}
        matrix:                     # one job per combination of these values
          symbol: [SPY, MSFT, AAPL]
      - command: backtest
        strategy: {params: {fast: 10, slow: 50}}
        matrix: {strategy: [sma_cross, ema_cross], symbol: [SPY, MSFT]}

`load_batch` reads and validates the whole file before anything runs: each job's
`RunConfig` is built as the command's own (`ivybt.config.build_config` over the sections of
`ivybt.config_file`: `for_command`, `study_sections`), then checked as far as it can be
without bars (the strategy and its parameters, the space, the objective, the windows, a
bundled series that does not exist). The first problem is one `ConfigError` line naming the
batch file, the job and the field.

Decisions (docs/batch.md):

- Layers, lowest first: `defaults`, the job's own sections, then the matrix values (the
  file's top-level `matrix` crossed with the job's own; a key in both takes the job's). A
  field replaces the field below it; a mapping field (strategy.params, strategy.space,
  portfolio.lot_size, ...) is merged name by name (`ivybt.config_file.merge_sections`).
- Matrix keys: `symbol`, `symbols` (a list or "A,B"), `universe` (a universe file, or a
  list of symbols), `interval`, `strategy` (a name, or a mapping of strategy fields such as
  `{name: rsi_reversion, space: {...}}`), `command`, a section (`execution: [{...}, ...]`,
  mappings merged into it) or any field as a dotted path (`execution.commission`,
  `strategy.space.fast`, `study.windows.in_sample`). The product of every key's values,
  in the order written, gives the jobs.
- Paths inside a batch file (universe files) are relative to the batch file's folder.
- Job names: the job's `name`, else `<command>-<strategy>-<symbol or universe>`; then the
  value of every other matrix key (`-1h`, `-commission=0.002`); unsafe characters become `_`.
  Two jobs with one name are refused (give one a `name:`), so a job's folder and its records
  are its own.
- What a command does not use is dropped when it comes from `defaults` (a grid ignores
  `study.trials`, a backtest the study section and `strategy.space`): defaults are shared by
  jobs of every command. Set by the job itself, it is an error, as on the command line.
- A job's hash (`job_hash`) is the SHA-256 of its command and fully resolved configuration,
  the output folder left out: the identity a rerun of the batch skips finished jobs by.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivybt.config import RunConfig, build_config, describe_validation_error
from ivybt.config_file import (
    SECTIONS,
    STUDY_FIELDS,
    for_command,
    merge_sections,
    read_config_document,
    sections_of,
    study_sections,
)
from ivybt.errors import ConfigError

Command = Literal["backtest", "grid", "optimize", "walkforward"]
COMMANDS: tuple[str, ...] = ("backtest", "grid", "optimize", "walkforward")
STUDY_KIND = {"grid": "grid", "optimize": "search", "walkforward": "walkforward"}
"""The study kind (`ivybt.config.StudyConfig.kind`) each study command runs."""
JOB_SECTIONS = tuple(name for name in SECTIONS if name != "output")
"""Sections a job may set: the run folder is the batch's (BATCH_DIR/jobs/<name>)."""
MATRIX_SHORTHANDS = {
    "symbol": ("data", "symbol"),
    "symbols": ("data", "symbols"),
    "interval": ("data", "interval"),
}
"""Matrix keys that name one field (`universe`, `strategy` and `command` are read apart)."""
NAME_KEYS = (
    "command",
    "strategy",
    "strategy.name",
    "symbol",
    "symbols",
    "universe",
    "data.symbol",
    "data.symbols",
)
"""Matrix keys the default job name already shows (command-strategy-symbol)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=^+-]+")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Section = dict[str, Any] | None
MatrixValues = list[Any]


class JobEntry(_Model):
    """One entry of `jobs:`: a command, sections, an optional name and matrix."""

    command: Command | None = None
    name: str | None = Field(None, min_length=1)
    matrix: dict[str, MatrixValues] = Field(default_factory=dict)
    data: Section = None
    strategy: Section = None
    execution: Section = None
    portfolio: Section = None
    split: Section = None
    study: Section = None

    @field_validator("matrix", mode="after")
    @classmethod
    def _values_given(cls, matrix: dict[str, MatrixValues]) -> dict[str, MatrixValues]:
        return _check_matrix(matrix)


class Defaults(_Model):
    """`defaults:`: the sections (and command) every job starts from."""

    command: Command | None = None
    data: Section = None
    strategy: Section = None
    execution: Section = None
    portfolio: Section = None
    split: Section = None
    study: Section = None


class BatchFile(_Model):
    """A whole batch file (the module docstring)."""

    name: str | None = Field(None, min_length=1)
    objective: str = "sharpe"
    defaults: Defaults = Field(default_factory=Defaults)
    matrix: dict[str, MatrixValues] = Field(default_factory=dict)
    jobs: list[JobEntry] = Field(min_length=1)

    @field_validator("matrix", mode="after")
    @classmethod
    def _values_given(cls, matrix: dict[str, MatrixValues]) -> dict[str, MatrixValues]:
        return _check_matrix(matrix)

    @field_validator("objective", mode="after")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from ivybt.kernels.metrics import METRIC_NAMES

        if value not in METRIC_NAMES:
            near = difflib.get_close_matches(value, METRIC_NAMES, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(
                f"unknown metric {value!r}; {hint}choose one of {', '.join(METRIC_NAMES)}"
            )
        return value


def _check_matrix(matrix: dict[str, MatrixValues]) -> dict[str, MatrixValues]:
    for key, values in matrix.items():
        if not values:
            raise ValueError(f"matrix key {key!r} lists no values; give at least one")
    return matrix


@dataclass(frozen=True)
class Job:
    """One run of a batch: its name, command, resolved configuration and identity.

    config : the `RunConfig` the command runs, fully resolved (a backtest's parameters with
        their defaults), output.out left unset (the batch gives each job its folder).
    hash : `job_hash(command, config)`, what a rerun skips a finished job by.
    entry : the index of the job's entry in `jobs:`.
    matrix : the matrix values this job was made with, by key (labels, for the summary).
    """

    name: str
    command: str
    config: RunConfig
    hash: str
    entry: int
    matrix: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The summary's configuration columns of this job (`ivybt.runs.batch_log`)."""
        config = self.config
        study = config.study
        if self.command == "backtest":
            params = " ".join(f"{k}={v}" for k, v in config.strategy.params.items())
        else:
            params = " ".join(f"{k}={v}" for k, v in config.strategy.space.items())
        return {
            "job": self.name,
            "command": self.command,
            "strategy": config.strategy.name,
            "symbols": ",".join(config.data.universe),
            "interval": config.data.interval,
            "start": config.data.start,
            "end": config.data.end,
            "bars": config.data.bars,
            "params": params or "defaults",
            "objective": "sharpe" if study is None else study.objective,
            **{f"matrix.{key}": _text(value) for key, value in self.matrix.items()},
        }


@dataclass(frozen=True)
class BatchPlan:
    """A validated batch: its name, where it came from, the summary's objective and jobs."""

    name: str
    source: str
    objective: str
    jobs: tuple[Job, ...]

    def job(self, name: str) -> Job:
        return next(job for job in self.jobs if job.name == name)


def load_batch(
    source: str | Path | Mapping[str, Any], *, default_name: str | None = None
) -> BatchPlan:
    """Read, expand and validate a batch: a YAML file's path, or the same as a mapping
    (whose paths are relative to the current folder).

    The batch's name is its `name:`, else `default_name`, else the file's stem. Every job
    is built and checked before this returns (the module docstring); the first problem is
    one `ConfigError` line naming the batch, the job and the field.
    """
    if isinstance(source, Mapping):
        where, content, base = "batch", dict(source), Path.cwd()
    else:
        path = Path(source)
        where, base = f"batch file {path}", path.parent
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(
                f"batch file {path} {what}; give a batch file: YAML with a 'jobs:' list "
                "(docs/batch.md, e.g. configs/batch-demo.yaml)"
            )
        content = read_config_document(path)
        default_name = default_name or path.stem
    if not isinstance(content, Mapping):
        shown = "nothing" if content is None else f"a {type(content).__name__}"
        raise ConfigError(
            f"{where} holds {shown}, not a batch; write a mapping with a 'jobs:' list (and "
            "optionally name, objective, defaults, matrix), see docs/batch.md"
        )
    model = _validate_model(content, where)
    name = model.name or default_name
    if name is None:
        raise ConfigError(
            f"{where} has no name; add name: <batch name> (its folder is then "
            "results/batch-<name>), or give out= a folder"
        )
    jobs: list[Job] = []
    for index, entry in enumerate(model.jobs):
        jobs.extend(_expand(model, index, entry, where, base))
    _refuse_duplicates(jobs, where)
    return BatchPlan(
        name=_safe(name),
        source=str(source) if not isinstance(source, Mapping) else "<mapping>",
        objective=model.objective,
        jobs=tuple(jobs),
    )


def job_hash(command: str, config: RunConfig) -> str:
    """16 hex digits of the SHA-256 of `command` and `config` (output folder left out)."""
    dumped = config.model_dump(mode="json")
    dumped.pop("output", None)
    text = json.dumps(
        {"command": command, "config": dumped}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def default_folder_name(name: str) -> str:
    """The batch folder's name under the results folder: `batch-<name>` (`name` itself when
    it already starts with "batch")."""
    return name if name.startswith("batch") else f"batch-{name}"


# -- the model -----------------------------------------------------------------------------


_ENTRY_KEYS = tuple(JobEntry.model_fields)
_TOP_KEYS = tuple(BatchFile.model_fields)
_DEFAULT_KEYS = tuple(Defaults.model_fields)


def _validate_model(content: Mapping[str, Any], where: str) -> BatchFile:
    _unknown_keys(content, _TOP_KEYS, where, "")
    defaults = content.get("defaults")
    if isinstance(defaults, Mapping):
        _unknown_keys(defaults, _DEFAULT_KEYS, where, "defaults.")
    jobs = content.get("jobs")
    if isinstance(jobs, list):
        for index, entry in enumerate(jobs):
            if isinstance(entry, Mapping):
                _unknown_keys(entry, _ENTRY_KEYS, where, f"jobs[{index}].")
    try:
        return BatchFile.model_validate(content)
    except ValidationError as err:
        text = describe_validation_error(err)
        text = re.sub(r"\bjobs\.(\d+)\b", r"jobs[\1]", text)
        raise ConfigError(f"{where}: {text}") from None


def _unknown_keys(mapping: Mapping[Any, Any], known: Sequence[str], where: str, at: str) -> None:
    for key in mapping:
        if key in known:
            continue
        if key == "output":
            raise ConfigError(
                f"{where}: {at}output: a batch gives each job its run folder "
                "(BATCH_DIR/jobs/<name>); drop the output section and choose the batch "
                "folder with --out"
            )
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown field {at}{key}{hint}; fields: {', '.join(known)}")


# -- expansion -----------------------------------------------------------------------------


@dataclass
class _Draft:
    """A job being built: its sections, what the job itself set, its command, and each
    matrix key's label (for the name) and value (for the summary)."""

    sections: dict[str, dict[str, Any]]
    own: set[str]  # "section.field" paths the job's entry or matrix set
    command: str | None
    labels: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key -> (label, extra)
    values: dict[str, Any] = field(default_factory=dict)
    universe_label: str | None = None


def _expand(model: BatchFile, index: int, entry: JobEntry, where: str, base: Path) -> list[Job]:
    """The jobs of one entry: its matrix crossed (the file's matrix first)."""
    at = f"{where}: jobs[{index}]"
    defaults = _entry_sections(model.defaults, f"{where}: defaults")
    own = _entry_sections(entry, at)
    start = merge_sections(defaults, own)
    matrix = {**model.matrix, **entry.matrix}
    keys = list(matrix)
    jobs = []
    for combination in itertools.product(*(matrix[key] for key in keys)):
        draft = _Draft(
            sections={name: dict(fields) for name, fields in start.items()},
            own={f"{section}.{name}" for section, fields in own.items() for name in fields},
            command=entry.command or model.defaults.command,
        )
        for key, value in zip(keys, combination, strict=True):
            _assign(draft, key, value, f"{at}: matrix.{key}", base)
        name = _job_name(entry, draft, keys)
        label = f"{where}: job {name} (jobs[{index}])"
        if draft.command is None:
            raise ConfigError(
                f"{label}: command: no command given; add command: "
                f"{' | '.join(COMMANDS)} to the job (or to defaults)"
            )
        config = job_config(draft.command, draft.sections, own=draft.own, where=label)
        jobs.append(
            Job(
                name=name,
                command=draft.command,
                config=config,
                hash=job_hash(draft.command, config),
                entry=index,
                matrix=dict(draft.values),
            )
        )
    return jobs


def _entry_sections(entry: JobEntry | Defaults, where: str) -> dict[str, dict[str, Any]]:
    content = {name: getattr(entry, name) for name in JOB_SECTIONS}
    return sections_of({k: v for k, v in content.items() if v is not None}, where)


def _assign(draft: _Draft, key: str, value: Any, where: str, base: Path) -> None:
    """Lay one matrix value over the draft (the module docstring's matrix keys)."""
    if key == "command":
        if value not in COMMANDS:
            raise ConfigError(
                f"{where}: unknown command {value!r}; commands: {', '.join(COMMANDS)}"
            )
        draft.command = value
        draft.values[key], draft.labels[key] = value, (str(value), False)
    elif key == "universe":
        symbols, label = _universe(value, where, base)
        _set(draft, ("data", "symbols"), symbols)
        draft.universe_label = label
        draft.values[key], draft.labels[key] = label, (label, False)
    elif key == "strategy" and not isinstance(value, Mapping):
        _set(draft, ("strategy", "name"), value)
        draft.values[key], draft.labels[key] = value, (str(value), False)
    elif key in JOB_SECTIONS:  # a mapping of the section's fields, merged into it
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: each value of a section key must be a mapping of {key} fields, "
                f"got {value!r}; or give one field as a dotted key ({key}.<field>)"
            )
        for field_name, field_value in sections_of({key: value}, where)[key].items():
            previous = draft.sections.get(key, {}).get(field_name)
            if isinstance(field_value, Mapping) and isinstance(previous, Mapping):
                field_value = {**previous, **field_value}  # as merge_sections does
            _set(draft, (key, field_name), field_value)
        named = key == "strategy" and value.get("name") is not None
        shown = str(value["name"]) if named else _text(dict(value))
        draft.values[key], draft.labels[key] = shown, (shown, not named)
    else:
        path = MATRIX_SHORTHANDS.get(key) or tuple(key.split("."))
        if len(path) < 2 or path[0] not in JOB_SECTIONS or not all(path):
            known = ", ".join([*MATRIX_SHORTHANDS, "universe", "command", *JOB_SECTIONS])
            raise ConfigError(
                f"{where}: unknown matrix key {key!r}; give one of {known}, or a field as "
                "section.field (e.g. execution.commission, strategy.space.fast)"
            )
        if path[:2] == ("strategy", "space") and len(path) == 3:
            value = _spec_text(value)  # 10 -> "10", [5, 9] -> "5,9", as in config files
        _set(draft, path, value)
        draft.values[key], draft.labels[key] = value, (_label(key, value), key not in NAME_KEYS)


def _set(draft: _Draft, path: Sequence[str], value: Any) -> None:
    """Set the field at `path` (section, field, keys...) of the draft's sections; a symbol
    replaces a universe and back, as on the command line."""
    section = draft.sections.setdefault(path[0], {})
    if tuple(path[:2]) == ("data", "symbol"):
        section.pop("symbols", None)
    elif tuple(path[:2]) == ("data", "symbols"):
        section.pop("symbol", None)
    target = section
    for part in path[1:-1]:
        nested = target.get(part)
        target[part] = dict(nested) if isinstance(nested, Mapping) else {}
        target = target[part]
    target[path[-1]] = value
    draft.own.add(f"{path[0]}.{path[1]}")


def _universe(value: Any, where: str, base: Path) -> tuple[tuple[str, ...], str]:
    """A universe matrix value: a universe file (relative to the batch file's folder) or a
    list of symbols (or "A,B,C"); returns the symbols and the label for the job's name."""
    from ivybt.data.universe import as_symbols, read_universe

    try:
        if isinstance(value, str) and "," not in value:
            path = Path(value)
            return read_universe(path if path.is_absolute() else base / path), path.stem
        symbols = as_symbols(value)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    more = len(symbols) - 1
    return symbols, symbols[0] + (f"+{more}" if more else "")


def _job_name(entry: JobEntry, draft: _Draft, keys: Sequence[str]) -> str:
    """`name` plus every matrix label, else command-strategy-symbol plus the labels the
    default name does not already show."""
    if entry.name is not None:
        return _safe("-".join([entry.name, *(draft.labels[key][0] for key in keys)]))
    extra = [draft.labels[key][0] for key in keys if draft.labels[key][1]]
    strategy = str(draft.sections.get("strategy", {}).get("name") or "strategy")
    data = draft.sections.get("data", {})
    if draft.universe_label is not None:
        where = draft.universe_label
    elif data.get("symbols") is not None:
        symbols = data["symbols"]
        listed = symbols.split(",") if isinstance(symbols, str) else list(symbols)
        more = len(listed) - 1
        where = str(listed[0]).strip().upper() + (f"+{more}" if more > 0 else "")
    else:
        where = str(data.get("symbol") or "symbol").strip().upper()
    return _safe("-".join([draft.command or "job", strategy.rpartition(":")[2], where, *extra]))


def _label(key: str, value: Any) -> str:
    """A matrix value in a job's name: the value itself for the keys of the default name
    and the interval, else `<last part of the key>=<value>` (commission=0.002)."""
    if key in NAME_KEYS or key in ("interval", "data.interval"):
        return _text(value)
    return f"{key.rpartition('.')[2]}={_text(value)}"


def _spec_text(value: Any) -> Any:
    """A space value as a spec string, as `ivybt.config_file` reads a file's space."""
    return sections_of({"strategy": {"space": {"x": value}}}, "matrix")["strategy"]["space"]["x"]


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("_") or "job"


def _refuse_duplicates(jobs: Sequence[Job], where: str) -> None:
    seen: dict[str, Job] = {}
    for job in jobs:
        first = seen.get(job.name)
        if first is not None:
            entries = (
                f"jobs[{first.entry}] and jobs[{job.entry}] both make"
                if first.entry != job.entry
                else f"jobs[{job.entry}] makes two jobs named"
            )
            raise ConfigError(
                f"{where}: {entries} the job {job.name!r}; give them distinct name: fields "
                "(a matrix adds its values to the name), so each job has its own folder"
            )
        seen[job.name] = job


# -- one job's configuration and the checks before any bars ------------------------------


def job_config(
    command: str,
    sections: Mapping[str, Mapping[str, Any]],
    *,
    own: set[str] | frozenset[str] = frozenset(),
    where: str = "job",
) -> RunConfig:
    """The `RunConfig` `command` runs for `sections`, checked as far as it can be without bars.

    Built as the command builds it (`for_command`, `study_sections`, `build_config`; a
    backtest's parameters resolved with their defaults), then `check_job`. `own` holds the
    "section.field" paths the job itself set: one its command does not use is an error; the
    same field from the defaults is dropped. Every error is one `ConfigError` line starting
    with `where` and naming the field.
    """
    sections = {name: dict(fields) for name, fields in sections.items()}
    if command == "backtest":
        for path in sorted(own):
            if path == "strategy.space" or path.startswith("study."):
                raise ConfigError(
                    f"{where}: {path} is not used by a backtest (it runs strategy.params); "
                    "drop it, or make the job a grid, optimize or walkforward"
                )
        sections = for_command(sections, study=False)
    else:
        kind = STUDY_KIND[command]
        for path in sorted(own):
            name = path.partition(".")[2]
            if path.startswith("study.") and name not in STUDY_FIELDS[kind]:
                users = [c for c, k in STUDY_KIND.items() if name in STUDY_FIELDS[k]]
                raise ConfigError(
                    f"{where}: {path} is not used by {command} (only by "
                    f"{', '.join(users) or 'no command'}); drop it from this job"
                )
        sections = for_command(sections, study=True)
        study = sections.setdefault("study", {})
        objectives = study.get("objectives")
        if kind == "search" and objectives and "objective" not in study:
            study["objective"] = next(iter(objectives))  # as `ivybt optimize --objective`
        sections = study_sections(sections, kind)
        if kind == "walkforward" and not (sections["study"].get("windows") or {}):
            sections["study"].pop("windows", None)
    config = _build(sections, where)
    return check_job(command, config, where=where)


def _build(sections: Mapping[str, Mapping[str, Any]], where: str) -> RunConfig:
    try:
        return build_config(**sections)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def check_job(command: str, config: RunConfig, *, where: str = "job") -> RunConfig:
    """The checks `command` makes before it loads any bars, each error one line starting
    with `where` and naming the field; returns `config` (a backtest's with its parameters
    resolved)."""
    from ivybt.strategies import get_strategy

    strategy = _field(where, "strategy.name", lambda: get_strategy(config.strategy.name))
    _check_data(config, where)
    if command == "backtest":
        params = _field(
            where, "strategy.params", lambda: strategy.resolve_params(config.strategy.params)
        )
        return config.model_copy(
            update={"strategy": config.strategy.model_copy(update={"params": params})}
        )
    from ivybt.runs.grid import check_objective

    study = config.study
    assert study is not None
    for name in (study.objective, *study.objectives):
        _field(where, "study.objective", lambda name=name: check_objective(name))
    if command == "grid":
        from ivybt.runs.grid import plan_space

        _field(where, "strategy.space", lambda: plan_space(config))
    elif command == "optimize":
        from ivybt.runs.optimize import check_search

        _field(where, "strategy.space", lambda: check_search(config))
    else:
        from ivybt.runs.walkforward import check_walk_forward

        if study.windows is None:
            raise ConfigError(
                f"{where}: study.windows: a walkforward job needs windows, e.g. "
                "study: {windows: {in_sample: 3y, out_of_sample: 1y}}"
            )
        _field(where, "strategy.space", lambda: check_walk_forward(config))
    return config


def _field[T](where: str, name: str, check: Callable[[], T]) -> T:
    """`check()`, its `ConfigError` prefixed with `where` and the field `name`."""
    try:
        return check()
    except ConfigError as err:
        raise ConfigError(f"{where}: {name}: {err}") from None


def _check_data(config: RunConfig, where: str) -> None:
    """The data section's checks that read no bars: the interval, the dates, and with
    source "sample" that every symbol is bundled at the interval (the catalog), so a
    mistyped symbol fails before the batch, not in its job."""
    from ivybt.data.intervals import parse_interval

    data = config.data
    interval = _field(where, "data.interval", lambda: parse_interval(data.interval).name)
    for name in ("start", "end"):
        value = getattr(data, name)
        if value is not None:
            _field(where, f"data.{name}", lambda value=value: _timestamp(value))
    if data.source != "sample":
        return
    from ivybt.data.sample import find_sample, sample_catalog

    field_name = "data.symbols" if data.is_portfolio else "data.symbol"
    for symbol in data.universe:
        if find_sample(symbol, interval) is None:
            bundled = ", ".join(f"{s.symbol} {s.interval}" for s in sample_catalog())
            raise ConfigError(
                f"{where}: {field_name}: {symbol} {interval} is not bundled (source sample); "
                f"bundled series: {bundled}"
            )


def _timestamp(value: str) -> None:
    import pandas as pd

    try:
        pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(
            f"expected a date like 2020-01-31 or a time like '2020-01-31 14:30', got {value!r}"
        ) from None
