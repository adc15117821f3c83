"""`ivybt.signals(...)` and `ivybt signals`: what a saved preset holds now, per symbol.

For each preset (`ivybt.runs.presets`) and each of its symbols: the side to hold from the next
fill on, since which bar, what the last bar's decision changed (enter, exit, flip, hold) and
why, the target weight after the portfolio's normalisation and leverage cap (one symbol: its
size), the levels of the stops in force, the bars left until a time stop, the reference price
(the last close) and the data's last bar. No broker: a table to act on.

Decisions (docs/presets.md):

- **Data.** Each symbol's bars are brought up to date through the cache, `source="auto"` by
  default: only what is missing is fetched; offline, the cache, else the bundled sample with a
  `SampleFallbackWarning` (the loader's own rule, `ivybt.data.loader`). The preset's start is
  kept (the account is simulated from there, as the backtest was); its end and a train/test
  split are not (the account trades every bar from the start).
- **The last complete bar.** A bar is complete once its period has ended at `now` (or at
  `as_of`): an intraday bar when its open + length has passed, a daily bar once its UTC date
  is over, weekly and monthly bars once their week or month is
  (`ivybt.data.intervals.Interval.complete_before`, the rule the cache stores bars by). A
  bar still forming, such as today's daily bar before midnight UTC, is dropped. The data are
  cut there *before* anything is computed, so nothing after it can leak in.
- **`as_of`** replays a past moment: a date means its 00:00 UTC, so `as_of="2020-06-01"`
  computes with the bars up to 2020-05-29 and reports what the backtest held on 2020-06-01
  (after that day's open fill; with close fills, from the close before).
- **The engine decides.** The account is the backtest's own kernel
  (`ivybt.engine.signals.latest_state`): sides, blocked sides after stops, time stops,
  rebalancing schedule, weights and levels are the backtest's, never recomputed here.
- **Stale data.** A symbol is stale when its last bar ended more than `max_age` before
  `now`/`as_of` (default `default_max_age`: 4 days for daily and intraday bars, covering a
  weekend and a holiday; the bar length + 3 days for weekly and monthly bars). It is
  reported (`stale`), and `ivybt signals` exits with status 3. A stale symbol of a universe
  is treated as the backtest treats a symbol whose bars end: delisted; a fresh one whose
  bars end before the others' (a holiday of its exchange) stays listed.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ivybt.config import OutputConfig, PortfolioConfig, SplitConfig
from ivybt.data.intervals import Interval, parse_interval, to_bound
from ivybt.data.loader import SOURCES
from ivybt.errors import ConfigError, DataRangeWarning
from ivybt.runs.presets import Preset, load_preset

SIGNAL_COLUMNS = (
    "preset", "symbol", "side", "since", "change", "reason", "weight", "signal", "stop_loss",
    "take_profit", "trailing_stop", "time_stop_bars", "price", "last_bar", "age_days", "stale",
)  # fmt: skip
"""The columns of the signals table, in order."""
STATUS_STALE = 3
"""`ivybt signals`' exit status when some symbol's data are stale."""


def default_max_age(interval: str | Interval) -> pd.Timedelta:
    """How old a symbol's last bar may be (from its end to now) before it is stale: 4 days
    for intraday and daily bars (a weekend and a holiday), else the bar length + 3 days
    (weekly: 10 days, monthly: 34 days)."""
    iv = parse_interval(interval)
    return max(pd.Timedelta(days=4), iv.step + pd.Timedelta(days=3))


def parse_as_of(value: object) -> pd.Timestamp:
    """`value` (a date, a time, a Timestamp) as a UTC instant; a date is its 00:00 UTC, a
    naive time is UTC."""
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise ConfigError(
            f"as_of must be a date like 2020-06-01 or a time like '2020-06-01 14:30', got "
            f"{value!r}"
        )
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*")
_UNITS = {"w": "weeks", "week": "weeks", "weeks": "weeks", "d": "days", "day": "days",
          "days": "days", "h": "hours", "hour": "hours", "hours": "hours", "m": "minutes",
          "min": "minutes", "minute": "minutes", "minutes": "minutes"}  # fmt: skip


def parse_max_age(value: object) -> pd.Timedelta:
    """`value` ("4d", "36h", "2w", "90min", "1.5 days", a timedelta) as a positive duration."""
    age: Any = pd.NaT
    if isinstance(value, pd.Timedelta | datetime.timedelta):
        age = pd.Timedelta(value)
    else:
        found = _DURATION.fullmatch(str(value).lower())
        if found is not None and found.group(2) in _UNITS:
            age = pd.Timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    if age is pd.NaT or age <= pd.Timedelta(0):
        raise ConfigError(
            f"max_age must be a positive duration such as 4d, 36h, 2w or 90min, got {value!r}"
        )
    return age


def signals(
    presets: str | Sequence[str],
    *,
    as_of: object = None,
    source: str = "auto",
    max_age: object = None,
    presets_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The signals of the saved `presets` (names) as one table, one row per preset and
    symbol; mirrors `ivybt signals` (module docstring for every decision).

    Parameters
    ----------
    presets : a preset name or several (`ivybt preset list`).
    as_of : None (now), or the moment to replay: a date (its 00:00 UTC) or a time.
    source : "auto" (default), "yahoo", "cache" or "sample", for every symbol.
    max_age : how old a last bar may be before it is stale ("4d", a Timedelta); None: the
        interval's default (`default_max_age`).
    presets_dir, cache_dir : the folders (default: `ivybt._paths`).

    Returns
    -------
    DataFrame with `SIGNAL_COLUMNS`: preset, symbol; side ("long", "short", "flat") held from
    the next fill on and `since` (the timestamp of the bar whose decision gave it, NaT if
    never held); `change` ("enter", "exit", "flip", "hold") the last bar's decision made, and
    `reason` (an exit's: signal, stop_loss, take_profit, trailing, time); `weight`, the
    signed target weight (0 when flat); `signal`, the strategy's own side at the last bar
    (before stops and the rebalancing schedule); `stop_loss`, `take_profit`,
    `trailing_stop` levels (NaN: none); `time_stop_bars`, bars after the last one whose
    close decides the time stop (<NA>: none); `price`, the last close; `last_bar`, the
    symbol's last bar; `age_days`, days since it ended; `stale`. `attrs` hold `now` and
    `as_of`.

    Examples
    --------
    >>> import ivybt
    >>> table = ivybt.signals("spy-sma", as_of="2020-06-01", source="sample")  # doctest: +SKIP
    >>> table[["symbol", "side", "since", "weight"]]  # doctest: +SKIP
    """
    names = [presets] if isinstance(presets, str) else list(presets)
    if not names:
        raise ConfigError("give at least one preset name (`ivybt preset list` shows them)")
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    now = pd.Timestamp.now(tz="UTC") if as_of is None else parse_as_of(as_of)
    limit = None if max_age is None else parse_max_age(max_age)
    loaded = [load_preset(name, presets_dir=presets_dir) for name in names]  # all checked first
    frames = [
        preset_signals(preset, now=now, source=source, max_age=limit, cache_dir=cache_dir)
        for preset in loaded
    ]
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    table.attrs = {
        "now": now.isoformat(),
        "as_of": None if as_of is None else now.isoformat(),
        "max_age_days": {
            p.name: (limit or default_max_age(p.config.data.interval)) / pd.Timedelta(days=1)
            for p in loaded
        },
    }
    return table


