"""Which Optuna study a search's trials belong to: the settings they were evaluated with.

A study holds comparable trials only: the same strategy, space, constraints, objectives,
`min_trades`, data (SHA-256 of the bars), bar type, execution, split and `periods_per_year`
(`study_identity`). Without `--study-name`, a search's study is named from a hash of those
settings (`default_study_name`), so rerunning the same command resumes its study and a search
with other settings gets its own; a study named by the user refuses trials made with other
settings, naming what differs (`check_same_study`). The sampler, its seed, `--trials` and the
batch size are not part of it: resuming with another sampler or more trials is normal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import optuna

from ivybt import __version__
from ivybt.config import RunConfig
from ivybt.engine.inputs import RunInputs
from ivybt.errors import ConfigError


def study_identity(
    config: RunConfig, inputs: RunInputs, objectives: tuple[str, ...]
) -> dict[str, Any]:
    """What a study's trials were evaluated with, so a resumed study adds comparable trials:
    strategy, space, constraints, objectives, `min_trades`, the data (SHA-256 of the bars),
    the bar type, execution (costs, fill, direction, size), the split and `periods_per_year`,
    and for a universe its portfolio rules.
    The sampler, its seed, `--trials` and the batch size are not part of it: resuming a study
    with another sampler or more trials is a normal thing to do."""
    assert config.study is not None
    universe = (
        {"portfolio": config.portfolio.model_dump(mode="json")} if config.data.is_portfolio else {}
    )  # a universe's account rules (the panel's hash names its symbols and their bars)
    return {
        **universe,
        "strategy": config.strategy.name,
        "space": dict(config.strategy.space),
        "constraints": list(config.strategy.constraints),
        "objectives": list(objectives),
        "min_trades": config.study.min_trades,
        "data_sha256": inputs.record["sha256"],
        "bars": config.data.model_dump(mode="json", include={"bars", "renko"}),
        "execution": config.execution.model_dump(mode="json", exclude={"periods_per_year"}),
        "split": inputs.split,
        "periods_per_year": inputs.periods_per_year,
    }


def default_study_name(config: RunConfig, inputs: RunInputs, identity: Mapping[str, Any]) -> str:
    """`<strategy>-<symbol>-<8 hex digits of the study's identity>`: the same command finds
    (and resumes) the same study, and a search of another space, other costs or other data
    gets a study of its own instead of a refusal (`study_identity`)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    strategy = config.strategy.name.rpartition(":")[2]
    return f"{strategy}-{inputs.record['symbol']}-{digest}"


_OLD_IDENTITY = ("strategy", "space", "objectives", "data_sha256")  # studies of IvyBT < #13


def check_same_study(study: optuna.Study, identity: Mapping[str, Any]) -> None:
    """Refuse to add trials to a study made with other settings (`study_identity`)."""
    recorded = study.user_attrs.get("ivybt")
    if recorded is None:
        return
    theirs = recorded.get("identity") or {key: recorded.get(key) for key in _OLD_IDENTITY}
    differ = [key for key in theirs if theirs[key] != identity.get(key)]
    if differ:
        shown = "; ".join(
            f"{key} {_shown(theirs[key])} there, {_shown(identity.get(key))} now" for key in differ
        )
        raise ConfigError(
            f"study {study.study_name!r} was made with other settings ({shown}); resume it "
            "with the same settings, or give another --study-name (without --study-name each "
            "set of settings gets a study of its own)"
        )


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, str) and len(value) == 64:  # a SHA-256
        return value[:12]
    return str(value)


def record_study(
    study: optuna.Study, config: RunConfig, inputs: RunInputs, sampler: Mapping[str, Any],
    identity: Mapping[str, Any],
) -> None:  # fmt: skip
    if "ivybt" in study.user_attrs:
        return
    study.set_user_attr(
        "ivybt",
        {
            "version": __version__,
            "identity": dict(identity),
            "strategy": config.strategy.name,
            "space": dict(config.strategy.space),
            "constraints": list(config.strategy.constraints),
            "objectives": list(identity["objectives"]),
            "data_sha256": inputs.record["sha256"],
            "data": inputs.record,
            "execution": config.execution.model_dump(mode="json"),
            "split": inputs.split,
            "periods_per_year": inputs.periods_per_year,
            "sampler": sampler,
        },
    )


WORKER_ATTR = "ivybt_worker"
"""The study user attribute `ivybt worker` rebuilds the search from (issue #18): the resolved
run configuration (JSON, the storage left out: each worker names its own, so no password is
stored), the SHA-256 of the bars, and the study's target `trials`. Each `ivybt optimize` on
the study writes it again, so the latest `--trials` is what the workers aim for."""


def record_worker_config(
    study: optuna.Study, config: RunConfig, inputs: RunInputs, target: int
) -> None:
    """Record what a worker needs to evaluate trials as this process does (`WORKER_ATTR`)."""
    from ivybt.redact import redact_value

    dumped = config.model_dump(mode="json")
    dumped["study"] = {**dumped["study"], "storage": None, "trials": target,
                       "study_name": study.study_name}  # fmt: skip
    dumped["output"] = {**dumped.get("output", {}), "out": None}
    spec = {"config": redact_value(dumped), "data_sha256": inputs.record["sha256"],
            "trials": target, "version": __version__}  # fmt: skip
    if study.user_attrs.get(WORKER_ATTR) != spec:
        study.set_user_attr(WORKER_ATTR, spec)


def worker_config(study: optuna.Study, url: str) -> tuple[RunConfig, str]:
    """The run configuration of `study`'s search (with `url` as its storage) and the SHA-256
    of its bars, as `ivybt optimize` recorded them (`WORKER_ATTR`)."""
    from ivybt.config import build_config

    spec = study.user_attrs.get(WORKER_ATTR)
    if not spec:
        raise ConfigError(
            f"study {study.study_name!r} holds no run configuration for workers (made by "
            "another tool or an older IvyBT); start it with `ivybt optimize ... "
            "--storage URL --study-name NAME` first"
        )
    sections = dict(spec["config"])
    sections["study"] = {**sections["study"], "storage": url, "trials": spec["trials"]}
    return build_config(**sections), spec["data_sha256"]
