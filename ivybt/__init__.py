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

__all__ = ["__version__", "backtest", "grid", "load", "optimize", "walk_forward"]

if TYPE_CHECKING:
    from ivybt.backtesting import backtest
    from ivybt.data import load
    from ivybt.studies.grid_run import grid
    from ivybt.studies.optimize import optimize
    from ivybt.studies.walkforward_run import walk_forward

_LAZY = {
    "load": "ivybt.data.loader",
    "backtest": "ivybt.backtesting",
    "grid": "ivybt.studies.grid_run",
    "optimize": "ivybt.studies.optimize",
    "walk_forward": "ivybt.studies.walkforward_run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ivybt' has no attribute {name!r}")
