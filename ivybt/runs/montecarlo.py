"""Monte Carlo resampling of a finished run (`ivybt montecarlo RUN_DIR`).

Two bootstraps, both Numba kernels in `ivybt.kernels.montecarlo`:

- "trades" (default for a backtest): each path draws the run's trades with replacement, as
  many as the run had, and compounds their returns. A trade's return is its net PnL over the
  account equity at its entry (initial cash + the net PnL of the trades before it), i.e.
  trades.parquet `return` x size / (1 + commission) under IvyBT's sizing. The trade still open
  at the last bar is included, marked at the last close as the backtest marks it (its net PnL
  has no exit fee): compounding the trades in their own order then gives the backtest's final
  equity, so "the run" line is the backtest's total return (37.27%, not the 14.1% of its
  closed trades alone). The Sharpe column is the per-trade mean / std, not annualised.
- "block" (default for a walk-forward run, the only one there: its folder keeps no trades):
  circular blocks of `block_size` consecutive per-bar returns of equity.parquet (backtest) or
  the stitched out-of-sample oos_equity.parquet (walk-forward), drawn until the path is as
  long as the run. Default block size: round(sqrt(n_bars)) (72 bars for 21 years of daily
  bars), longer than the n^(1/3) asymptotic rate on purpose, so blocks keep the multi-week
  dependence positions and volatility clusters create. Sharpe is annualised with the run's
  periods_per_year.

Percentiles are numpy's linear interpolation over paths with a finite value; "worse than
observed" is the share of those paths below the observed value (a deeper drawdown, a lower
return or Sharpe). The fan chart's quantiles use the first min(n, 10,000) paths (paths are
independent, so these are a random sample of them) on at most 500 evenly spread steps, which
bounds its memory at 40 MB whatever n and the run's length. Same seed, same files.

Each study is written to its own pair of files in the run folder, named by everything that
decides its numbers: `montecarlo-<method>-n<n>-seed<seed>.json` / `.html`, the block size
after "block" (`montecarlo-block72-n10000-seed0.json`). A rerun with other settings keeps the
earlier files; the same settings give the same numbers and rewrite the same files.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ivybt.errors import ConfigError
from ivybt.files import write_text
from ivybt.report.html import bars_label
from ivybt.runs.folder import SCHEMA_VERSION, package_versions

if TYPE_CHECKING:
    from ivybt.report.figures import ReportFigures

METHODS = ("trades", "block")
METRICS = ("total_return", "max_drawdown", "sharpe")
PERCENTILES = (5, 25, 50, 75, 95)
FAN_POINTS = 500
FAN_PATHS = 10_000
_LABELS = {"total_return": "total return", "max_drawdown": "max drawdown", "sharpe": "Sharpe"}


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """A finished Monte Carlo study of one run; fractions as in docs/metrics.md.

    total_return, max_drawdown (in [-1, 0]) and sharpe (NaN where a path has no variance) are
    float64 arrays of shape (n,), one value per path. `percentiles` has one row per metric and
    columns p5 .. p95; `fan` has one row per recorded step: step (returns compounded), x (the
    bar's time, or the trade number), p5 .. p95 over the fan paths and the run's own equity
    ("observed"), all as multiples of the starting equity; for trades a first row, step 0,
    has every path at 1.0.
    """

    run_dir: Path
    source: dict[str, Any]  # the run resampled: folder, command, strategy, symbol, data
    method: str  # "trades" or "block"
    n: int
    seed: int
    block_size: int  # 1 for trades
    n_returns: int  # returns per path: closed trades or bars
    periods_per_year: float  # 1.0 for trades (per-trade Sharpe)
    total_return: np.ndarray
    max_drawdown: np.ndarray
    sharpe: np.ndarray
    percentiles: pd.DataFrame
    observed: dict[str, float]  # the run's own values, same definitions
    share_worse: dict[str, float]  # share of paths worse than observed
    fan: pd.DataFrame
    fan_paths: int
    n_open: int = 0  # trades still open at the last bar among the resampled ones (0 or 1)

    @property
    def unit(self) -> str:
        return "trades" if self.method == "trades" else "bars"

    @property
    def stem(self) -> str:
        """The files' name without suffix: every setting that decides the numbers."""
        size = str(self.block_size) if self.method == "block" else ""
        return f"montecarlo-{self.method}{size}-n{self.n}-seed{self.seed}"

    @property
    def files(self) -> tuple[Path, Path]:
        """montecarlo-...json and montecarlo-...html in the run folder."""
        return self.run_dir / f"{self.stem}.json", self.run_dir / f"{self.stem}.html"

    @property
    def resampled(self) -> str:
        """What one path is made of, e.g. "69 closed trades + the open trade (marked at the
        last bar), with replacement"."""
        if self.method == "block":
            return f"{self.n_returns:,} bars, blocks of {self.block_size} (circular)"
        closed = self.n_returns - self.n_open
        open_part = " + the open trade (marked at the last bar)" if self.n_open else ""
        return f"{closed:,} closed trades{open_part}, with replacement"

    @property
    def run_label(self) -> str:
        """What "the run" is: the run's own returns in order."""
        if self.method == "block":
            return "the run"
        return "the run's trades in order" + (
            " (the open one marked at the last bar)" if self.n_open else "")  # fmt: skip

    def __repr__(self) -> str:
        def pct(name: str, column: str) -> str:
            return _fmt(self.percentiles.at[name, column], ".1%")

        return (
            f"<MonteCarloResult {self.method} bootstrap of {self.source['command']} "
            f"{self.run_dir}: {self.n:,} paths, seed {self.seed}; total_return p5 "
            f"{pct('total_return', 'p5')} / p50 {pct('total_return', 'p50')} / p95 "
            f"{pct('total_return', 'p95')}, the run {_fmt(self.observed['total_return'], '.1%')}; "
            f"max_drawdown p5 {pct('max_drawdown', 'p5')}>"
        )

    def plot(self) -> ReportFigures:
        """The figures of the study's HTML page, as plotly figures: the equity fan, then the
        histograms of total return, max drawdown and Sharpe
        (`ivybt.report.montecarlo.montecarlo_sections`; index by position or heading)."""
        from ivybt.report.figures import ReportFigures
        from ivybt.report.montecarlo import montecarlo_sections

        return ReportFigures(montecarlo_sections(self))

    @property
    def sharpe_basis(self) -> str:
        if self.method == "trades":
            return "per trade: mean / std (ddof 1) of trade returns, not annualised"
        return f"per bar: mean / std (ddof 1) x sqrt({self.periods_per_year:g})"

    def readings(self) -> list[str]:
        """Plain-language lines: what most paths do, and where the run itself falls."""
        pct, obs, worse = self.percentiles, self.observed, self.share_worse
        own = "the run"  # `run_label` says what that is
        return [
            f"in 95% of {self.n:,} resampled paths the max drawdown is shallower than "
            f"{_fmt(pct.at['max_drawdown', 'p5'], '.1%')}; {own} had "
            f"{_fmt(obs['max_drawdown'], '.1%')}, deeper than in "
            f"{_fmt(worse['max_drawdown'], '.0%')} of paths",
            f"in 95% of paths the total return is above "
            f"{_fmt(pct.at['total_return', 'p5'], '.1%')} (median "
            f"{_fmt(pct.at['total_return', 'p50'], '.1%')}); {own} made "
            f"{_fmt(obs['total_return'], '.1%')}, more than "
            f"{_fmt(worse['total_return'], '.0%')} of paths",
        ]

    def payload(self) -> dict[str, Any]:
        """What montecarlo.json holds (NaN as None)."""
        fan = {col: [_finite(v) for v in self.fan[col]] for col in self.fan if col != "x"}
        fan["step"] = [int(v) for v in self.fan["step"]]
        fan["x"] = [pd.Timestamp(v).isoformat() if self.method == "block" else int(v)
                    for v in self.fan["x"]]  # fmt: skip
        payload = {
            "schema_version": SCHEMA_VERSION, "command": "montecarlo", "method": self.method,
            "n": self.n, "seed": self.seed, "block_size": self.block_size,
            "n_returns": self.n_returns, "unit": self.unit, "resampled": self.resampled,
            "n_open_trades": self.n_open, "the_run": self.run_label,
            "periods_per_year": self.periods_per_year, "sharpe_basis": self.sharpe_basis,
            "source_run": self.source, "versions": package_versions(),
            "percentiles": {m: {c: _finite(v) for c, v in self.percentiles.loc[m].items()}
                            for m in METRICS},
            "observed": {m: _finite(v) for m, v in self.observed.items()},
            "share_worse": {m: _finite(v) for m, v in self.share_worse.items()},
            "reading": self.readings(),
            "fan": {"paths": self.fan_paths, "equity": "multiple of the starting equity", **fan},
        }  # fmt: skip
        return payload

    def to_json(self) -> str:
        """montecarlo.json's text: indented JSON, NaN written as null."""
        return json.dumps(self.payload(), indent=2, allow_nan=False) + "\n"


def monte_carlo(
    run_dir: str | Path, *, n: int = 10_000, method: str | None = None,
    block_size: int | None = None, seed: int = 0,
) -> MonteCarloResult:  # fmt: skip
    """Resample a finished backtest or walk-forward run; write its JSON and HTML files.

    Parameters
    ----------
    run_dir : the run folder (manifest.json with command backtest or walkforward, finished).
    n : paths to draw, >= 1.
    method : "trades" or "block"; None picks "trades" for a backtest of one symbol and
        "block" for a walk-forward run (whose folder keeps no trades) or a universe's backtest
        (whose trades overlap in time).
    block_size : bars per block, method "block" only, 1 .. n_bars; None: round(sqrt(n_bars)).
    seed : any integer (taken modulo 2^64); path i depends on (seed, i) only.

    Returns
    -------
    MonteCarloResult, also written to `run_dir` (atomically) as
    ``montecarlo-<method>[<block size>]-n<n>-seed<seed>.json`` and ``.html``
    (`MonteCarloResult.files`): studies with other settings keep their own files. Raises
    ConfigError (one line: rule, value, fix) for a folder it cannot use.
    """
    from ivybt.kernels.montecarlo import block_bootstrap_nb, path_stats_nb, trade_bootstrap_nb

    folder, manifest = _read_manifest(Path(run_dir))
    universe = (manifest.get("config") or {}).get("data", {}).get("symbols") is not None
    method = _check_method(manifest["command"], method, universe=universe)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n must be a whole number >= 1, got {n!r}; e.g. n=10000")
    if method == "trades" and block_size is not None:
        raise ConfigError(f"block_size applies to method 'block' only, got {block_size!r} "
                          "with method 'trades'; drop it, or use method 'block'")  # fmt: skip
    n_open = 0
    if method == "trades":
        returns, x, n_open = _trade_returns(folder, manifest)
    else:
        returns, x = _bar_returns(folder, manifest)
    size = _check_block(block_size, len(returns)) if method == "block" else 1
    ppy = 1.0 if method == "trades" else _periods_per_year(manifest)
    steps = np.linspace(1, len(returns), min(len(returns), FAN_POINTS))
    steps = np.unique(np.round(steps)).astype(np.int64)
    n_fan, seed_u = min(int(n), FAN_PATHS), np.uint64(int(seed) % 2**64)
    if method == "trades":
        stats, fan = trade_bootstrap_nb(returns, int(n), seed_u, steps, n_fan)
    else:
        stats, fan = block_bootstrap_nb(returns, size, int(n), seed_u, ppy, steps, n_fan)
    own, own_equity = path_stats_nb(returns, ppy, steps)
    columns = [f"p{p}" for p in PERCENTILES]
    table = pd.DataFrame(np.nan, index=list(METRICS), columns=columns, dtype=np.float64)
    observed, worse = {}, {}
    for k, name in enumerate(METRICS):
        values = stats[:, k][np.isfinite(stats[:, k])]
        if values.size:
            table.loc[name] = np.percentile(values, PERCENTILES)
        observed[name] = float(own[k])
        worse[name] = float(np.mean(values < own[k])) if values.size else math.nan
    fan_table = pd.DataFrame({"step": steps, "x": x[steps - 1]})
    fan_table[columns] = np.percentile(fan, PERCENTILES, axis=0).T
    fan_table["observed"] = own_equity
    if method == "trades":  # the fan starts at trade 0, every path at 1.0
        fan_table = pd.concat([pd.DataFrame({"step": [0], "x": [0]}), fan_table])
        fan_table = fan_table.fillna(1.0).reset_index(drop=True)
    result = MonteCarloResult(
        run_dir=folder, source=_source(folder, manifest), method=method, n=int(n),
        seed=int(seed), block_size=size, n_returns=len(returns), periods_per_year=ppy,
        total_return=stats[:, 0].copy(), max_drawdown=stats[:, 1].copy(),
        sharpe=stats[:, 2].copy(), percentiles=table, observed=observed, share_worse=worse,
        fan=fan_table, fan_paths=n_fan, n_open=n_open,
    )  # fmt: skip
    from ivybt.report.montecarlo import montecarlo_html

    page = montecarlo_html(result)  # drawn before anything is written
    json_path, html_path = result.files
    write_text(json_path, result.to_json())
    write_text(html_path, page)
    return result


def _read_manifest(folder: Path) -> tuple[Path, dict[str, Any]]:
    if not folder.is_dir():
        raise ConfigError(f"no run folder at {folder}; give the folder of a finished "
                          "backtest or walkforward run, e.g. results/backtest-...")  # fmt: skip
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        message = (f"{folder} has no readable manifest.json ({type(err).__name__}), so it is "
                   "no run folder; give the folder of a backtest or walkforward run")  # fmt: skip
        raise ConfigError(message) from err
    command, status = manifest.get("command"), manifest.get("status")
    if command in ("grid", "optimize"):
        raise ConfigError(f"{folder} is a {command} run: many combinations, no single equity "
                          "curve; backtest the chosen parameters (ivybt backtest STRATEGY -p "
                          "name=value ...) and run montecarlo on that folder")  # fmt: skip
    if command not in ("backtest", "walkforward"):
        raise ConfigError(f"montecarlo reads backtest or walkforward run folders, but {folder} "
                          f"holds a {command!r} run; give one of those")  # fmt: skip
    if status != "finished":
        raise ConfigError(f"{folder} holds a {command} run with status {status!r}, not "
                          "'finished'; rerun it with the same --out to finish it")  # fmt: skip
    return folder, manifest


def _check_method(command: str, method: str | None, *, universe: bool = False) -> str:
    """The method to use; a universe's trades overlap in time in one account, so they are
    not a sequence to resample: its backtest takes "block" (per-bar returns of the account)."""
    if method is None:
        return "trades" if command == "backtest" and not universe else "block"
    if method == "trades" and universe:
        raise ConfigError("a universe's trades overlap in time in one account, so resampling "
                          "them as a sequence would compound them wrongly; use --method block "
                          "(it resamples the account's per-bar returns)")  # fmt: skip
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use 'trades' or 'block'"
        raise ConfigError(f"method must be 'trades' or 'block', got {method!r}; {hint}")
    if method == "trades" and command == "walkforward":
        raise ConfigError("a walkforward run folder keeps no per-fold trades, so the trade "
                          "bootstrap cannot run on it; use --method block (it resamples the "
                          "stitched out-of-sample returns)")  # fmt: skip
    return method


def _check_block(block_size: int | None, n_bars: int) -> int:
    default = max(1, round(math.sqrt(n_bars)))
    if block_size is None:
        return default
    whole = isinstance(block_size, int | np.integer) and not isinstance(block_size, bool)
    if not whole or not 1 <= block_size <= n_bars:
        raise ConfigError(f"block_size must be a whole number of bars from 1 to the run's "
                          f"{n_bars:,} bars, got {block_size!r}; e.g. {default} (the "
                          "default, round(sqrt(bars)))")  # fmt: skip
    return int(block_size)


def _bar_returns(folder: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar returns of the run's equity, the first measured from the initial cash."""
    backtest = manifest["command"] == "backtest"
    path = folder / ("equity.parquet" if backtest else "oos_equity.parquet")
    frame = _read_table(path)
    equity = frame["equity"].to_numpy(dtype=np.float64)
    times = np.asarray(frame.index if backtest else pd.DatetimeIndex(frame["time"]))
    before = np.concatenate(([_initial_cash(manifest)], equity[:-1]))
    if len(equity) < 2 or not np.all(np.isfinite(equity)) or np.any(before <= 0.0):
        raise ConfigError(f"{path} must hold >= 2 bars of finite, positive equity to be "
                          f"resampled, got {len(equity)} bars (or a ruined account); "
                          "choose a longer run")  # fmt: skip
    return equity / before - 1.0, times


def _trade_returns(folder: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Every trade's net PnL over the account equity at its entry, in trade order, the open
    trade (marked at the last bar) last; the trade numbers; how many are open."""
    trades = _read_table(folder / "trades.parquet")
    is_open = trades["is_open"].to_numpy(dtype=bool)
    pnl = trades["net_pnl"].to_numpy(np.float64)
    before = _initial_cash(manifest) + np.concatenate(([0.0], np.cumsum(pnl)[:-1]))
    if len(pnl) < 2 or np.any(before <= 0.0):
        raise ConfigError(f"the trade bootstrap needs >= 2 trades, {folder} has {len(pnl)} "
                          f"({int(is_open.sum())} open); use --method block (per-bar "
                          "returns)")  # fmt: skip
    return pnl / before, np.arange(1, len(pnl) + 1), int(is_open.sum())


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        message = (f"cannot read {path} ({type(err).__name__}): the run folder is "
                   "incomplete; rerun its command with the same --out")  # fmt: skip
        raise ConfigError(message) from err


def _initial_cash(manifest: dict[str, Any]) -> float:
    return float(manifest["config"]["execution"]["initial_cash"])


def _periods_per_year(manifest: dict[str, Any]) -> float:
    value = manifest.get("periods_per_year") or manifest["config"]["execution"].get(
        "periods_per_year")  # fmt: skip
    if not value:
        raise ConfigError("the run's manifest.json records no periods_per_year; rerun the run")
    return float(value)


def _source(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    config = manifest["config"]
    source = {
        "folder": str(folder), "command": manifest["command"],
        "strategy": config["strategy"]["name"], "symbol": config["data"]["symbol"],
        "started": manifest.get("started"), "finished": manifest.get("finished"),
        "data_sha256": [record.get("sha256") for record in manifest.get("data", [])],
        "initial_cash": _initial_cash(manifest),
        "bars": bars_label(config["data"]).removeprefix(", ") or "standard",
    }  # fmt: skip
    return source


def _finite(value: Any) -> Any:
    number = float(value)
    return number if math.isfinite(number) else None


def _fmt(value: Any, fmt: str) -> str:
    number = float(value)
    return format(number, fmt) if math.isfinite(number) else "n/a"
