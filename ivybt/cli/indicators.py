"""`ivybt indicators`: the indicator kinds a strategy may declare, pandas-ta's included."""

from __future__ import annotations

import inspect

import click


@click.command("indicators")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def indicators(names: tuple[str, ...]) -> None:
    """List the indicators a strategy may declare: the built-in kinds, the higher timeframes
    and pandas-ta's catalogue (`Indicator.ta`).

    With names, each one's settings with their defaults, its output columns (computed on
    the bundled SPY sample) and how to declare it.

    \b
    Examples:
      ivybt indicators
      ivybt indicators supertrend adx
    """
    if names:
        for index, name in enumerate(names):
            if index:
                click.echo("")
            _describe(name)
        return
    from ivybt.bars.timeframes import TIMEFRAMES
    from ivybt.indicators.ta import LOOKS_AHEAD, WRONG, ta_catalogue
    from ivybt.strategies.base import INDICATOR_KINDS

    click.echo("built-in kinds (TA-Lib conventions; Indicator(kind, args, source)):")
    for kind, (n_args, what) in INDICATOR_KINDS.items():
        click.echo(f"  {kind:<12} {n_args} arg(s): {what}")
    click.echo(f"higher timeframes (timeframe=...): {', '.join(TIMEFRAMES)}")
    catalogue = ta_catalogue()
    click.echo(
        f"pandas-ta {_version()} ({len(catalogue)} functions; Indicator.ta(name, ..., "
        "column=...); * looks ahead, refused or restricted; ! wrong, refused):"
    )
    by_category: dict[str, list[str]] = {}
    for name, category in catalogue.items():
        mark = "*" if name in LOOKS_AHEAD else "!" if name in WRONG else ""
        by_category.setdefault(category, []).append(name + mark)
    for category, listed in sorted(by_category.items()):
        click.echo(f"  {category:<12} {', '.join(listed)}")


def _describe(name: str) -> None:
    from ivybt.indicators.ta import LOOKS_AHEAD, WRONG, stem, ta_catalogue, ta_keywords
    from ivybt.strategies.base import INDICATOR_KINDS

    if name in INDICATOR_KINDS:
        n_args, what = INDICATOR_KINDS[name]
        click.echo(f"{name}: built-in kind, {n_args} integer arg(s): {what}")
        click.echo(f'  declare: Indicator("{name}", ({"N, " * n_args}))'.replace(", )", ",)"))
        if name not in ta_catalogue():
            return
        click.echo("")
    settings = ta_keywords(name)  # an unknown name: one error line with "did you mean"
    click.echo(f"{name}: pandas-ta, {ta_catalogue()[name]}")
    for key, parameter in settings.items():
        default = "" if parameter.default is inspect.Parameter.empty else parameter.default
        click.echo(f"  {key:<14} default {default!s:<8} {_annotation(parameter)}")
    columns = _columns(name)
    if columns:  # pandas-ta's names carry the defaults its None settings stand for
        click.echo(f"  columns (default settings): {', '.join(columns)}")
    if name in LOOKS_AHEAD:
        click.echo(f"  looks ahead: {LOOKS_AHEAD[name]}")
    if name in WRONG:
        click.echo(f"  refused: {WRONG[name]}")
    stems = list(dict.fromkeys(stem(column) for column in columns))
    column = f', column="{stems[0]}"' if len(stems) > 1 else ""
    click.echo(f'  declare: Indicator.ta("{name}"{column}, setting=value, ...)')


def _columns(name: str) -> list[str]:
    """The output columns with default settings, on the bundled SPY sample."""
    import pandas as pd

    from ivybt.data.sample import load_sample
    from ivybt.engine.tables import bar_columns
    from ivybt.errors import IvyBTError
    from ivybt.indicators.ta import ta_frame

    frame, _ = load_sample("SPY", "1d")
    try:
        out = ta_frame(name, bar_columns(frame.iloc[-500:]), {}, "close")
    except IvyBTError as err:
        return [f"(not computed with its defaults: {err})"]
    if isinstance(out, pd.DataFrame):
        return [str(column) for column in out.columns]
    return [] if out is None else [str(out.name)]


def _annotation(parameter: inspect.Parameter) -> str:
    """'int | float', 'str', 'bool': the setting's type as pandas-ta annotates it."""
    annotation = parameter.annotation
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("numpy.", "np.")
    return text.replace("Union[", "").replace("]", "").replace(", ", " | ")[:60]


def _version() -> str:
    import importlib.metadata as md

    return md.version("pandas-ta")
