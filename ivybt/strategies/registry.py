"""Find a strategy by built-in name or as ``package.module:ClassName`` (a user's own module)."""

from __future__ import annotations

import difflib
import importlib

from ivybt.errors import ConfigError
from ivybt.strategies.base import Strategy
from ivybt.strategies.breakouts import BbkcSqueeze, DonchianBreakout
from ivybt.strategies.crossovers import EmaCross, MacdCross, SmaCross
from ivybt.strategies.reversion import BollingerReversion, RsiReversion

BUILTIN: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SmaCross,
        EmaCross,
        MacdCross,
        RsiReversion,
        BollingerReversion,
        DonchianBreakout,
        BbkcSqueeze,
    )
}


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
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"strategy {spec!r} must look like package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"cannot import module {module_name!r} for strategy {spec!r} ({err}); "
            "make it importable (install it, or run from the folder that holds it)"
        ) from err
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigError(f"module {module_name!r} has no {attribute!r} (strategy {spec!r})")
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise ConfigError(
            f"{spec!r} is not a subclass of ivybt.strategies.Strategy; "
            "see docs/strategies.md for the shape of a strategy"
        )
    return found
