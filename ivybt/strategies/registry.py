"""Find a strategy by built-in name or as ``package.module:ClassName`` (a user's own module)."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
import sysconfig
import traceback
from collections.abc import Iterator
from pathlib import Path

from ivybt.errors import ConfigError
from ivybt.strategies.base import Strategy
from ivybt.strategies.breakouts import BbkcSqueeze, DonchianBreakout
from ivybt.strategies.cross_sectional import (
    ClusterMeanReversion,
    MomentumRotation,
    RelativeStrength,
)
from ivybt.strategies.crossovers import EmaCross, MacdCross, SmaCross
from ivybt.strategies.reversion import BollingerReversion, RsiReversion
from ivybt.strategies.trend import AdxTrend, Supertrend

SIGNAL_BUILTIN: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SmaCross,
        EmaCross,
        MacdCross,
        RsiReversion,
        BollingerReversion,
        DonchianBreakout,
        BbkcSqueeze,
        Supertrend,
        AdxTrend,
    )
}
"""The built-ins that decide each symbol alone (a signal kernel): they run on one symbol."""

BUILTIN: dict[str, type[Strategy]] = {
    **SIGNAL_BUILTIN,
    MomentumRotation.name: MomentumRotation,  # cross-sectional: need a universe
    ClusterMeanReversion.name: ClusterMeanReversion,
    RelativeStrength.name: RelativeStrength,
}
"""Every built-in strategy by name."""


def builtin_strategies() -> tuple[type[Strategy], ...]:
    """The built-in strategy classes, in the order `ivybt strategies` lists them."""
    return tuple(BUILTIN.values())


def get_strategy(spec: str | type[Strategy]) -> type[Strategy]:
    """The strategy class for a built-in name, ``package.module:ClassName``, or a class."""
    if isinstance(spec, type):
        if not issubclass(spec, Strategy):
            raise ConfigError(
                f"{spec.__qualname__} is not a subclass of ivybt.strategies.Strategy"
            )
        return spec
    if ":" in spec:
        return _import_strategy(spec)
    if spec in BUILTIN:
        return BUILTIN[spec]
    matches = difflib.get_close_matches(spec, list(BUILTIN), n=1)
    hint = f" (did you mean {matches[0]!r}?)" if matches else ""
    raise ConfigError(
        f"unknown strategy {spec!r}{hint}; built-in: {', '.join(BUILTIN)}; "
        "or give your own as package.module:ClassName"
    )


def _import_strategy(spec: str) -> type[Strategy]:
    """Import ``module:Name``: the current folder first, then the Python path (as
    ``python -m`` does), so a plug-in runs from the folder that holds it. Every failure is
    one `ConfigError` line naming the module, where it failed and the fix."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"strategy {spec!r} must look like package.module:ClassName")
    try:
        with _current_folder_importable():
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name + ".").startswith(err.name + "."):
            raise ConfigError(
                f"cannot import module {module_name!r} for strategy {spec!r}: there is no "
                f"{module_name.replace('.', '/')}.py in the current folder ({os.getcwd()}) nor "
                "on the Python path; run from the folder that holds it, or install its package"
            ) from err
        raise ConfigError(_failed_import(spec, module_name, err)) from err
    except SyntaxError as err:
        raise ConfigError(
            f"cannot import module {module_name!r} for strategy {spec!r}: "
            f"{_relative(err.filename)}, line {err.lineno}: {err.msg}; fix the syntax there"
        ) from err
    except (Exception, SystemExit) as err:  # the module's code raised while importing
        raise ConfigError(_failed_import(spec, module_name, err)) from err
    found = getattr(module, attribute, None)
    if found is None:
        names = [
            name for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
        ]  # fmt: skip
        close = difflib.get_close_matches(attribute, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listed = f"; its strategies: {', '.join(names)}" if names else ""
        raise ConfigError(
            f"module {module_name!r} has no {attribute!r}{hint} (strategy {spec!r}){listed}"
        )
    if found is Strategy:
        raise ConfigError(
            f"{spec!r} is IvyBT's base class; give your subclass of it, e.g. "
            f"{module_name}:MyStrategy (docs/strategies.md)"
        )
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise ConfigError(
            f"{spec!r} is not a subclass of ivybt.strategies.Strategy; "
            "see docs/strategies.md for the shape of a strategy"
        )
    return found


@contextlib.contextmanager
def _current_folder_importable() -> Iterator[None]:
    """The current folder first on `sys.path` while a plug-in is imported (the console
    script `ivybt` does not put it there, unlike ``python -m``); removed again afterwards,
    so it never shadows a module IvyBT imports later."""
    folder = os.getcwd()
    if any(os.path.abspath(entry or os.curdir) == folder for entry in sys.path):
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _failed_import(spec: str, module_name: str, err: BaseException) -> str:
    where = _where(err)
    fix = "fix the module"
    if isinstance(err, ModuleNotFoundError) and err.name:
        fix = f"install {err.name.partition('.')[0]!r} or fix the import"
    return (
        f"cannot import module {module_name!r} for strategy {spec!r}: "
        f"{where or 'importing it'} raised {type(err).__name__}: {' '.join(str(err).split())}; "
        f"{fix} (ivybt --debug ... shows the traceback)"
    )


def _where(err: BaseException) -> str:
    """'my_strategies.py, line 12,': the last frame of the user's code in the traceback
    (not IvyBT's, the standard library's or an installed package's)."""
    skip = tuple(
        {str(Path(__file__).resolve().parents[1]), *(sysconfig.get_paths()[key]
         for key in ("stdlib", "platstdlib", "purelib", "platlib"))}
    )  # fmt: skip
    frames = [
        frame for frame in traceback.extract_tb(err.__traceback__)
        if not frame.filename.startswith("<")
        and not str(Path(frame.filename).resolve()).startswith(skip)
    ]  # fmt: skip
    if not frames:
        return ""
    return f"{_relative(frames[-1].filename)}, line {frames[-1].lineno},"


def _relative(filename: str | None) -> str:
    """`filename` relative to the current folder when it is inside it."""
    if not filename:
        return "the module"
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
