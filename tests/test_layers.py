"""The layers import one way (docs/architecture.md).

data -> bars -> kernels -> engine -> studies -> report -> runs -> cli, and nothing imports the
layers above its own: every module under `ivybt/` is parsed with `ast`, and every import it
makes (at the top, under `if TYPE_CHECKING:` and inside functions alike) is checked against
the rules below. `from ivybt
import name` counts as an import of the module `name` is (a submodule, or the module the lazy
public API `ivybt._LAZY` loads it from); `from ivybt import __version__` imports nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ivybt"

FOUNDATION = (
    "ivybt._paths",
    "ivybt._typing",
    "ivybt.config",
    "ivybt.config_file",
    "ivybt.errors",
    "ivybt.files",
    "ivybt.periods",
    "ivybt.redact",
)
"""Shared by every layer: settings, errors, atomic files, periods, paths and type aliases."""
UPPER = ("ivybt.engine", "ivybt.studies", "ivybt.runs", "ivybt.report", "ivybt.cli")

FORBIDDEN = {
    "ivybt.data": UPPER,
    "ivybt.bars": UPPER,
    "ivybt.indicators": UPPER,
    "ivybt.strategies": UPPER,
    "ivybt.engine": UPPER[1:],
    "ivybt.stats": UPPER[1:],
    "ivybt.studies": UPPER[2:],
    "ivybt.report": ("ivybt.runs", "ivybt.cli"),
    "ivybt.runs": ("ivybt.cli",),
    **dict.fromkeys(FOUNDATION, UPPER),
}
"""layer -> the packages no module of it may import."""

KERNEL_IMPORTS = ("numpy", "numba", "math", "ivybt.kernels", "ivybt._typing")
ANNOTATION_IMPORTS = ("__future__", "typing", "collections.abc")
"""Kernels import only KERNEL_IMPORTS, and the standard library's annotation helpers."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def lazy_api() -> dict[str, str]:
    """`ivybt._LAZY` read from the source: public name -> the module it is loaded from."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def imports_of(path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, wherever it sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lazy = lazy_api()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    yield node.lineno, full
                elif base == "ivybt" and alias.name in lazy:
                    yield node.lineno, lazy[alias.name]
                elif not (base == "ivybt" and alias.name == "__version__"):
                    yield node.lineno, base


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    return next((layer for layer in FORBIDDEN if within(module, layer)), None)


def test_the_layers_import_one_way() -> None:
    found = modules()
    known = set(found)
    breaches = []
    for module, path in found.items():
        layer = layer_of(module)
        for line, imported in imports_of(path, known):
            if layer is not None and any(within(imported, p) for p in FORBIDDEN[layer]):
                breaches.append(f"{module} ({layer}) imports {imported} at line {line}")
            if within(module, "ivybt.kernels") and not any(
                within(imported, allowed) for allowed in KERNEL_IMPORTS + ANNOTATION_IMPORTS
            ):
                breaches.append(f"{module} (kernels) imports {imported} at line {line}")
    assert not breaches, "imports against the layers:\n" + "\n".join(breaches)


def test_the_studies_import_each_other_without_cycles() -> None:
    found = modules()
    known = set(found)
    studies = {m for m in found if within(m, "ivybt.studies")}
    graph = {
        module: sorted({m for _, m in imports_of(found[module], known) if m in studies} - {module})
        for module in sorted(studies)
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in graph[module]:
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles in ivybt.studies:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    ("module", "imported", "forbidden"),
    [
        ("ivybt.studies.x", "ivybt.report.html", True),
        ("ivybt.studies.x", "ivybt.runs.folder", True),
        ("ivybt.studies.x", "ivybt.engine.inputs", False),
        ("ivybt.engine.x", "ivybt.studies.splits", True),
        ("ivybt.report.x", "ivybt.studies.walkforward", False),
        ("ivybt.runs.x", "ivybt.cli.options", True),
        ("ivybt.cli.x", "ivybt.runs.grid", False),
        ("ivybt.errors", "ivybt.runs", True),
        ("ivybt.bars.timeline", "ivybt.studies.space", True),
        ("ivybt.strategies.base", "ivybt.engine.user_kernels", True),
    ],
)
def test_the_rules_read_as_intended(module: str, imported: str, forbidden: bool) -> None:
    layer = layer_of(module)
    assert layer is not None or not forbidden
    assert (layer is not None and any(within(imported, p) for p in FORBIDDEN[layer])) is forbidden
