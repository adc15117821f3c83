"""Presets: what a run chose, saved under a name to act on (`ivybt preset`, docs/presets.md).

`save_preset(RUN_DIR, name)` reads a finished run folder (manifest.json, metrics.json,
folds.parquet) and keeps, in one JSON file `<presets dir>/<name>.json`:

- `config`: the sections of a backtest of the choice (`ivybt.config.RunConfig` without study
  and output): data (universe, interval, the run's start and end, source, price view, bar
  type and Renko settings), strategy (name or `module:Name`, every parameter resolved),
  execution (costs, fill, direction, size, stops), portfolio and split;
- the choice: a backtest's parameters; a grid's best combination by its objective; a
  search's best trial (`trial=` picks one of a multi-objective search's Pareto front); a
  walk-forward study's last fold's choice, with the fold's dates. Exits a study varied
  (`-p sl=...`; 0: off) go to the execution settings, Renko and `vol_window` parameters to
  the bar and portfolio settings; a universe chosen by `--select-universe` is kept as the
  symbols chosen (the last fold's, for a walk-forward study);
- `fitted`: the bars it was fitted on (dates, each series' SHA-256), `metrics`: the run's
  headline numbers of the choice, `run`: the run folder and its command line;
- `strategy`: the strategy's signature (its parameters' names and kinds, in order);
- `schema_version` and `content_sha256` (SHA-256 of the rest, canonical JSON).

Loading (`load_preset`) refuses with one line (`ConfigError`, exit status 2): a preset of a
newer schema, one whose content hash does not match (edited or damaged), one whose strategy
cannot be found or whose parameters changed names or kinds since it was saved, and one whose
parameters the strategy no longer accepts (`Strategy.resolve_params`).

A preset file is also a configuration file: `ivybt.backtest(preset=...)` and `ivybt backtest
--preset` validate it here, then read its `config` as `--config` reads a run's manifest, so
options given override its fields.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ivybt import __version__, _paths
from ivybt.config import RunConfig, build_config
from ivybt.errors import ConfigError
from ivybt.files import jsonable, write_json
from ivybt.runs.folder import read_run_manifest, utc_now
from ivybt.strategies import Strategy, get_strategy

PRESET_SCHEMA_VERSION = 1
"""The preset file layout this IvyBT writes and reads (older ones too; newer ones refused)."""
PRESET_COMMANDS = ("backtest", "grid", "optimize", "walkforward")
"""Run folders a preset can be saved from."""
CONFIG_SECTIONS = ("data", "strategy", "execution", "portfolio", "split")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_INTRABAR = ("stop_loss", "take_profit", "trailing")


class PresetError(ConfigError):
    """A preset that cannot be used; `reason` is a short word for `ivybt preset list`."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Preset:
    """A loaded, checked preset.

    name, path : its name and file. document : the file's content.
    config : the backtest of its choice (`RunConfig`, strategy parameters resolved).
    strategy : the strategy class it names, checked against the saved signature.
    """

    name: str
    path: Path
    document: dict[str, Any]
    config: RunConfig
    strategy: type[Strategy]

    @property
    def params(self) -> dict[str, float | int]:
        return dict(self.config.strategy.params)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.data.universe

    def __repr__(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return (
            f"<Preset {self.name}: {self.config.strategy.name} {params} on "
            f"{', '.join(self.symbols)} {self.config.data.interval} (from "
            f"{self.document['run']['command']} {self.document['run']['folder']})>"
        )


# -- names and files ---------------------------------------------------------------------


def check_name(name: str) -> str:
    """`name` if it is a preset name (it names a file), else `ConfigError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"a preset name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit, got {name!r}; e.g. --name spy-sma"
        )
    return name


def preset_path(name: str, presets_dir: str | Path | None = None) -> Path:
    """The file of preset `name` in `presets_dir` (default `ivybt._paths.presets_dir()`)."""
    return _paths.presets_dir(presets_dir) / f"{check_name(name)}.json"


def preset_names(presets_dir: str | Path | None = None) -> list[str]:
    """The names of the presets saved in `presets_dir`, sorted."""
    folder = _paths.presets_dir(presets_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.fullmatch(p.stem))


def content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of `document` without its `content_sha256`, as canonical JSON (sorted keys,
    no spaces), after `ivybt.files.jsonable` (what `write_json` writes)."""
    body = {key: value for key, value in jsonable(document).items() if key != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)  # fmt: skip
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def strategy_signature(strategy: type[Strategy]) -> list[dict[str, str]]:
    """The strategy's parameters as a preset stores them: name and kind, in order."""
    return [{"name": p.name, "kind": p.kind.__name__} for p in strategy.params]


# -- save ----------------------------------------------------------------------------------


def save_preset(
    run_dir: str | Path,
    name: str,
    *,
    presets_dir: str | Path | None = None,
    overwrite: bool = False,
    trial: int | None = None,
) -> Preset:
    """Save what the run in `run_dir` chose as preset `name` and return it (loaded back).

    `trial` picks a trial of a search's best (its Pareto front when it has several
    objectives); other runs take none. An existing preset of that name is refused unless
    `overwrite`. Every refusal is one `ConfigError` line.
    """
    path = preset_path(name, presets_dir)
    if path.exists() and not overwrite:
        raise ConfigError(
            f"a preset named {name!r} already exists ({path}); choose another --name, or pass "
            "--overwrite to replace it"
        )
    document = preset_document(run_dir, name, trial=trial)
    write_json(path, document)
    return load_preset(name, presets_dir=presets_dir)


def preset_document(run_dir: str | Path, name: str, *, trial: int | None = None) -> dict[str, Any]:
    """The preset `name` of the run in `run_dir` (module docstring), content hash included."""
    folder = Path(run_dir)
    manifest = read_run_manifest(folder)
    if manifest is None:
        raise ConfigError(
            f"{folder} holds no IvyBT run (no IvyBT manifest.json); give the folder a backtest, "
            "grid, optimize or walkforward run wrote (its --out)"
        )
    command = manifest["command"]
    if command not in PRESET_COMMANDS:
        raise ConfigError(
            f"{folder} holds a {command} run; a preset keeps the choice of a "
            f"{', '.join(PRESET_COMMANDS)} run"
        )
    if manifest.get("status") != "finished":
        raise ConfigError(
            f"{folder} holds a {command} run whose status is {manifest.get('status')!r}, not "
            "'finished'; rerun the same command on that folder to finish it, then save"
        )
    metrics = _read_json(folder / "metrics.json")
    config = manifest.get("config") or {}
    spec = (config.get("strategy") or {}).get("name")
    if not spec:
        raise ConfigError(f"{folder}/manifest.json names no strategy; it is not a run to save")
    strategy = get_strategy(spec)
    if trial is not None and command != "optimize":
        raise ConfigError(f"--trial picks a trial of a search; {folder} holds a {command} run")
    choice = _run_choice(folder, command, config, metrics, strategy, trial)
    sections = _choice_sections(config, strategy, choice)
    checked = build_config(**sections)  # the preset must be a valid backtest
    records = [_data_record(r) for r in manifest.get("data") or []]
    document: dict[str, Any] = {
        "schema_version": PRESET_SCHEMA_VERSION,
        "name": name,
        "saved_at": utc_now().isoformat(),
        "ivybt": __version__,
        "run": {
            "folder": str(folder.resolve()),
            "command": command,
            "finished": manifest.get("finished"),
            "command_line": manifest.get("command_line"),
            "choice": choice.label,
        },
        "strategy": {"name": spec, "params": strategy_signature(strategy)},
        "config": checked.model_dump(
            mode="json",
            exclude={"study": True, "output": True, "strategy": {"space", "constraints"}},
        ),
        "fitted": {
            "start": checked.data.start,
            "end": checked.data.end,
            "first": _first_last(records, "first"),
            "last": _first_last(records, "last"),
            "split": metrics.get("split"),
            "data": records,
            **({"fold": choice.fold} if choice.fold is not None else {}),
        },
        "metrics": choice.metrics,
    }
    document["content_sha256"] = content_hash(document)
    return jsonable(document)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Choice:
    combination: dict[str, Any]  # strategy parameters, exits, bar parameters, by name
    metrics: dict[str, Any]  # label -> metrics
    label: str
    fold: dict[str, Any] | None = None
    symbols: list[str] | None = None  # a universe chosen by --select-universe


def _run_choice(
    folder: Path, command: str, config: Mapping[str, Any], metrics: Mapping[str, Any],
    strategy: type[Strategy], trial: int | None,
) -> _Choice:  # fmt: skip
    """What the run chose, read from its files."""
    chosen = (metrics.get("universe_selection") or {}).get("symbols")
    if command == "backtest":
        return _Choice(
            dict((config.get("strategy") or {}).get("params") or {}),
            {"run": metrics.get("metrics", {})}, "the run's parameters", symbols=chosen,
        )  # fmt: skip
    if command == "grid":
        best = metrics.get("best") or {}
        objective = metrics.get("objective", "sharpe")
        return _Choice(
            {**best.get("params", {}), **best.get("exits", {})},
            {"best": best.get("metrics", {}),
             **_evidence(metrics.get("overfitting"))},
            f"the best combination by {objective}", symbols=chosen,
        )  # fmt: skip
    if command == "optimize":
        return _search_choice(folder, metrics, trial)
    return _fold_choice(folder, metrics, strategy)


def _search_choice(folder: Path, metrics: Mapping[str, Any], trial: int | None) -> _Choice:
    best = list(metrics.get("best") or [])
    numbers = [entry["number"] for entry in best]
    if not best:
        raise ConfigError(f"{folder}/metrics.json lists no best trial; the search found none")
    if trial is None and len(best) > 1:
        raise ConfigError(
            f"{folder} holds a search with {len(best)} best trials (its Pareto front: "
            f"{', '.join(map(str, numbers))}); pick one with --trial NUMBER"
        )
    if trial is not None and trial not in numbers:
        raise ConfigError(
            f"trial {trial} is not among the best trials of {folder} "
            f"({', '.join(map(str, numbers))}); pick one of them with --trial"
        )
    entry = best[numbers.index(trial)] if trial is not None else best[0]
    objectives = ", ".join(metrics.get("objectives") or [])
    return _Choice(
        {**entry.get("params", {}), **entry.get("exits", {})},
        {"trial": entry.get("metrics", {}), **_evidence(metrics.get("overfitting"))},
        f"trial {entry['number']}, best by {objectives}",
        symbols=(metrics.get("universe_selection") or {}).get("symbols"),
    )


def _fold_choice(folder: Path, metrics: Mapping[str, Any], strategy: type[Strategy]) -> _Choice:
    """A walk-forward study's last fold: its choice (folds.parquet's param_* columns), its
    windows and metrics, and its chosen universe (`universe_<SYMBOL>` columns)."""
    path = folder / "folds.parquet"
    try:
        folds = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot read {path}: {err}; the walk-forward run is incomplete"
        ) from None
    if folds.empty:
        raise ConfigError(f"{path} holds no fold; the walk-forward study chose nothing")
    row = folds.sort_values("fold").iloc[-1]
    combination = {
        str(column).removeprefix("param_"): row[column]
        for column in folds.columns
        if str(column).startswith("param_")
    }
    chosen = None
    flags = [c for c in folds.columns if str(c).startswith("universe_")
             and folds[c].dtype == bool]  # fmt: skip
    if flags:
        chosen = [str(c).removeprefix("universe_") for c in flags if bool(row[c])]
    fold = {
        "fold": int(row["fold"]),
        **{key: _stamp(row[key]) for key in ("is_first", "is_last", "oos_first", "oos_last")},
        **{key: int(row[key]) for key in ("is_start", "is_end", "oos_start", "oos_end")},
        "replay": _fold_replay(row),
    }
    prefix = {"fold_is": "is_", "fold_oos": "oos_"}
    from ivybt.kernels.metrics import METRIC_NAMES

    blocks = {label: {name: _number(row.get(f"{p}{name}")) for name in METRIC_NAMES}
              for label, p in prefix.items()}  # fmt: skip
    return _Choice(
        combination,
        {**blocks, "stitched_oos": metrics.get("oos", {}), "wfe": metrics.get("wfe")},
        f"the last fold's choice (fold {fold['fold']}, in-sample {fold['is_first']}.."
        f"{fold['is_last']})",
        fold=fold,
        symbols=chosen,
    )


