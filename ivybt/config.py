"""The one configuration model of a run (DESIGN: "One configuration model").

CLI options and the Python API build the same `RunConfig`; the manifest stores it fully resolved
(`model_dump(mode="json")`), so a run can be reproduced from its manifest. Sections: data,
strategy, execution, split, output. Later issues add the study section (grid, search,
walk-forward) and YAML files; nothing about a run lives only in CLI code.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ivybt.errors import ConfigError

Fill = Literal["next_open", "close"]
Direction = Literal["long", "short", "both"]
RunMode = Literal["full", "train", "test"]
# "frame": bars passed to the Python API as a DataFrame (the manifest's data hash names them)
Source = Literal["auto", "yahoo", "cache", "sample", "frame"]

DIRECTION_CODES: dict[str, int] = {"long": 1, "short": -1, "both": 0}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RenkoConfig(_Section):
    """Renko bricks (docs/renko.md): a fixed `box` (price units) or an ATR box of period
    `atr` x `atr_mult`, known at the start of the evaluated window unless `atr_dynamic`."""

    box: float | None = Field(None, gt=0.0)
    atr: int | None = Field(None, ge=1)
    atr_mult: float = Field(1.0, gt=0.0)
    atr_dynamic: bool = False
    reversal: int = Field(2, ge=1)
    anchor: Literal["floor", "first"] = "floor"
    source: Literal["close", "hl"] = "close"
    volume: Literal["sum", "split", "none"] = "sum"


class DataConfig(_Section):
    """Which bars: a symbol or a universe of symbols, interval, range (inclusive dates or
    timestamps), source, price view, and the bar type the strategy's signals are computed on
    (trades always use the real bars: a Renko brick's decision fills at the next real bar's
    open).

    One model for one symbol and many: `symbol` runs the single-symbol account, `symbols`
    (even a list of one) one account across the universe (docs/portfolio.md)."""

    symbol: str | None = Field(None, min_length=1)
    symbols: tuple[str, ...] | None = Field(None, min_length=1)
    interval: str = "1d"
    start: str | None = None
    end: str | None = None
    source: Source = "auto"
    adjusted: bool | None = None
    bars: Literal["standard", "renko"] = "standard"
    renko: RenkoConfig | None = None
    # bars passed as a DataFrame (source "frame") are validated with this price-jump factor
    # (`ivybt.data.validate` rule 9; None: its default of 10, inf: no limit); a cached series
    # keeps the factor it was imported or fetched with (`--max-jump`)
    max_jump: float | None = Field(None, gt=1.0)

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols_text(cls, value: object) -> object:
        if isinstance(value, str):  # "SPY,MSFT" in a YAML file
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _one_symbol_or_universe(self) -> DataConfig:
        if (self.symbol is None) == (self.symbols is None):
            raise ValueError(
                "give a symbol (--symbol SPY) or a universe (--symbols SPY,MSFT or "
                "--universe FILE), not both" if self.symbol else
                "no symbol given: add --symbol SPY, --symbols SPY,MSFT or --universe FILE"
            )  # fmt: skip
        if self.symbols is not None:
            names = [name.strip().upper() for name in self.symbols]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(f"symbols lists {', '.join(repeated)} twice; list each once")
            object.__setattr__(self, "symbols", tuple(names))  # as the data layer names them
            if self.bars == "renko":
                raise ValueError(
                    "Renko bars run on one symbol at a time; drop --bars renko for a universe"
                )
        return self

    @property
    def universe(self) -> tuple[str, ...]:
        """The symbols of the run: `symbols`, or (symbol,)."""
        return self.symbols if self.symbols is not None else (str(self.symbol),)

    @property
    def is_portfolio(self) -> bool:
        """True for a universe (`symbols`, even of one): one account across its symbols."""
        return self.symbols is not None

    @property
    def label(self) -> str:
        """The symbol, or 'SPY+4' for a universe of SPY and four more (names, folders)."""
        if self.symbols is None:
            return str(self.symbol)
        more = len(self.symbols) - 1
        return self.symbols[0] + (f"+{more}" if more else "")

    @model_validator(mode="after")
    def _renko_settings_need_renko_bars(self) -> DataConfig:
        if self.bars == "standard" and self.renko is not None:
            raise ValueError("--renko-* settings apply to --bars renko; add --bars renko")
        return self


class StrategyConfig(_Section):
    """A built-in strategy name or ``package.module:ClassName``; its fixed parameters (a
    backtest) or a space of specs (a grid or a search: "2:101", "2:101:3", "5,10,20"), and
    constraints beyond the strategy's own ("fast * 2 <= slow")."""

    name: str = Field(min_length=1)
    params: dict[str, float | int] = Field(default_factory=dict)
    space: dict[str, str] = Field(default_factory=dict)
    constraints: tuple[str, ...] = ()


