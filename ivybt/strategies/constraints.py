"""Parameter constraints written as small expressions, e.g. ``"fast < slow"``.

An expression may use parameter names, numbers, + - * / // %, comparisons (chains allowed),
``and``, ``or``, ``not`` and parentheses; nothing else is evaluated (no calls, no attributes), so
a constraint from a config file or the command line is safe to check. It evaluates on
scalars (`holds`) or elementwise on whole parameter columns (`mask`), for grids.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ivybt.errors import ConfigError

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint; `holds(values)` evaluates it for one parameter combination."""

    text: str
    names: frozenset[str] = field(init=False)
    _tree: ast.Expression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as err:
            raise ConfigError(
                f"constraint {self.text!r} is not an expression ({err.msg}); "
                "write it like 'fast < slow' or 'fast * 2 <= slow'"
            ) from err
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif not isinstance(node, _ALLOWED):
                raise ConfigError(
                    f"constraint {self.text!r} uses {type(node).__name__}, which is not allowed; "
                    "use parameter names, numbers, arithmetic, comparisons, and/or/not"
                )
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "_tree", tree)

    def holds(self, values: Mapping[str, float]) -> bool:
        """True when the constraint is satisfied by `values` (which must name every variable)."""
        return bool(_evaluate(self._tree.body, values))

    def mask(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Elementwise `holds` over parameter columns of equal length: a boolean array."""
        n_rows = len(next(iter(columns.values()))) if columns else 1
        return np.broadcast_to(np.asarray(_evaluate(self._tree.body, columns), bool), (n_rows,))


_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.Constant,
    ast.Load,
    *_BINARY,
    *_COMPARE,
)


def _evaluate(node: ast.AST, values: Mapping[str, Any]) -> Any:
    """Evaluate an already-checked tree on scalars or, elementwise, on numpy arrays."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, int | float) or isinstance(node.value, bool):
            raise ConfigError(f"constraint constant {node.value!r} is not a number")
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        if isinstance(node.op, ast.Not):
            return np.logical_not(operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = _evaluate(node.values[0], values)
        for value in node.values[1:]:
            result = combine(result, _evaluate(value, values))
        return result
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        result: Any = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, values)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    raise ConfigError(f"constraint element {type(node).__name__} is not allowed")
