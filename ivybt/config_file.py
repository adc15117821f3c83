"""Run configuration files: `ivybt <command> --config FILE` and `config=` of the Python API.

A file holds sections of the one configuration model (`ivybt.config.RunConfig`: data,
strategy, execution, split, study, output), in YAML::

    data: {symbol: SPY, source: sample}
    strategy:
      name: sma_cross
      space: {fast: "5:25:5", slow: "20:80:15"}
    execution: {commission: 0.002}

or it is a run's manifest.json, whose fully resolved "config" is used, so
`ivybt grid --config results/<run>/manifest.json` reproduces that run.

Decisions:

- A value given on the command line (or as an API keyword) replaces the file's value of that
  one field; strategy.params and strategy.space are merged per parameter name, so
  `-p fast=5` replaces only `fast` (`merge_sections`). Defaults never replace the file's values.
- YAML is read with PyYAML's SafeLoader (the loader of `yaml.safe_load`: plain data only)
  minus two YAML 1.1 rules that silently change a run: base-60 numbers (`fast: 5:25:5` would
  be 19505) and dates (`start: 2015-01-01` would be a date object). Both stay strings.
- Files ending in .json (manifests) are read as JSON, so numbers like 1e-05 stay numbers.
- A YAML file may expand to at most `MAX_CONFIG_NODES` values once its aliases are expanded
  (counted on the parsed node graph, before any Python object is built): anchors and
  aliases that multiply data (a "billion laughs" file) fail with one line at once.
- A manifest's output section is dropped: reproducing a run writes a new run folder (or the
  one --out names) instead of replacing the run being reproduced.
- strategy.space values may be numbers or lists (`fast: 10`, `signal: [5, 9, 12]`); they
  become the spec strings of the CLI ("10", "5,9,12").
- A file is read for what the command runs (`for_command`). A grid, search or walk-forward
  takes the file's fixed strategy.params as one-value specs of its space unless the space
  (or -p) names them: `ivybt grid --config <backtest>/manifest.json -p fast=5:20` grids
  fast around that backtest's other parameters. A backtest runs one parameter set, so a
  grid or search file's strategy.space and study section are dropped with one warning line
  naming them and the parameters the backtest runs (strategy.params, -p, else the
  strategy's defaults): the file stays usable for a quick backtest, and nothing is ignored
  silently.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ivybt.config import RunConfig
from ivybt.errors import ConfigError

SECTIONS = tuple(RunConfig.model_fields)
_STR = "tag:yaml.org,2002:str"
_NUMBERS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
MAX_CONFIG_NODES = 100_000
"""Values (YAML nodes, aliases expanded) a config file may hold: a run needs a few dozen, and
a file of anchors and aliases ("billion laughs") must fail at once, not after minutes."""


class _Loader(yaml.SafeLoader):
    """SafeLoader whose base-60 numbers and dates stay strings (see the module's decisions)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and (tag == _TIMESTAMP or (tag in _NUMBERS and ":" in value)):
            return _STR
        return tag


def load_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The sections of a YAML configuration file, or of a run's manifest.json (its "config").

    Raises a one-line ConfigError naming the file (and the line, for a syntax error) when it
    cannot be read, is not YAML, is not a mapping of sections, or names an unknown section.
    Fields inside the sections are checked by the model when the run's config is built.
    """
    path = Path(path)
    content = read_config_document(path)
    if isinstance(content, Mapping) and {"schema_version", "config"} <= content.keys():
        content = content["config"]  # a run's manifest: its fully resolved configuration
        if isinstance(content, Mapping):
            content = {name: fields for name, fields in content.items() if name != "output"}
    if not isinstance(content, Mapping):
        shown = "an empty file" if content is None else f"a {type(content).__name__}"
        raise ConfigError(
            f"config file {path} holds {shown}, not a mapping of sections; write sections such "
            f"as 'data:' and 'strategy:' at the top level ({', '.join(SECTIONS)})"
        )
    return sections_of(content, f"config file {path}")


def read_config_document(path: str | Path) -> Any:
    """The plain data of the YAML file (or .json manifest) at `path`, read as every
    configuration file is (the module's decisions: safe loader, specs and dates stay text,
    bounded expansion). One-line ConfigError naming the file when it cannot be read or
    parsed. `ivybt.runs.batch_file` reads batch files with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(
            f"cannot read config file {path}: {reason}; give a YAML file or a run's manifest.json"
        ) from None
    return _parse(path, text)


def sections_of(content: Mapping[Any, Any], where: str) -> dict[str, dict[str, Any]]:
    """`content` (a mapping of section name -> fields) as the sections of a run, checked:
    an unknown section or a section that is not a mapping is a one-line ConfigError that
    starts with `where` ("config file configs/x.yaml", or a batch file's job); a section
    given as null is left out, and strategy.space values become spec strings (`_spec`)."""
    sections: dict[str, dict[str, Any]] = {}
    for name, fields in content.items():
        if name not in SECTIONS:
            close = difflib.get_close_matches(str(name), SECTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}: unknown section {name!r}{hint}; sections: {', '.join(SECTIONS)}"
            )
        if fields is None:  # e.g. `study: null` in a backtest's manifest
            continue
        if not isinstance(fields, Mapping):
            raise ConfigError(
                f"{where}: section {name!r} must be a mapping of fields such as "
                f"'{name}: {{...}}' with one 'field: value' per line, not {fields!r}"
            )
        sections[name] = dict(fields)
    space = sections.get("strategy", {}).get("space")
    if isinstance(space, Mapping):
        sections["strategy"]["space"] = {name: _spec(value) for name, value in space.items()}
    return sections


