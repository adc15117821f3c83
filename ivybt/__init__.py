"""IvyBT: Numba-JIT strategy optimization and walk-forward engine.

The public API mirrors the CLI. `import ivybt` is cheap: it compiles nothing and imports
pandas, yfinance or plotly only when a function that needs them is first used.

>>> import ivybt
>>> frame = ivybt.load("SPY", "1d", source="sample")   # bundled real data, offline
>>> result = ivybt.backtest("sma_cross", symbol="SPY", source="sample", params={"fast": 10})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivybt._paths import use_numba_cache_dir

__version__ = "0.1.0"

use_numba_cache_dir()  # compiled kernels go to a per-user folder, never into the package

__all__ = [
    "__version__",
    "backtest",
    "batch",
    "batch_status",
    "delete_preset",
    "grid",
    "list_presets",
    "load",
    "load_panel",
    "load_preset",
    "optimize",
    "save_preset",
    "signals",
    "walk_forward",
]

if TYPE_CHECKING:
    from ivybt.data import load, load_panel
    from ivybt.runs.backtest import backtest
    from ivybt.runs.batch import batch, batch_status
    from ivybt.runs.grid import grid
    from ivybt.runs.optimize import optimize
    from ivybt.runs.presets import delete_preset, list_presets, load_preset, save_preset
    from ivybt.runs.signals import signals
    from ivybt.runs.walkforward import walk_forward

_LAZY = {
    "load": "ivybt.data.loader",
    "load_panel": "ivybt.data.panel",
    "backtest": "ivybt.runs.backtest",
    "batch": "ivybt.runs.batch",
    "batch_status": "ivybt.runs.batch",
    "grid": "ivybt.runs.grid",
    "optimize": "ivybt.runs.optimize",
    "save_preset": "ivybt.runs.presets",
    "load_preset": "ivybt.runs.presets",
    "list_presets": "ivybt.runs.presets",
    "delete_preset": "ivybt.runs.presets",
    "signals": "ivybt.runs.signals",
    "walk_forward": "ivybt.runs.walkforward",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ivybt' has no attribute {name!r}")