def preset_signals(
    preset: Preset,
    *,
    now: pd.Timestamp,
    source: str = "auto",
    max_age: pd.Timedelta | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The signals table of one preset at `now` (UTC): its data cut at the last complete
    bar before `now`, its account run by the engine to that bar."""
    from ivybt.bars.timeline import signal_bars
    from ivybt.engine.inputs import prepare_inputs
    from ivybt.engine.portfolio import account_plan
    from ivybt.engine.signals import SIDES, latest_state, one_symbol_panel
    from ivybt.engine.simulation import check_enough_bars, expand_targets, strategy_targets

    config = preset.config
    iv = parse_interval(config.data.interval)
    cut = iv.complete_before(now)
    start = config.data.start
    if start is not None and to_bound(start, iv, name="start") >= cut:  # type: ignore[operator]
        raise ConfigError(
            f"preset {preset.name!r} starts at {start}, after its last complete bar before "
            f"{now:%Y-%m-%d %H:%M} UTC; give a later --as-of"
        )
    data = config.data.model_copy(update={"end": cut.isoformat(), "source": source})
    unused = config.execution.model_copy(update={"periods_per_year": 1.0})  # no metrics here
    config = config.model_copy(
        update={"data": data, "execution": unused, "split": SplitConfig(),
                "output": OutputConfig()}
    )  # fmt: skip
    strategy, params, execution = preset.strategy, config.strategy.params, config.execution
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRangeWarning)  # staleness is reported instead
        inputs = prepare_inputs(config, cache_dir=cache_dir)
    portfolio: PortfolioConfig
    if config.data.is_portfolio:
        panel = inputs.panel  # type: ignore[attr-defined]
        most = int(np.isfinite(panel.close).sum(axis=0).max(initial=0))
        check_enough_bars(strategy, params, most, inputs.describe())
        target, portfolio, basis = account_plan(panel, strategy, params, execution.direction,
                                                config.portfolio)  # fmt: skip
    else:
        frame, columns = inputs.frame, inputs.columns
        check_enough_bars(strategy, params, len(frame), inputs.describe())
        bars = signal_bars(config, frame, columns, start=0)
        own = strategy_targets(bars.columns, strategy, params, execution.direction,
                               signal_of=bars.signal_of)  # fmt: skip
        target = expand_targets(own, bars.signal_of).reshape(-1, 1)
        panel = one_symbol_panel(str(config.data.symbol), iv.name, frame.index, columns,
                                 inputs.record)  # fmt: skip
        portfolio, basis = PortfolioConfig(), None
    last_bar = panel.index[panel.last]
    ends = _as_utc(last_bar) + iv.step
    age = now - ends
    limit = max_age if max_age is not None else default_max_age(iv)
    stale = np.asarray(age > limit, dtype=bool)
    state = latest_state(panel, target, execution, portfolio, basis=basis,
                         listed_to_end=~stale)  # fmt: skip
    t = panel.n_bars - 1
    since = pd.DatetimeIndex(
        [panel.index[i] if i >= 0 else pd.NaT for i in state.since], tz=panel.index.tz
    )
    time_stop = pd.array([int(v) if v >= 0 else pd.NA for v in state.time_stop_bars],
                         dtype="Int64")  # fmt: skip
    return pd.DataFrame(
        {
            "preset": preset.name,
            "symbol": list(panel.symbols),
            "side": [SIDES[int(v)] for v in state.side],
            "since": since,
            "change": list(state.change),
            "reason": list(state.reason),
            "weight": state.weight,
            "signal": [SIDES[int(v)] for v in state.signal],
            "stop_loss": state.stop_loss,
            "take_profit": state.take_profit,
            "trailing_stop": state.trailing_stop,
            "time_stop_bars": time_stop,
            "price": panel.mark[t],
            "last_bar": last_bar,
            "age_days": np.asarray(age / pd.Timedelta(days=1), dtype=np.float64),
            "stale": stale,
        },
        columns=list(SIGNAL_COLUMNS),
    )


def signals_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready rows: timestamps as ISO text, NaN and NaT as None."""
    rows = []
    for record in table.to_dict("records"):
        row = {}
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif value is pd.NaT or value is pd.NA or (isinstance(value, float) and
                                                       np.isnan(value)):  # fmt: skip
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            row[str(key)] = value
        rows.append(row)
    return rows


def stale_lines(table: pd.DataFrame) -> list[str]:
    """One line per stale symbol, for warnings."""
    limits = table.attrs.get("max_age_days", {})
    lines = []
    for row in table[table["stale"]].itertuples(index=False):
        limit = limits.get(row.preset)
        allowed = "" if limit is None else f" (max age {limit:g} days)"
        lines.append(
            f"{row.symbol} (preset {row.preset}): its last bar, {_label(row.last_bar)}, ended "
            f"{row.age_days:,.1f} days ago, older than allowed{allowed}; bring it up to date "
            "(--source auto or yahoo, `ivybt data fetch`) or allow more with --max-age"
        )
    return lines


def _label(stamp: pd.Timestamp) -> str:
    from ivybt.data.intervals import day_label

    return day_label(stamp)


def _as_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