def _fold_replay(row: pd.Series) -> dict[str, Any]:
    """The backtest options that trade the fold's out-of-sample window exactly as the study
    did (bars [oos_start, oos_end) of the run's bars, indicators warmed up on all the bars
    before): the run's start, `end` just after the fold's last bar and a test split whose
    first bar is oos_start (floor(oos_end x train_split) = oos_start)."""
    last = pd.Timestamp(row["oos_last"])
    daily = last.tzinfo is None and last == last.normalize()
    end = (last + pd.Timedelta(days=1)).strftime("%Y-%m-%d") if daily else (
        last + pd.Timedelta(seconds=1)).isoformat()  # fmt: skip
    split = (int(row["oos_start"]) + 0.5) / int(row["oos_end"])
    return {"end": end, "train_split": split, "run_mode": "test"}


def _evidence(overfitting: Mapping[str, Any] | None) -> dict[str, Any]:
    """PBO and the deflated Sharpe ratio of a study's choice, when it measured them."""
    if not overfitting:
        return {}
    pbo = (overfitting.get("pbo") or {}).get("pbo")
    dsr = (overfitting.get("dsr") or {}).get("dsr")
    kept = {"pbo": pbo, "dsr": dsr}
    return {"evidence": {k: v for k, v in kept.items() if v is not None}} if any(
        v is not None for v in kept.values()) else {}  # fmt: skip