class ExecutionConfig(_Section):
    """How targets become fills. Costs are fractions of traded notional per side.

    Exits next to the strategy's signal (docs/stops.md; None: off): `sl` stop-loss, `tp`
    take-profit and `trail` trailing stop as fractions of the entry fill, `sl_atr` a
    stop-loss `sl_atr` x ATR(`atr_length`, Wilder) at entry away, `max_bars` a time stop.
    """

    commission: float = Field(0.001, ge=0.0, lt=0.1)
    slippage: float = Field(0.0005, ge=0.0, lt=0.1)
    fill: Fill = "next_open"
    direction: Direction = "long"
    size: float = Field(1.0, gt=0.0, le=1.0)
    initial_cash: float = Field(10_000.0, gt=0.0)
    periods_per_year: float | None = Field(None, gt=0.0)
    sl: float | None = Field(None, gt=0.0, lt=1.0)
    tp: float | None = Field(None, gt=0.0)
    trail: float | None = Field(None, gt=0.0, lt=1.0)
    sl_atr: float | None = Field(None, gt=0.0)
    max_bars: int | None = Field(None, ge=1)
    atr_length: int = Field(14, ge=1)

    @property
    def has_stops(self) -> bool:
        """Whether any exit besides the signal is on."""
        return any(v is not None for v in (self.sl, self.tp, self.trail, self.sl_atr,
                                           self.max_bars))  # fmt: skip


Weighting = Literal["equal", "fixed", "inverse_vol", "score"]
REBALANCE_PATTERN = r"^(signal|daily|weekly|monthly|[1-9][0-9]*bars)$"
Rebalance = Annotated[str, StringConstraints(pattern=REBALANCE_PATTERN)]
SELECT_UNIVERSE_FORMS = (
    "top:N (the N best symbols), min:X (every symbol whose metric is at least X) or both, "
    "as top:N,min:X"
)


def parse_universe_rule(text: str) -> tuple[int | None, float | None]:
    """(top N or None, minimum or None) of a `--select-universe` rule ("top:3", "min:0.5",
    "top:3,min:0.5"); ValueError naming the forms otherwise."""
    top: int | None = None
    minimum: float | None = None
    parts = [part.strip() for part in str(text).lower().split(",")]
    for part in parts:
        key, _, value = part.partition(":")
        key, value = key.strip(), value.strip()
        try:
            if key == "top" and top is None:
                top = int(value)
                if top < 1:
                    raise ValueError
            elif key in ("min", "minimum") and minimum is None:
                minimum = float(value)
                if not math.isfinite(minimum):
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{text!r} is not a universe rule: use {SELECT_UNIVERSE_FORMS}"
            ) from None
    return top, minimum


"""When a universe trades: "signal", "daily", "weekly", "monthly" or "<N>bars" (every N union
bars, counted from the panel's first bar: bars 0, N, 2N, ...)."""


