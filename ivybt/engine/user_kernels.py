"""A user's signal kernel, run under checks (issue #13).

The built-in signal kernels (`ivybt.kernels.grid.SIGNAL_CODES`) are trusted and run as they
are. Any other kernel (a plug-in's `signal_kernel`) must follow one rule: **it writes -1, 0 or
+1 into out_target[t] for every bar t, and nothing else**. Every path that runs one (a
backtest, grids, searches, walk-forward folds, the evidence's per-bar returns, the look-ahead
check) enforces it, and a breach stops the run with one `StrategyError` line naming the
strategy, its parameters, the bar and the value:

- **Bounds.** The kernel runs as a bounds-checked clone, `numba.njit(boundscheck=True)` of its
  Python source and of every jitted function it calls by a global or closure name
  (`checked_kernel`), so an index past an array raises IndexError instead of writing over
  memory (before: a segfault, or silent corruption). Numba's IndexError names no index, so
  the kernel is rerun once as plain Python on the same inputs, whose IndexError gives the
  index and the line of the user's file (`_python_index_error`). In a grid's `prange` loop,
  where numba 0.61 loses an exception raised on a worker thread (and turns one on the main
  thread into a SystemError), the call is wrapped in a try/except inside the kernel
  (`ivybt.kernels.grid.make_guarded_signal`) and the flagged combination is rerun alone.
- **Targets.** The kernel writes into a buffer filled with `UNWRITTEN_TARGET` and followed by
  `TARGET_GUARD` guard elements; afterwards every bar must hold -1, 0 or +1 (a bar still
  holding the fill value was never written, and would hold the previous combination's target
  in a grid) and the guard must be intact (a write just past the end by code the clone could
  not reach, e.g. a helper called as `module.helper`).

Cost, measured on the bundled SPY series (5,241 bars, one thread, CPU time; user copies of
three built-in kernels over 2,016 to 24,336 combinations): 7 to 13 % of a grid, of which the
target checks take 2 to 3 % and the bounds checks the rest. Checking only a sample of the
combinations (or the first call) would be cheaper and would miss the combination whose
window runs past the end, so every call is checked. Built-in kernels run unchecked.

Not caught: a value that wraps into -1..1 when stored as int8 (257 becomes 1; NaN becomes 0),
and a negative index, which numba wraps around from the end as Python does.

The clones are compiled once per process and never cached on disk: numba's cache key ignores
`boundscheck`, so a cached clone could load the user's unchecked build.
"""

from __future__ import annotations

import traceback
import types
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

from ivybt._typing import Float64Array1D, Float64Array2D, Int8Array1D, Int64Array1D
from ivybt.errors import StrategyError
from ivybt.kernels.grid import (
    TARGET_GUARD,
    UNWRITTEN_TARGET,
    first_invalid_target_nb,
)
from ivybt.strategies.base import Strategy

RULE = (
    "a signal kernel writes -1, 0 or +1 into out_target[t] for every bar t, and nothing else "
    "(docs/strategies.md)"
)
"""The rule every message of this module ends with."""


@lru_cache(maxsize=64)
def checked_kernel(kernel: Callable[..., None]) -> Dispatcher:
    """A bounds-checked clone of `kernel` (a numba dispatcher, or a plain Python function,
    which gets compiled): the same source and options with `boundscheck=True`, calling
    bounds-checked clones of the jitted functions it names."""
    return _clone(kernel, {}, compiled=True)


def run_user_kernel(
    strategy: type[Strategy],
    table: Float64Array2D,
    rows: Int64Array1D,
    params: Float64Array1D,
    *,
    signal_of: Int64Array1D | None = None,
) -> Int8Array1D:
    """The targets a user's signal kernel writes over the `table.shape[1]` signal bars, checked.

    `signal_of` (per real bar: its last completed signal bar) names the real bar of a Renko
    brick in messages. Raises StrategyError when the kernel breaks the rule (an index out of
    bounds included); any other exception it raises, or a compile error, propagates
    (`ivybt.strategies.base.signal_kernel_errors` words those).
    """
    n_signal = table.shape[1]
    buffer = np.full(n_signal + TARGET_GUARD, UNWRITTEN_TARGET, dtype=np.int8)
    try:
        checked_kernel(strategy.signal_kernel)(table, rows, params, buffer[:n_signal])
    except IndexError as err:  # the bounds check
        raise bounds_error(strategy, table, rows, params) from err
    bad = int(first_invalid_target_nb(buffer, n_signal, UNWRITTEN_TARGET))
    if bad >= 0:
        raise target_error(strategy, params, bad, int(buffer[bad]), n_signal, signal_of)
    return buffer[:n_signal].copy()


def raise_first_bad(
    strategy: type[Strategy],
    out_bad: np.ndarray,
    table: Float64Array2D,
    slots: np.ndarray,
    params: Float64Array2D,
    signal_of: Int64Array1D | None,
) -> None:
    """Raise for the first combination, in enumeration order (whatever thread met it), that
    a checked grid kernel flagged in `out_bad` (int64, (n_blocks, 3): combination, index,
    value per block; combination -1 when fine). Nothing when none was flagged.

    Index -1 means the kernel raised: that combination runs again alone, where its
    exception is not lost (`ivybt.kernels.grid.make_guarded_signal`), and raises it.
    """
    failed = out_bad[out_bad[:, 0] >= 0]
    if not len(failed):
        return
    combo, index, value = (int(x) for x in failed[np.argmin(failed[:, 0])])
    if index >= 0:
        raise target_error(strategy, params[combo], index, value, table.shape[1], signal_of)
    run_user_kernel(strategy, table, slots[combo], params[combo], signal_of=signal_of)
    raise StrategyError(
        f"{_who(strategy, params[combo])}: its signal kernel {_kernel_name(strategy)} raised "
        "an exception in a grid but not when run alone; a signal kernel must depend on its "
        "arguments only (no global state)"
    )