def _choice_sections(
    config: Mapping[str, Any], strategy: type[Strategy], choice: _Choice
) -> dict[str, dict[str, Any]]:
    """The backtest sections of the choice: the run's data, execution, portfolio and split,
    the strategy's resolved parameters, exits and bar parameters put where they belong."""
    from ivybt.bars.timeline import RENKO_PARAMS, UNIVERSE_PARAMS
    from ivybt.studies.space import EXIT_PARAMS

    sections = {name: dict(config.get(name) or {}) for name in CONFIG_SECTIONS}
    data, execution, portfolio = sections["data"], sections["execution"], sections["portfolio"]
    params: dict[str, Any] = {}
    renko = dict(data.get("renko") or {})
    space = (config.get("strategy") or {}).get("space") or {}
    fixed = {name: spec for name, spec in space.items()  # one value: not in a trial's params
             if not any(mark in str(spec) for mark in ":,")}  # fmt: skip
    for name, value in {**fixed, **choice.combination}.items():
        if name in strategy.param_names():
            params[name] = value
        elif name in EXIT_PARAMS:
            number = EXIT_PARAMS[name].kind(value)
            execution[name] = None if number == 0 else number  # 0: off, as in the study
        elif name in RENKO_PARAMS:
            renko[name] = RENKO_PARAMS[name].kind(value)
            if name == "box":
                renko["atr"] = None
            else:
                renko["box"] = None
        elif name in UNIVERSE_PARAMS:
            portfolio[name] = UNIVERSE_PARAMS[name].kind(value)
        else:
            raise ConfigError(
                f"the run chose {name}={value}, which is neither a parameter of "
                f"{strategy.name} ({', '.join(strategy.param_names())}) nor an exit or bar "
                "setting; was the strategy changed after the run?"
            )
    if renko:
        data["renko"] = renko
    sections["strategy"] = {"name": (config.get("strategy") or {}).get("name"),
                            "params": strategy.resolve_params(params)}  # fmt: skip
    if portfolio.get("select_universe") is not None:
        _keep_chosen_universe(sections, choice.symbols)
    return sections


