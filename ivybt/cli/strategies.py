"""`ivybt strategies`: the strategies and their parameters."""

from __future__ import annotations

from typing import Any

import click


@click.command("strategies")
@click.argument("names", nargs=-1, metavar="[STRATEGY]...")
def strategies(names: tuple[str, ...]) -> None:
    """List strategies with their parameters, defaults, ranges and constraints.

    Without arguments, every built-in; with names (or package.module:ClassName), those.

    \b
    Examples:
      ivybt strategies
      ivybt strategies sma_cross bbkc_squeeze
      ivybt strategies mypkg.signals:Breakout
    """
    from ivybt.strategies import builtin_strategies, get_strategy, is_cross_sectional

    classes = [get_strategy(name) for name in names] if names else builtin_strategies()
    for index, cls in enumerate(classes):
        if index:
            click.echo("")
        click.echo(f"{cls.name}: {cls.summary}")
        for param in cls.params:
            bounds = []
            if param.minimum is not None:
                bounds.append(f">= {param.minimum}")
            if param.maximum is not None:
                bounds.append(f"<= {param.maximum}")
            valid = f"; valid {' and '.join(bounds)}" if bounds else ""
            click.echo(
                f"  {param.name:<16} {param.kind.__name__:<5} default {param.default!s:<6} "
                f"range {param.low}..{param.high}{_step(param)}{valid}  {param.doc}"
            )
        if cls.constraints:
            click.echo(f"  constraints: {', '.join(cls.constraints)}")
        if is_cross_sectional(cls):
            held = _HELD[cls.selection]  # type: ignore[attr-defined]
            click.echo(f"  cross-sectional: ranks a universe (--symbols or --universe), holds "
                       f"{held}, selects {cls.schedule} unless --rebalance gives a "
                       "schedule")  # type: ignore[attr-defined]  # fmt: skip


_HELD = {"top": "the top k long", "bottom": "the bottom k short",
         "long_short": "the top k long and the bottom k short"}  # fmt: skip


def _step(param: Any) -> str:
    """The step of the parameter's default range (`ivybt.studies.space`), as " step N"."""
    if param.step is not None:
        return f" step {param.step}"
    return " step 1" if param.kind is int else " (no step: give -p ranges)"