def target_error(
    strategy: type[Strategy],
    params: Float64Array1D,
    index: int,
    value: int,
    n_signal: int,
    signal_of: Int64Array1D | None,
) -> StrategyError:
    """The one-line error for a bad, missing or out-of-range target."""
    who = f"{_who(strategy, params)}: its signal kernel {_kernel_name(strategy)}"
    if index >= n_signal:
        return StrategyError(
            f"{who} wrote {value} past the end of out_target, at index {index:,} (out_target "
            f"has {n_signal:,} elements); {RULE}"
        )
    where = _where(index, n_signal, signal_of)
    if value == UNWRITTEN_TARGET:
        return StrategyError(f"{who} never wrote out_target[{index}] ({where}); {RULE}")
    return StrategyError(f"{who} wrote {value} into out_target[{index}] ({where}); {RULE}")


def bounds_error(
    strategy: type[Strategy],
    table: Float64Array2D,
    rows: Int64Array1D,
    params: Float64Array1D,
) -> StrategyError:
    """The one-line error for a kernel whose bounds check raised IndexError: the index and
    line from a plain-Python rerun when it fails the same way there."""
    who = f"{_who(strategy, params)}: its signal kernel {_kernel_name(strategy)}"
    found = _python_index_error(strategy.signal_kernel, table, rows, params)
    detail = found or "an index out of bounds (numba's bounds check names no index)"
    return StrategyError(f"{who} indexed outside an array: {detail}; {RULE}")


def _who(strategy: type[Strategy], params: Float64Array1D) -> str:
    shown = ", ".join(
        f"{param.name}={int(value)}" if param.kind is int else f"{param.name}={float(value):g}"
        for param, value in zip(strategy.params, params, strict=False)
    )
    return f"strategy {strategy.name}" + (f" with {shown}" if shown else "")


def _kernel_name(strategy: type[Strategy]) -> str:
    return getattr(strategy.signal_kernel, "__name__", repr(strategy.signal_kernel))


def _where(index: int, n_signal: int, signal_of: Int64Array1D | None) -> str:
    """'bar 312 of 2,520, counted from 0' or 'brick 57 of 300, completed at bar 1,234': the
    position the kernel sees, and for a Renko brick the position of its real bar."""
    if signal_of is None or len(signal_of) == 0:
        return f"bar {index:,} of {n_signal:,}, counted from 0"
    bar = int(np.searchsorted(signal_of, index, side="left"))
    return f"brick {index:,} of {n_signal:,}, completed at bar {bar:,}"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _python_index_error(
    kernel: Callable[..., None],
    table: Float64Array2D,
    rows: Int64Array1D,
    params: Float64Array1D,
) -> str | None:
    """Rerun the kernel as plain Python on copies of its inputs; the IndexError it raises
    there names the index and the line ('index 2520 is out of bounds for axis 0 with size
    2520, at my_strategies.py line 9'). None when it does not fail that way."""
    out = np.full(table.shape[1] + TARGET_GUARD, UNWRITTEN_TARGET, dtype=np.int8)
    try:
        _clone(kernel, {}, compiled=False)(
            table.copy(), rows.copy(), params.copy(), out[: table.shape[1]]
        )
    except IndexError as err:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        return f"{_first_line(err)}, at {Path(frame.filename).name} line {frame.lineno}"
    except Exception:  # plain Python differs from numba here; say what numba said
        return None
    return None


def _clone(function: Any, memo: dict[int, Any], *, compiled: bool) -> Any:
    """A copy of `function` (a dispatcher or a plain function) whose jitted callees, named as
    globals or closure variables, are cloned the same way: bounds-checked dispatchers
    (`compiled`) or plain Python functions. Recursion is handled through `memo`."""
    if id(function) in memo:
        return memo[id(function)]
    py_func = function.py_func if isinstance(function, Dispatcher) else function
    namespace = dict(py_func.__globals__)
    cells = [_cell_contents(cell) for cell in py_func.__closure__ or ()]
    clone = types.FunctionType(
        py_func.__code__, namespace, py_func.__name__, py_func.__defaults__,
        tuple(types.CellType() if value is _EMPTY else types.CellType(value) for value in cells)
        if py_func.__closure__ else None,
    )  # fmt: skip
    clone.__kwdefaults__ = py_func.__kwdefaults__
    clone.__qualname__ = py_func.__qualname__
    clone.__module__ = py_func.__module__
    result: Any = clone
    if compiled:
        options = dict(getattr(function, "targetoptions", {}))
        for key in ("nopython", "boundscheck", "cache", "forceobj"):
            options.pop(key, None)
        result = numba.njit(boundscheck=True, **options)(clone)
    memo[id(function)] = result
    for name in _global_names(py_func.__code__):
        value = namespace.get(name)
        if isinstance(value, Dispatcher):
            namespace[name] = _clone(value, memo, compiled=compiled)
    if py_func.__closure__:
        for cell, value in zip(clone.__closure__ or (), cells, strict=True):
            if isinstance(value, Dispatcher):
                cell.cell_contents = _clone(value, memo, compiled=compiled)
    return result


_EMPTY = object()


def _cell_contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell (a name bound later in the enclosing function)
        return _EMPTY


def _global_names(code: types.CodeType) -> Iterator[str]:
    """Names a code object (and the functions nested in it) may read as globals."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)