def _keep_chosen_universe(sections: dict[str, dict[str, Any]], chosen: list[str] | None) -> None:
    """A universe chosen by --select-universe becomes the symbols chosen."""
    if not chosen:
        raise ConfigError(
            "the run chose its universe with --select-universe but no symbol was chosen "
            "(or the choice is not in its files): there is nothing to act on"
        )
    data, portfolio = sections["data"], sections["portfolio"]
    order = [s for s in data.get("symbols") or [] if s in chosen]
    data["symbols"] = order or list(chosen)
    portfolio["select_universe"] = None
    for field in ("fixed_weights", "lot_size", "commission", "slippage"):
        mapping = portfolio.get(field) or {}
        portfolio[field] = {s: v for s, v in mapping.items() if s in data["symbols"]}


def _data_record(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("symbol", "interval", "source", "adjusted", "rows", "first", "last", "sha256")
    return {key: record.get(key) for key in keys if key in record}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}; the run folder is incomplete") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path} is not a JSON object; the run folder is damaged")
    return content


def _first_last(records: list[dict[str, Any]], key: str) -> str | None:
    """The earliest first bar (key "first") or the latest last bar of the data records."""
    stamps = [pd.Timestamp(r[key]) for r in records if r.get(key)]
    if not stamps:
        return None
    return _stamp(min(stamps) if key == "first" else max(stamps))


