"""House rules of ivybt/kernels (STYLE 2), checked on the source so a slip fails the suite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[1] / "ivybt" / "kernels"
MODULES = sorted(path for path in KERNELS.glob("*.py") if path.name != "__init__.py")


def _jitted(path: Path) -> list[tuple[ast.FunctionDef, ast.Call | ast.Name]]:
    """Module-level jitted functions. Kernels built inside a factory (they close over another
    kernel, e.g. `make_grid_kernel`) cannot be cached, so they are exempt (STYLE 2.4)."""
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id == "njit":
                    found.append((node, decorator))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_every_kernel_is_cached_named_and_documented(path):
    for function, decorator in _jitted(path):
        keywords = {kw.arg: kw.value for kw in getattr(decorator, "keywords", [])}
        cache = keywords.get("cache")
        assert isinstance(cache, ast.Constant) and cache.value is True, function.name
        assert "fastmath" not in keywords, f"{function.name}: use ivybt/kernels/_config.py"
        assert len(function.args.args) <= 8, f"{function.name} takes more than 8 arguments"
        if not function.name.startswith("_"):
            assert function.name.endswith("_nb"), function.name
            assert ast.get_docstring(function), f"{function.name} has no docstring"


def test_kernel_modules_import_only_numeric_code():
    allowed = {"__future__", "math", "typing", "collections.abc", "numpy", "numba"}
    allowed.add("ivybt._typing")
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert module in allowed or module.startswith("ivybt.kernels"), (path, module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in allowed, (path, alias.name)


def test_no_literal_fastmath_anywhere_in_kernels():
    for path in MODULES:
        if path.name != "_config.py":
            assert "fastmath=" not in path.read_text(encoding="utf-8"), path.name


_CACHE_PROBE = """
import ivybt
from ivybt.kernels import evaluate, indicators, signals, simulate, wilder
ivybt.backtest("bbkc_squeeze", symbol="SPY", source="sample", direction="both")
ivybt.backtest("macd_cross", symbol="SPY", source="sample")
used = [simulate.simulate_nb, evaluate.target_metrics_nb, signals.bbkc_squeeze_signal_nb,
        indicators.sma_table_nb, wilder.atr_table_nb]
print(sum(len(k.stats.cache_hits) for k in used), sum(len(k.stats.cache_misses) for k in used))
"""


@pytest.mark.slow
def test_kernels_load_from_the_numba_cache_in_a_new_process(tmp_path):
    """cache=True really caches: a second process compiles nothing and hits the cache."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CACHE_PROBE], env=env, capture_output=True, text=True,
            check=True, cwd=tmp_path,
        ).stdout.split()
        for _ in range(2)
    ]  # fmt: skip
    cold_hits, cold_misses = map(int, runs[0])
    warm_hits, warm_misses = map(int, runs[1])
    assert cold_hits == 0 and cold_misses >= 5
    assert warm_misses == 0 and warm_hits >= 5


_SPECIALISATION_PROBE = """
import ivybt
from ivybt.kernels import simulate, stops
ivybt.backtest("sma_cross", symbol="SPY", source="sample", direction="both")
ivybt.backtest("sma_cross", symbol="SPY", source="sample", sl=0.05, tp=0.1, trail=0.05)
print([name for module in (simulate, stops) for name, kernel in vars(module).items()
       if len(getattr(kernel, "signatures", ())) > 1])
"""


@pytest.mark.slow
def test_account_kernels_compile_their_callees_once(tmp_path):
    """A literal 0 or True passed to a kernel makes Numba compile it for Literal[int](0) and
    again for int64 (issue #19: cold start); the single-symbol accounts pass typed values,
    so each helper in simulate.py and stops.py has one signature after a backtest with and
    without stops, on an empty cache."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    done = subprocess.run([sys.executable, "-c", _SPECIALISATION_PROBE], env=env, check=True,
                          capture_output=True, text=True, cwd=KERNELS.parents[1])  # fmt: skip
    assert done.stdout.split("\n")[-2] == "[]", done.stdout
