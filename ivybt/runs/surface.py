"""`ivybt surface RUN_DIR`: redraw a finished walk-forward run's stability surfaces.

Reads the run folder's manifest.json, folds.parquet, surface.parquet and metrics.json (its
stability scores), and writes `surface-<side>-<metric>-<param>.html` next to them. Nothing is
recomputed but the page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ivybt.errors import ConfigError
from ivybt.files import write_text
from ivybt.kernels.metrics import METRIC_NAMES


def write_surface_page(
    run_dir: str | Path, *, param: str | None = None, metric: str | None = None,
    side: str = "oos",
) -> Path:  # fmt: skip
    """Write the stability page of `param` x `metric` on `side`; return its path.

    Defaults: the parameter taking the most values in the grid, and the run's objective.
    """
    from ivybt.report.surface import surface_report_html
    from ivybt.report.walkforward import surface_page_name

    folder = Path(run_dir)
    manifest = _read_json(folder / "manifest.json", folder)
    if manifest.get("command") != "walkforward":
        raise ConfigError(
            f"{folder} is a {manifest.get('command')!r} run, not a walk-forward one; give the "
            "folder `ivybt walkforward` wrote"
        )
    if manifest.get("status") != "finished":
        raise ConfigError(
            f"{folder} holds an unfinished walk-forward (status {manifest.get('status')!r}); "
            "rerun the same `ivybt walkforward` command with --out on it first"
        )
    surface = pd.read_parquet(folder / "surface.parquet")
    folds = pd.read_parquet(folder / "folds.parquet")
    scores = _read_json(folder / "metrics.json", folder)["stability"]
    names = [c.removeprefix("param_") for c in surface.columns if c.startswith("param_")]
    varying = [n for n in names if surface[f"param_{n}"].nunique() > 1] or names
    param = param or max(varying, key=lambda n: surface[f"param_{n}"].nunique())
    metric = metric or manifest["config"]["study"]["objective"]
    if metric not in METRIC_NAMES:
        raise ConfigError(f"unknown metric {metric!r}; metrics: {', '.join(METRIC_NAMES)}")
    html = surface_report_html(
        surface, folds, title=f"Stability surface: {metric} over {param} ({side})",
        param=param, metric=metric, side=side, params=varying, scores=scores,
    )  # fmt: skip
    path = folder / surface_page_name(side, metric, param)
    write_text(path, html)
    return path


def _read_json(path: Path, folder: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{folder} is not a finished walk-forward run folder ({path.name}: {err}); give the "
            "folder `ivybt walkforward` wrote"
        ) from None