def _stamp(value: Any) -> str | None:
    if pd.isna(value):
        return None
    from ivybt.data.intervals import day_label

    return day_label(pd.Timestamp(value)) if pd.Timestamp(value).tzinfo is None else (
        pd.Timestamp(value).isoformat())  # fmt: skip


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# -- load, list, delete --------------------------------------------------------------------


def load_preset(name: str, *, presets_dir: str | Path | None = None) -> Preset:
    """Preset `name`, checked (module docstring); every refusal is one `PresetError` line."""
    path = preset_path(name, presets_dir)
    if not path.is_file():
        names = preset_names(presets_dir)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PresetError(
            f"no preset named {name!r} in {path.parent}{hint}; `ivybt preset list` shows the "
            f"saved ones, `ivybt preset save RUN_DIR --name {name}` saves one",
            "missing",
        )
    document = _read_document(name, path)
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PresetError(_damaged(name, path, f"its schema_version is {version!r}"), "damaged")
    if version > PRESET_SCHEMA_VERSION:
        raise PresetError(
            f"preset {name!r} was saved by a newer IvyBT (preset schema {version}; IvyBT "
            f"{__version__} reads schema {PRESET_SCHEMA_VERSION} and older); upgrade IvyBT "
            "(pip install -U ivybt) to use it",
            "newer schema",
        )
    recorded, computed = document.get("content_sha256"), content_hash(document)
    if recorded != computed:
        raise PresetError(
            f"preset {name!r} ({path}) fails its content check: SHA-256 "
            f"{str(recorded)[:12]}... recorded, {computed[:12]}... computed, so it was edited "
            "or damaged after it was saved; save it again from its run folder "
            f"({(document.get('run') or {}).get('folder', '?')})",
            "damaged",
        )
    try:
        config_sections = dict(document["config"])
        spec = str(config_sections["strategy"]["name"])
        saved = list(document["strategy"]["params"])
    except (KeyError, TypeError) as err:
        raise PresetError(_damaged(name, path, f"it lacks {err}"), "damaged") from None
    try:
        strategy = get_strategy(spec)
    except ConfigError as err:
        raise PresetError(f"preset {name!r}: {err}", "no strategy") from None
    now = strategy_signature(strategy)
    if now != saved:
        raise PresetError(
            f"preset {name!r} was saved for strategy {spec} with parameters "
            f"{_signature_text(saved)}, but {spec} now declares {_signature_text(now)}: the "
            "strategy changed since the preset was saved; rerun its study and save the preset "
            "again",
            "strategy changed",
        )
    try:
        params = strategy.resolve_params(config_sections["strategy"].get("params"))
    except ConfigError as err:
        raise PresetError(
            f"preset {name!r}: its parameters no longer fit {spec}: {err}", "strategy changed"
        ) from None
    config_sections["strategy"] = {**config_sections["strategy"], "params": params}
    try:
        config = build_config(**config_sections)
    except ConfigError as err:
        raise PresetError(f"preset {name!r}: {err}", "invalid") from None
    return Preset(name, path, document, config, strategy)