def merge_sections(
    file_sections: Mapping[str, Mapping[str, Any]], cli_sections: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`cli_sections` laid over `file_sections`, field by field.

    A field in `cli_sections` replaces the file's; a mapping field (strategy.params,
    strategy.space) is merged per key, so a CLI `-p fast=5` replaces only the file's `fast`.
    `cli_sections` must hold only what the user gave, not defaults.
    """
    merged = {name: dict(fields) for name, fields in file_sections.items()}
    for name, fields in cli_sections.items():
        section = merged.setdefault(name, {})
        for field, value in fields.items():
            previous = section.get(field)
            if isinstance(value, Mapping) and isinstance(previous, Mapping):
                value = {**previous, **value}
            section[field] = value
    return merged


def apply_config_file(
    given: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    strategy: str = "STRATEGY",
    symbol: str = "--symbol",
    study: bool | None = None,
) -> dict[str, dict[str, Any]]:
    """`given` (only what the caller gave) laid over the sections of the file at `path`.

    The strategy's name and the symbol must come from one or the other; `strategy` and
    `symbol` name how the caller gives them, for the one-line error. `study` says whether
    the command runs a study (grid, search, walk-forward) or one backtest; None: a study
    when `given` has a study section (`for_command`).
    """
    runs_study = "study" in given if study is None else study
    file_sections = for_command(load_config_file(path), study=runs_study)
    sections = merge_sections(file_sections, given)
    data = sections.setdefault("data", {})
    typed = given.get("data", {})
    for one, other in (("symbol", "symbols"), ("symbols", "symbol")):
        if typed.get(one) is not None:  # a symbol typed replaces the file's universe, and back
            data.pop(other, None)
    if sections.get("strategy", {}).get("name") is None:
        raise ConfigError(f"give {strategy} or strategy.name in the config file {path}")
    if data.get("symbol") is None and data.get("symbols") is None:
        raise ConfigError(
            f"give {symbol} or data.symbol (data.symbols for a universe) in the config file {path}"
        )
    return sections


def for_command(
    file_sections: Mapping[str, Mapping[str, Any]], *, study: bool
) -> dict[str, dict[str, Any]]:
    """The file's sections as the command uses them (module docstring, decisions).

    A study (grid, search, walk-forward) takes a file's fixed strategy.params as one-value
    specs of its space (`fast: 10` -> "10") unless the space names them, so the manifest of
    a backtest grids around that backtest's parameters. A backtest runs one parameter set:
    a file's strategy.space and study section are dropped, and the backtest says so
    (`warn_ignored_by_backtest`) once its parameters are known.
    """
    sections = {name: dict(fields) for name, fields in file_sections.items()}
    strategy = sections.setdefault("strategy", {})
    params = dict(strategy.pop("params", None) or {})
    space = dict(strategy.pop("space", None) or {})
    if study:
        strategy["space"] = {**{name: _spec(value) for name, value in params.items()}, **space}
    else:
        strategy["params"] = params
        sections.pop("study", None)
    return sections


_COMMON_STUDY = frozenset(
    {"kind", "objective", "min_trades", "memory_budget_mb", "evidence", "max_combinations"}
)
STUDY_FIELDS: dict[str, frozenset[str]] = {
    "grid": _COMMON_STUDY | {"device"},
    "search": _COMMON_STUDY
    | {"objectives", "trials", "sampler", "batch_size", "storage", "study_name", "seed"},
    "walkforward": _COMMON_STUDY
    | {
        "windows",
        "search",
        "select",
        "trials",
        "sampler",
        "batch_size",
        "storage",
        "seed",
        "device",
    },
}
"""The study fields each kind of study uses (`ivybt.config.StudyConfig` holds them all)."""


def study_sections(
    sections: dict[str, dict[str, Any]], kind: str, path: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """`sections` with the study of `kind` (grid, search, walkforward). The fields that kind
    does not use are dropped (the manifest holds their defaults, not values that did not
    apply); when the configuration file at `path` set some of them (a search's manifest
    given to `ivybt grid`: its trials, sampler and seed), one `IgnoredSettingsWarning` names
    them."""
    study = dict(sections.get("study") or {})
    study["kind"] = kind
    dropped = {name: study.pop(name) for name in list(study) if name not in STUDY_FIELDS[kind]}
    given = {name: value for name, value in dropped.items() if value not in (None, (), [], {})}
    if given and path is not None:
        import warnings

        from ivybt.errors import IgnoredSettingsWarning

        command = {"search": "optimize"}.get(kind, kind)
        shown = ", ".join(f"study.{name}" for name in given)
        warnings.warn(
            IgnoredSettingsWarning(
                f"config file {path} sets {shown}, which `ivybt {command}` does not use; they "
                "are ignored (this run's manifest holds their defaults)"
            ),
            stacklevel=3,
        )
    return {**sections, "study": study}


def warn_ignored_by_backtest(path: str | Path, strategy: str, params: Mapping[str, Any]) -> None:
    """One `IgnoredSettingsWarning` when the file at `path` describes a study (a
    strategy.space or a study section), naming what a backtest ignores and the parameters
    `params` of `strategy` it runs instead; nothing otherwise."""
    file_sections = load_config_file(path)
    space = file_sections.get("strategy", {}).get("space") or {}
    ignored = [f"strategy.space ({', '.join(map(str, space))})"] if space else []
    if file_sections.get("study") is not None:
        ignored.append("the study section")
    if not ignored:
        return
    import warnings

    from ivybt.errors import IgnoredSettingsWarning

    shown = ", ".join(f"{name}={value}" for name, value in params.items())
    warnings.warn(
        IgnoredSettingsWarning(
            f"config file {path} describes a study; a backtest runs one parameter set, so it "
            f"ignores {' and '.join(ignored)} and runs {strategy} with {shown or 'no parameters'}"
            f" (strategy.params and -p, the rest at their defaults); choose them with -p "
            f"name=value, or run the study (`ivybt grid --config {path}`)"
        ),
        stacklevel=3,
    )


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"config file {path}, line {err.lineno}: not valid JSON ({err.msg}); fix it "
                "there, or give the manifest.json of a finished run"
            ) from None
    loader = _Loader(text)  # a SafeLoader: plain data, never objects
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_CONFIG_NODES:
            raise ConfigError(
                f"config file {path} expands to more than {MAX_CONFIG_NODES:,} values (YAML "
                "anchors and aliases, &name and *name, repeat data without bound, or the file "
                "is far larger than a run configuration); write the values out, with ranges "
                "such as 5:50:5 for a parameter space"
            )
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(
            f"config file {path} nests too deeply to be a run configuration; a configuration "
            "has sections of 'field: value' lines, nested two or three levels"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            f"config file {path}{where}: not valid YAML ({problem}); fix it there: one "
            "'field: value' per line, nested fields indented with spaces"
        ) from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """Nodes of the document under `node` once every alias is expanded (each distinct node
    is counted once and its size reused, so this is linear in the file); more than
    `MAX_CONFIG_NODES` as soon as that is certain, and for an alias inside its own anchor."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:  # `&a [*a]`: a structure that contains itself expands without end
        return MAX_CONFIG_NODES + 1
    active.add(key)
    total = 1
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    for child in children:
        total += _expanded_size(child, sizes, active)
        if total > MAX_CONFIG_NODES:
            break
    active.discard(key)
    sizes[key] = total
    return total


def _spec(value: Any) -> Any:
    """A space value as the CLI's spec string: 10 -> "10", [5, 9, 12] -> "5,9,12"."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value
