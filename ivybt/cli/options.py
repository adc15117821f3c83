"""Options shared by IvyBT's commands, defined once and stacked as decorators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ivybt.data.intervals import INTERVAL_NAMES, parse_interval
from ivybt.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def refuse_repeated_options(command: click.Command, ctx: click.Context, args: list[str]) -> None:
    """Refuse a single-valued option given twice, on `command` and the subcommand it names.

    Click keeps the last value of an option given twice (`-s SPY -s AAPL` backtests AAPL
    only); IvyBT refuses it with one line (exit 2) instead. Options declared repeatable
    (`multiple=True`: `-p`, `--constraint`, optimize's `--objective`) and counters (`-v -v`)
    may repeat. `args` are pre-parsed with `command`'s own parser, which has no side effects;
    a parse error is left to Click's real parse, and `--help`/`--version` win.
    """
    try:
        _, rest, order = command.make_parser(ctx).parse_args(args=list(args))
    except click.ClickException:
        return
    counts: dict[click.Option, int] = {}
    for param in order:
        if isinstance(param, click.Option):
            counts[param] = counts.get(param, 0) + 1
    if any(param.is_eager for param in counts):
        return
    for option, count in counts.items():
        if count > 1 and not option.multiple and not option.count:
            from ivybt.cli import InputError

            raise InputError(_repeated_message(command, option, count, args))
    if isinstance(command, click.Group) and rest:
        sub = command.get_command(ctx, rest[0])
        if sub is not None:
            child = sub.context_class(sub, info_name=rest[0], parent=ctx)
            refuse_repeated_options(sub, child, rest[1:])


def _repeated_message(
    command: click.Command, option: click.Option, count: int, args: list[str]
) -> str:
    names = "/".join(sorted(option.opts, key=len, reverse=True)[:1] + option.secondary_opts)
    values = _values_given(option, args)
    shown = f" ({', '.join(values)})" if len(values) == count else ""
    if option.name == "symbol":
        if any(param.name == "symbols" for param in command.params):
            listed = ",".join(values) if len(values) == count else "SPY,MSFT"
            return (
                f"--symbol is given {count} times{shown}; give one --symbol, or trade them in "
                f"one account with --symbols {listed}"
            )
        return (
            f"--symbol is given {count} times{shown}; one symbol per run for this command: "
            "give one --symbol, and run the command once per symbol"
        )
    repeatable = [
        "/".join(param.opts) for param in command.params
        if isinstance(param, click.Option) and (param.multiple or param.count)
    ]  # fmt: skip
    may = f"; only {', '.join(repeatable)} may repeat" if repeatable else ""
    return f"{names} is given {count} times{shown}; give it once{may}"


def _values_given(option: click.Option, args: list[str]) -> list[str]:
    """The values typed for `option` in `args`, for the message (best effort)."""
    values = []
    for index, token in enumerate(args):
        if token == "--":
            break
        for name in option.opts:
            if token == name and not option.is_flag and index + 1 < len(args):
                values.append(args[index + 1])
            elif name.startswith("--") and token.startswith(f"{name}="):
                values.append(token[len(name) + 1 :])
            elif len(name) == 2 and token.startswith(name) and len(token) > 2 and (
                not token.startswith("--") and not option.is_flag):  # fmt: skip
                values.append(token[2:])
    return values


def _check_interval(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return parse_interval(value).name
    except ConfigError as err:
        raise click.BadParameter(str(err)) from err


def _check_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    import pandas as pd

    if value is None:
        return None
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise click.BadParameter(
            f"expected a date like 2020-01-31 or a time like '2020-01-31 14:30', got {value!r}"
        ) from err
    return value


def interval[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--interval",
        "-i",
        default="1d",
        show_default=True,
        metavar="|".join(INTERVAL_NAMES),
        callback=_check_interval,
        help="Bar interval. Intraday bars are stamped at their open, in UTC.",
    )(func)


def start[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--start",
        default=None,
        metavar="DATE",
        callback=_check_date,
        help="First bar to include, e.g. 2015-01-01 (inclusive). Default: all history.",
    )(func)


def end[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--end",
        default=None,
        metavar="DATE",
        callback=_check_date,
        help="End of the range, exclusive, e.g. 2020-01-01. Default: the last complete bar.",
    )(func)


def adjusted[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--adjusted/--raw",
        "adjusted",
        default=None,
        help="Adjusted prices (OHLC x adj_close/close) or the stored raw prices. "
        "Default: adjusted when the series has adj_close, raw otherwise.",
    )(func)


def repair[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--repair",
        is_flag=True,
        help="Apply safe repairs: sort, drop exact duplicate rows, clip OHLC violations "
        "within 1e-4 relative. Each repair is reported.",
    )(func)


# ---- options shared by the run commands (backtest now; grid, optimize, walkforward next) ----


def _parse_params(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"expected name=value such as fast=10, got {item!r}")
        if name.strip() in parsed:
            raise click.BadParameter(f"parameter {name.strip()!r} is given twice")
        parsed[name.strip()] = value.strip()
    return parsed


def strategy[F: Callable[..., Any]](func: F) -> F:
    """The STRATEGY argument: required unless --config gives strategy.name (`run_sections`)."""
    return click.argument("strategy", required=False)(func)


class _Rebalance(click.ParamType):
    """signal, daily, weekly, monthly or <N>bars (`ivybt.config.REBALANCE_PATTERN`)."""

    name = "signal|daily|weekly|monthly|Nbars"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        import re

        from ivybt.config import REBALANCE_PATTERN

        text = str(value).strip().lower()
        if not re.match(REBALANCE_PATTERN, text):
            self.fail(
                f"{value!r} is not a schedule: use signal, daily, weekly, monthly or every N "
                "bars as e.g. 21bars",
                param,
                ctx,
            )
        return text


REBALANCE = _Rebalance()

SYMBOL_HELP = "Ticker, e.g. SPY, ^GSPC, EURUSD=X (bundled samples work offline)."


def symbol[F: Callable[..., Any]](func: F) -> F:
    """--symbol of a command with --config: required unless the file gives data.symbol."""
    return click.option(
        "--symbol",
        "-s",
        default=None,
        help=f"{SYMBOL_HELP} Required unless --config gives data.symbol.",
    )(func)


def universe[F: Callable[..., Any]](func: F) -> F:
    """--symbols / --universe and the portfolio options (docs/portfolio.md)."""
    decorators = [
        click.option(
            "--symbols",
            default=None,
            metavar="A,B,C",
            help="A universe traded in one account, comma-separated (instead of --symbol); "
            "docs/portfolio.md.",
        ),
        click.option(
            "--universe",
            "universe_file",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="FILE",
            help="The universe from a file: one symbol a line, or a YAML list.",
        ),
        click.option(
            "--weights",
            type=click.Choice(["equal", "fixed", "inverse_vol", "score"]),
            default=None,
            help="Universe weights: equal among the symbols with a side (default), fixed "
            "(portfolio.fixed_weights of a config file), inverse volatility, or score "
            "(a cross-sectional strategy's scores beyond their mean).",
        ),
        click.option(
            "--vol-window",
            type=click.IntRange(min=2),
            default=None,
            help="Bars of returns behind inverse-volatility weights (default 60).",
        ),
        click.option(
            "--max-leverage",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            help="Most gross exposure (sum of |weights|); larger weights scale down to it "
            "(default 1).",
        ),
        click.option(
            "--max-weight",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            help="Most |weight| of one symbol (default: no cap).",
        ),
        click.option(
            "--rebalance",
            type=REBALANCE,
            default=None,
            help="When the universe trades: on a side change (signal, default), at the "
            "first bar of each day, week or month, or every N bars (e.g. 21bars).",
        ),
        click.option(
            "--rebalance-band",
            type=click.FloatRange(0.0, 1.0, max_open=True),
            default=None,
            help="Leave a held symbol alone while it is within this fraction of equity of its "
            "target (default 0).",
        ),
        click.option(
            "--select-universe",
            "select_universe",
            default=None,
            metavar="top:N|min:X",
            help="Trade only the symbols whose in-sample results were best: top:N, min:X "
            "(metric at least X) or top:N,min:X, ranked by --by. Walk-forward folds choose "
            "in-sample and trade out of sample; a backtest or grid choosing on its own bars "
            "warns that its figure is in-sample.",
        ),
        click.option(
            "--by",
            "select_by",
            default=None,
            metavar="METRIC",
            help="The metric --select-universe ranks symbols by (default sharpe; higher is "
            "better).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


PORTFOLIO_OPTIONS = {
    "weights": "weights", "vol_window": "vol_window", "max_leverage": "max_leverage",
    "max_weight": "max_weight", "rebalance": "rebalance", "band": "rebalance_band",
    "select_universe": "select_universe", "select_by": "select_by",
}  # fmt: skip
"""Portfolio section field -> CLI option name."""


def universe_settings(values: dict[str, Any]) -> dict[str, Any]:
    """data.symbols from --symbols or --universe (one of them), else nothing."""
    from ivybt.data.universe import parse_symbols, read_universe

    text, path = values.get("symbols"), values.get("universe_file")
    if text is not None and path is not None:
        raise click.UsageError("give --symbols or --universe, not both")
    if text is not None:
        return {"symbols": parse_symbols(text)}
    if path is not None:
        return {"symbols": read_universe(path)}
    return {}


def portfolio_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The portfolio section's fields the options gave."""
    return {
        field: values[option]
        for field, option in PORTFOLIO_OPTIONS.items()
        if values.get(option) is not None
    }


def symbol_or_universe[F: Callable[..., Any]](func: F) -> F:
    """--symbol of a command without --config that also takes --symbols/--universe."""
    return click.option(
        "--symbol", "-s", default=None,
        help=f"{SYMBOL_HELP} Required unless --symbols or --universe gives a universe.",
    )(func)  # fmt: skip


def required_symbol[F: Callable[..., Any]](func: F) -> F:
    """--symbol of a command without --config."""
    return click.option("--symbol", "-s", required=True, help=SYMBOL_HELP)(func)


def config_file[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="Run configuration: a YAML file of sections (data, strategy, execution, split, "
        "study, output) or a run's manifest.json, to reproduce it. Options typed on the "
        "command line override the file's fields; defaults do not.",
    )(func)


def run_sections(
    sections: dict[str, dict[str, Any]],
    values: dict[str, Any],
    aliases: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The sections of the run: `sections` (built from every option) without --config.

    With --config FILE, the file's sections with only the options the user typed laid over
    them (`ivybt.config_file.apply_config_file`): a default never replaces the file's value.
    A field's option has the field's name unless `aliases` (or strategy.name -> STRATEGY,
    strategy.space/params -> -p) says otherwise. Without --config, STRATEGY and --symbol are
    required as before.
    """
    ctx = click.get_current_context()
    path = values["config_file"]
    if path is None:
        data = sections["data"]
        if data.get("symbol") is not None and data.get("symbols") is not None:
            raise click.UsageError("give --symbol or --symbols/--universe, not both")
        symbol = data.get("symbol") if data.get("symbols") is None else data["symbols"]
        for name, value, hint in (("strategy", sections["strategy"]["name"], "'STRATEGY'"),
                                  ("symbol", symbol, None)):  # fmt: skip
            if value is None:  # Click's own message, as when both were required
                param = next(param for param in ctx.command.params if param.name == name)
                if name == "symbol" and any(p.name == "symbols" for p in ctx.command.params):
                    hint = "'--symbol' (or --symbols A,B,... / --universe FILE for a universe)"
                raise click.MissingParameter(ctx=ctx, param=param, param_hint=hint)
        return sections
    from ivybt.config_file import apply_config_file

    names = {"name": "strategy", "space": "params", "params": "params", "band": "rebalance_band",
             **(aliases or {})}  # fmt: skip
    typed = {
        section: {field: value for field, value in fields.items()
                  if (any(_typed(ctx, f"renko_{name}") for name in RENKO_OPTIONS)
                      if field == "renko" else
                      _typed(ctx, "symbols") or _typed(ctx, "universe_file")
                      if field == "symbols" else _typed(ctx, names.get(field, field)))}
        for section, fields in sections.items()
    }  # fmt: skip
    return apply_config_file(typed, path)


def check_run_folder(config: Any, values: dict[str, Any], results_dir: Path) -> None:
    """Refuse, before any data is loaded or any kernel runs, a run folder the command could
    not write at the end: --out (or the file's output.out) that is a file or under one, not
    writable, a folder holding no IvyBT run, or another configuration's run folder without
    --overwrite; without --out, a results folder that cannot be written."""
    from ivybt.runs.folder import check_out_folder, check_reusable, check_writable

    out = values.get("out") or config.output.out
    if out is None:
        check_writable(results_dir)
        return
    check_out_folder(out)
    check_reusable(Path(out), config.model_dump(mode="json"), overwrite=values["overwrite"])


def _typed(ctx: click.Context, name: str) -> bool:
    """Whether the user gave option `name` (typed, or from an environment variable)."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source(name)
    return source is not None and source not in (
        ParameterSource.DEFAULT,
        ParameterSource.DEFAULT_MAP,
    )


def source[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "--source",
        type=click.Choice(["auto", "yahoo", "cache", "sample"]),
        default="auto",
        show_default=True,
        help="Where bars come from: auto = Yahoo through the cache, falling back to the "
        "bundled sample (with a warning) when offline and nothing is cached.",
    )(func)


def params[F: Callable[..., Any]](func: F) -> F:
    return click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_params,
        help="Strategy parameter, repeatable: -p fast=10 -p slow=50 (see `ivybt strategies`).",
    )(func)


def execution[F: Callable[..., Any]](func: F) -> F:
    """--commission --slippage --fill --direction --size --cash --periods-per-year."""
    decorators = [
        click.option(
            "--commission",
            type=click.FloatRange(0.0, 0.1, max_open=True),
            default=0.001,
            show_default=True,
            help="Commission, fraction of traded notional per side (0.001 = 0.1%).",
        ),
        click.option(
            "--slippage",
            type=click.FloatRange(0.0, 0.1, max_open=True),
            default=0.0005,
            show_default=True,
            help="Slippage, fraction that moves each fill price against you.",
        ),
        click.option(
            "--fill",
            type=click.Choice(["next_open", "close"]),
            default="next_open",
            show_default=True,
            help="next_open: a decision on bar t fills at bar t+1's open. close: at bar t's "
            "close (vectorbt's default, optimistic; for comparisons).",
        ),
        click.option(
            "--direction",
            type=click.Choice(["long", "short", "both"]),
            default="long",
            show_default=True,
            help="Sides the strategy may take.",
        ),
        click.option(
            "--size",
            type=click.FloatRange(0.0, 1.0, min_open=True),
            default=1.0,
            show_default=True,
            help="Fraction of equity per position (commission included); fractional units.",
        ),
        click.option(
            "--cash",
            "initial_cash",
            type=click.FloatRange(0.0, min_open=True),
            default=10_000.0,
            show_default=True,
            help="Initial equity, in the instrument's currency.",
        ),
        click.option(
            "--periods-per-year",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            help="Bars per year for annualising. Default: from the interval and calendar "
            "(252 for daily weekday bars, 365 when weekends trade, measured for intraday).",
        ),
        click.option(
            "--sl",
            type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
            default=None,
            metavar="F",
            help="Stop-loss, fraction of the entry fill (0.05 = 5 % away); docs/stops.md.",
        ),
        click.option(
            "--tp",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            metavar="F",
            help="Take-profit, fraction of the entry fill.",
        ),
        click.option(
            "--trail",
            type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
            default=None,
            metavar="F",
            help="Trailing stop, fraction below the highest "
            "high since entry (above the lowest low for a short).",
        ),
        click.option(
            "--sl-atr",
            type=click.FloatRange(0.0, min_open=True),
            default=None,
            metavar="X",
            help="Stop-loss X x ATR(--atr-length) at entry away.",
        ),
        click.option(
            "--max-bars",
            type=click.IntRange(1),
            default=None,
            metavar="N",
            help="Time stop: close a position held N bars.",
        ),
        click.option(
            "--atr-length",
            type=click.IntRange(1),
            default=None,
            metavar="N",
            help="ATR length of --sl-atr (Wilder; default 14).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


RENKO_OPTIONS = ("box", "atr", "atr_mult", "atr_dynamic", "reversal", "anchor", "source",
                 "volume")  # fmt: skip
"""RenkoConfig fields, each set by --renko-<field> (options value key: renko_<field>)."""


def bars[F: Callable[..., Any]](func: F) -> F:
    """--bars and the --renko-* settings (docs/renko.md)."""
    decorators = [
        click.option("--bars", type=click.Choice(["standard", "renko"]), default="standard",
                     show_default=True, help="Bars the signals are computed on; trades always "
                     "fill on the real bars (a brick's decision at the next real open)."),
        click.option("--renko-box", type=click.FloatRange(0.0, min_open=True), default=None,
                     metavar="SIZE", help="Fixed brick size, price units (or -p box=a:b:step)."),
        click.option("--renko-atr", type=click.IntRange(1), default=None, metavar="N",
                     help="ATR box: ATR(N) known at the start of the evaluated window."),
        click.option("--renko-atr-mult", type=click.FloatRange(0.0, min_open=True),
                     default=None, metavar="X", help="ATR box multiple (default 1.0)."),
        click.option("--renko-atr-dynamic", is_flag=True, default=None,
                     help="Recompute the ATR box at each brick instead of fixing it."),
        click.option("--renko-reversal", type=click.IntRange(1), default=None, metavar="BOXES",
                     help="Boxes against the trend that make a reversal brick (default 2)."),
        click.option("--renko-anchor", type=click.Choice(["floor", "first"]), default=None,
                     help="First level at floor(c0 / box) x box (default) or at c0."),
        click.option("--renko-source", type=click.Choice(["close", "hl"]), default=None,
                     help="Build bricks from closes (default) or from highs and lows."),
        click.option("--renko-volume", type=click.Choice(["sum", "split", "none"]),
                     default=None, help="Brick volume: bars' sum since the last brick "
                     "(default), that sum split over a bar's bricks, or none."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def bar_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The data section's bars and renko fields from the options' values."""
    renko = {name: values[f"renko_{name}"] for name in RENKO_OPTIONS
             if values.get(f"renko_{name}") is not None}  # fmt: skip
    return {"bars": values.get("bars", "standard"), "renko": renko or None}


def split[F: Callable[..., Any]](func: F) -> F:
    """--train-split --run-mode."""
    func = click.option(
        "--run-mode",
        type=click.Choice(["full", "train", "test"]),
        default="full",
        show_default=True,
        help="train: trade only the training part; test: trade only the test part, using "
        "the training history to warm up indicators. Needs --train-split.",
    )(func)
    return click.option(
        "--train-split",
        type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
        default=None,
        metavar="FRACTION",
        help="Share of the bars in the training part, e.g. 0.7.",
    )(func)


def output[F: Callable[..., Any]](func: F) -> F:
    """--out --overwrite."""
    func = click.option(
        "--overwrite",
        is_flag=True,
        help="Replace an IvyBT run folder that holds another configuration's results: "
        "only the files IvyBT wrote there are removed. A folder that is no IvyBT run is "
        "always refused.",
    )(func)
    return click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False),
        default=None,
        callback=_check_out,
        help="Run folder. Default: <results dir>/<command>-<strategy>-<symbol>-<UTC time>.",
    )(func)


def _check_out(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():  # "" would be the current folder
        raise click.BadParameter("give a folder path, e.g. --out results/spy-sma")
    return value


GRID_STUDY_OPTIONS = ("objective", "min_trades", "memory_budget_mb", "max_combinations",
                      "evidence", "device")  # fmt: skip
"""The study fields `ivybt grid` and `ivybt walkforward` take from `study` and `device`."""


def study[F: Callable[..., Any]](func: F) -> F:
    """--constraint --objective --min-trades --memory-budget."""
    decorators = [
        click.option(
            "--constraint",
            "constraints",
            multiple=True,
            metavar="EXPR",
            help="Extra constraint on the parameters, repeatable: --constraint 'fast * 2 <= "
            "slow'. The strategy's own constraints always apply.",
        ),
        click.option(
            "--objective",
            default="sharpe",
            show_default=True,
            metavar="METRIC",
            help="Metric the best combination maximises (docs/metrics.md).",
        ),
        click.option(
            "--min-trades",
            type=click.IntRange(0),
            default=1,
            show_default=True,
            help="Combinations with fewer closed trades are invalid for selection.",
        ),
        click.option(
            "--evidence/--no-evidence",
            default=True,
            show_default=True,
            help="Compute PBO (CSCV) and the deflated Sharpe ratio for metrics.json and the "
            "report. Costs about as much as the grid again (every combination is simulated "
            "once more for its per-bar returns, then 12,870 splits are scored): 15,247 "
            "combinations take ~0.7 s more on 5,241 daily bars, ~3.5 s on 74,439 hourly bars "
            "(2 cores).",
        ),
        click.option(
            "--memory-budget",
            "memory_budget_mb",
            type=click.FloatRange(16.0),  # ivybt.studies.grid.MIN_MEMORY_BUDGET_MB
            default=1024.0,
            show_default=True,
            metavar="MB",
            help="Peak memory the grid plans for; larger grids run in chunks.",
        ),
        click.option(
            "--max-combinations",
            type=click.IntRange(1),
            default=1_000_000,  # ivybt.studies.space.DEFAULT_MAX_COMBINATIONS
            show_default=True,
            metavar="N",
            help="Refuse a parameter space with more combinations (before constraints), "
            "counted before anything is built.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def device[F: Callable[..., Any]](func: F) -> F:
    """--device cpu|gpu|auto (ivybt.engine.gpu)."""
    return click.option(
        "--device",
        type=click.Choice(["cpu", "gpu", "auto"]),
        default="cpu",
        show_default=True,
        help="Where the combinations are evaluated. gpu: on an NVIDIA GPU (pip install "
        "'ivybt[gpu]'), for the built-in strategies on one symbol, to 1e-12 of the CPU; fails "
        "in one line when it cannot. auto: the GPU when it can, else the CPU, and says which.",
    )(func)


def cluster[F: Callable[..., Any]](func: F) -> F:
    """--scheduler --cluster: run the work as tasks on Dask (docs/scale-out.md)."""
    func = click.option(
        "--cluster",
        default=None,
        metavar="local:N",
        help="Start N Dask worker processes on this machine (127.0.0.1 only) for this run, "
        "one task each at a time with cores // N Numba threads, and stop them after. Needs "
        "pip install 'ivybt[cluster]'.",
    )(func)
    return click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Run the tasks on the running Dask cluster whose scheduler is ADDRESS "
        "(tcp://HOST:8786): the same results bit for bit. See docs/scale-out.md.",
    )(func)