class PortfolioConfig(_Section):
    """How a universe shares one account (docs/portfolio.md); unused for one `symbol`.

    weights : "equal" among the symbols with a non-flat side, "fixed" (`fixed_weights`, a
        fraction of equity per symbol, times its side), "inverse_vol" (1 / volatility of
        the last `vol_window` bars' returns, normalised) or "score" (a cross-sectional
        strategy's held symbols in proportion to how far their score lies beyond the
        cross-sectional mean, re-weighted at every selection bar; docs/strategies.md).
    max_leverage : the most gross exposure (sum of |weights|) may be; above it every weight
        scales down (never refused). max_weight : the most one symbol's |weight| may be.
    rebalance : "signal" trades when a symbol's side changes; "daily", "weekly", "monthly"
        trade at the first bar of each period only, "<N>bars" (e.g. "21bars") at every N-th
        union bar from the panel's first. band : a held symbol within `band` of its target
        weight is left alone.
    select_universe : choose the traded symbols by their in-sample results
        (`ivybt.studies.universe_selection`): "top:N", "min:X" or "top:N,min:X" on the
        metric `select_by` (default sharpe); None trades every symbol.
    lot_size, commission, slippage : per-symbol settings (commission and slippage override
        the execution section's rates for those symbols; lot_size gives whole lots).
    """

    weights: Weighting = "equal"
    fixed_weights: dict[str, float] = Field(default_factory=dict)
    vol_window: int = Field(60, ge=2)
    max_leverage: float = Field(1.0, gt=0.0)
    max_weight: float | None = Field(None, gt=0.0)
    rebalance: Rebalance = "signal"
    band: float = Field(0.0, ge=0.0, lt=1.0)
    select_universe: str | None = None
    select_by: str = "sharpe"
    lot_size: dict[str, float] = Field(default_factory=dict)
    commission: dict[str, float] = Field(default_factory=dict)
    slippage: dict[str, float] = Field(default_factory=dict)

    @field_validator("fixed_weights", "lot_size", "commission", "slippage", mode="after")
    @classmethod
    def _per_symbol(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        limits = {"fixed_weights": (0.0, 10.0), "lot_size": (0.0, math.inf),
                  "commission": (0.0, 0.1), "slippage": (0.0, 0.1)}  # fmt: skip
        low, high = limits[str(info.field_name)]
        for symbol, number in value.items():
            if not (math.isfinite(number) and low <= number < high) or (
                info.field_name == "lot_size" and number <= 0.0
            ):
                raise ValueError(
                    f"{symbol}: {number!r} is outside [{low:g}, {high:g})"
                    + (" and must be > 0" if info.field_name == "lot_size" else "")
                )
        return {symbol.strip().upper(): number for symbol, number in value.items()}

    @field_validator("select_universe", mode="after")
    @classmethod
    def _universe_rule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        top, minimum = parse_universe_rule(value)
        parts = ([] if top is None else [f"top:{top}"]) + (
            [] if minimum is None else [f"min:{minimum!r}"]
        )
        return ",".join(parts)

    @field_validator("select_by", mode="after")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from ivybt.kernels.metrics import METRIC_NAMES

        name = value.strip().lower()
        if name not in METRIC_NAMES:
            import difflib

            near = difflib.get_close_matches(name, METRIC_NAMES, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(
                f"unknown metric {value!r}; {hint}choose one of {', '.join(METRIC_NAMES)}"
            )
        return name

    @model_validator(mode="after")
    def _fixed_needs_weights(self) -> PortfolioConfig:
        if self.weights == "fixed" and not self.fixed_weights:
            raise ValueError(
                "weights 'fixed' needs fixed_weights (a mapping symbol: weight in the "
                "portfolio section of the config file)"
            )
        return self


class SplitConfig(_Section):
    """Train/test split: the first `train_split` of the bars is the training part."""

    train_split: float | None = Field(None, gt=0.0, lt=1.0)
    run_mode: RunMode = "full"

    @model_validator(mode="after")
    def _mode_needs_split(self) -> SplitConfig:
        if self.run_mode != "full" and self.train_split is None:
            raise ValueError(
                f"run_mode {self.run_mode!r} needs train_split (e.g. --train-split 0.7)"
            )
        if self.run_mode == "full" and self.train_split is not None:
            raise ValueError(
                "train_split applies to run_mode 'train' or 'test', not 'full'; "
                "add --run-mode train or --run-mode test, or drop --train-split"
            )
        return self


class WindowsConfig(_Section):
    """Walk-forward windows (`ivybt.studies.windows.make_folds`): lengths in bars ("500") or
    durations ("2y", "6M", "90d"); `folds` instead of `out_of_sample` cuts the bars after the
    first in-sample window into that many out-of-sample windows."""

    in_sample: str
    out_of_sample: str | None = None
    folds: int | None = Field(None, ge=1)
    step: str | None = None
    gap: int = Field(0, ge=0)
    anchored: bool = False
    last_window: Literal["drop", "keep"] = "drop"

    @field_validator("in_sample", "out_of_sample", "step", mode="before")
    @classmethod
    def _length_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _one_oos_rule(self) -> WindowsConfig:
        if (self.out_of_sample is None) == (self.folds is None):
            raise ValueError("give exactly one of out_of_sample (--oos) and folds (--folds)")
        return self


class StudyConfig(_Section):
    """What a study ranks combinations by, and how it may use memory.

    objective : the metric selection maximises (docs/metrics.md; max_drawdown is <= 0, so
        maximising it means the shallowest drawdown).
    min_trades : combinations with fewer closed trades are marked invalid for selection.
    memory_budget_mb : peak memory the grid engine plans for (the per-combination results,
        indicator tables and buffers; `ivybt.studies.grid`).
    max_combinations : the most combinations (before constraints) a grid or walk-forward
        accepts (`ivybt.studies.space`, default 1,000,000).
    device : where a grid or a walk-forward's grid search evaluates its combinations: "cpu"
        (the default: every strategy, universes, Dask), "gpu" (a built-in strategy on one
        symbol, on an NVIDIA GPU with `pip install 'ivybt[gpu]'`; an error otherwise) or
        "auto" (the GPU when it can run the study, else the CPU; the run says which).
        `ivybt.engine.gpu`.
    """

    kind: Literal["grid", "search", "walkforward"] = "grid"
    objective: str = "sharpe"
    min_trades: int = Field(1, ge=0)
    memory_budget_mb: float = Field(1024.0, gt=0.0)
    evidence: bool = True  # PBO and DSR in the outputs (ivybt.studies.evidence)
    max_combinations: int = Field(1_000_000, ge=1)  # space.DEFAULT_MAX_COMBINATIONS
    device: Literal["cpu", "gpu", "auto"] = "cpu"  # grid and walk-forward (ivybt.engine.gpu)
    # search only (ivybt optimize): extra objectives make the study multi-objective
    objectives: tuple[str, ...] = ()
    trials: int | None = Field(None, ge=1)
    sampler: Literal["tpe", "cmaes", "random", "nsga2", "grid"] = "tpe"
    batch_size: int = Field(32, ge=1)
    storage: str | None = None
    study_name: str | None = None
    seed: int | None = None
    # walk-forward only (ivybt walkforward)
    windows: WindowsConfig | None = None
    search: Literal["grid", "optuna"] = "grid"
    select: Literal["best", "plateau"] = "best"


class OutputConfig(_Section):
    """Where the run folder goes: `out` names it; None means results/<command>-...-<UTC>/."""

    out: str | None = None


class RunConfig(_Section):
    """Everything that defines a backtest run."""

    data: DataConfig
    strategy: StrategyConfig
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    study: StudyConfig | None = None
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _selection_needs_universe(self) -> RunConfig:
        if self.portfolio.select_universe is not None and self.data.symbols is None:
            raise ValueError(
                "select_universe chooses among a universe's symbols; give --symbols A,B,... "
                "(or --universe FILE) instead of one --symbol"
            )
        return self


def build_config(**sections: object) -> RunConfig:
    """`RunConfig(**sections)`, with pydantic's errors turned into one ConfigError line each."""
    try:
        return RunConfig.model_validate(sections)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from None


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem: 'execution.commission: Input should be ... (got 0.5)'."""
    lines = []
    for problem in err.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "config"
        message = problem["msg"].removeprefix("Value error, ")
        got = problem.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{where}: {message}{shown}")
    return "; ".join(lines)