def _read_document(name: str, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise PresetError(_damaged(name, path, f"it cannot be read as JSON ({err})"),
                          "damaged") from None  # fmt: skip
    if not isinstance(document, dict):
        raise PresetError(_damaged(name, path, "it is not a JSON object"), "damaged")
    return document


def _damaged(name: str, path: Path, why: str) -> str:
    return (
        f"preset {name!r} ({path}) is not a preset IvyBT can read: {why}; delete it "
        f"(`ivybt preset delete {name}`) and save it again from its run folder"
    )


def _signature_text(signature: list[dict[str, str]]) -> str:
    if not signature:
        return "(none)"
    return ", ".join(f"{p.get('name')} ({p.get('kind')})" for p in signature)


def list_presets(presets_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per saved preset: name, strategy, params, symbols, interval, the command it
    was saved from, when, and `status` ("ok", or why it would be refused: "newer schema",
    "damaged", "no strategy", "strategy changed", "invalid") with `problem`, the line."""
    rows = []
    for name in preset_names(presets_dir):
        path = preset_path(name, presets_dir)
        row: dict[str, Any] = {"name": name, "strategy": None, "params": None, "symbols": None,
                               "interval": None, "from": None, "saved_at": None,
                               "status": "ok", "problem": ""}  # fmt: skip
        try:
            document = _read_document(name, path)
            config = document.get("config") or {}
            data = config.get("data") or {}
            params = (config.get("strategy") or {}).get("params") or {}
            row.update(
                strategy=(config.get("strategy") or {}).get("name"),
                params=" ".join(f"{k}={v}" for k, v in params.items()),
                symbols=",".join(data.get("symbols") or [data.get("symbol") or ""]),
                interval=data.get("interval"),
                saved_at=document.get("saved_at"),
            )
            row["from"] = (document.get("run") or {}).get("command")
            load_preset(name, presets_dir=presets_dir)
        except PresetError as err:
            row.update(status=err.reason, problem=str(err))
        rows.append(row)
    columns = ["name", "strategy", "params", "symbols", "interval", "from", "saved_at",
               "status", "problem"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def delete_preset(name: str, *, presets_dir: str | Path | None = None) -> Path:
    """Remove preset `name` (checked or not: a damaged one may be deleted); its path."""
    path = preset_path(name, presets_dir)
    if not path.is_file():
        load_preset(name, presets_dir=presets_dir)  # the "no preset named" line
    path.unlink()
    return path


def preset_config_file(
    preset: str, *, presets_dir: str | Path | None = None, config: object = None,
    strategy: object = None,
) -> Path:  # fmt: skip
    """The checked preset's file, read as a configuration file by `ivybt.backtest(preset=)`
    and `ivybt backtest --preset` (module docstring); `ConfigError` when a configuration
    file or a strategy is given as well (the preset names both)."""
    if config is not None:
        raise ConfigError("give a preset or a configuration file (--config), not both")
    if strategy is not None:
        raise ConfigError(
            f"preset {preset!r} names its strategy; drop the STRATEGY argument (or run the "
            "strategy without --preset)"
        )
    return load_preset(preset, presets_dir=presets_dir).path
