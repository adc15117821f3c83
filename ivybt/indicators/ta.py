"""pandas-ta indicators as indicator rows: the catalogue, checked calls, and one row per call.

A strategy declares `Indicator.ta("supertrend", length=10, multiplier=3.0, column="SUPERTd")`
(`ivybt.strategies.base.Indicator.ta`); `ivybt.engine.tables.indicator_table` computes each
distinct call once with `ta_rows` and feeds the row to the signal kernel like a built-in kind.

Conventions (docs/strategies.md, "pandas-ta indicators"):

- pandas-ta's own implementation and defaults apply. IvyBT calls every function with
  `talib=False`, so a row is the same whether or not TA-Lib is installed (pandas-ta would
  otherwise switch to TA-Lib when it can import it). The built-in kinds follow TA-Lib; where
  pandas-ta differs (its RSI and ATR seed with an SMA of the first window through `rma`
  like TA-Lib, but e.g. its `supertrend` starts its direction at +1, its `adx` smooths with
  `rma` from the first bar) the row is pandas-ta's.
- Inputs: a function's `open_`, `high`, `low`, `close` and `volume` parameters get the bars'
  columns; `source` (default "close") replaces `close`, so `Indicator.ta("ema", length=20,
  source="high")` is the EMA of the highs. Missing bars (NaN close) are left out of the call
  and are NaN in the row.
- Output: a function returning one series gives its row; one returning a table needs
  `column`: the column's name without pandas-ta's parameter suffix ("SUPERTd" for
  "SUPERTd_7_3.0") or its full name.
- Speed: a grid computes each distinct call once (the rows of equal settings are shared),
  keeps the rows for the run in a cache bounded by `CACHE_BYTES` (a search or a
  walk-forward study asks again for the same settings on the same bars), and spreads the
  calls a table still needs over local worker processes with joblib when there are at least
  `PARALLEL_CALLS` of them (pandas-ta's loops are Python, so threads would not help).
- No look-ahead: functions or settings that look ahead are refused (`LOOKS_AHEAD`, found by
  computing every catalogue function on truncated histories, tests/test_ta_indicators.py),
  as is a negative `offset` (pandas-ta's shift, which would move later values back).
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from ivybt._typing import Float64Array1D, Float64Array2D
from ivybt.errors import ConfigError

TaValue = int | float | bool | str

CACHE_BYTES = 512 * 2**20
"""Rows the run cache keeps at most (least recently used dropped first)."""
PARALLEL_CALLS = 16
"""Calls a table needs before they go to joblib worker processes (fewer: in this process)."""


class TaCall(NamedTuple):
    """One pandas-ta call: the function, its settings (name, value) and the `source`."""

    function: str
    settings: tuple[tuple[str, TaValue], ...]
    source: str


_INPUTS = {"open_": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
"""pandas-ta's price parameters -> the bar column each gets."""

LOOKS_AHEAD: dict[str, str] = {
    "dpo": "its default centered=True shifts the result back by length/2 + 1 bars (future "
    "prices); pass centered=False",
    "ichimoku": "its chikou span (column ICS) is the close shifted back into the past; use "
    "another column (ISA, ISB, ITS, IKS)",
    "zigzag": "its swing points are confirmed by later bars (it repaints)",
    "tos_stdevall": "it fits one regression line to the whole history",
    "vhm": "its volume statistics are taken over the whole history",
}
"""Catalogue functions whose rows at bar t depend on later bars, with the reason (and the
setting that avoids it, where there is one)."""

WRONG: dict[str, str] = {
    "cci": "pandas-ta 0.4.71b0's own cci computes tp - sma / (0.015 x mad), a precedence slip "
    "for (tp - sma) / (0.015 x mad), 67x off TA-Lib's CCI",
    "wcp": "pandas-ta 0.4.71b0's own wcp returns high + low + 2 x close without dividing by 4",
}
"""Catalogue functions whose own (talib=False) arithmetic is wrong in the pinned pandas-ta,
refused with the reason; found by comparing every function with TA-Lib's where both exist
(docs/strategies.md)."""

_NOT_ROWS = {"long_run": "it compares two indicator series given as arguments",
             "short_run": "it compares two indicator series given as arguments"}  # fmt: skip
"""Catalogue functions that take series other than the bars, which a row cannot give them."""


def _pandas_ta() -> Any:
    with warnings.catch_warnings():  # its import sets a pandas option pandas 3 deprecates
        warnings.simplefilter("ignore")
        import pandas_ta

    return pandas_ta


@lru_cache(maxsize=1)
def ta_catalogue() -> dict[str, str]:
    """pandas-ta's indicator functions usable as rows, name -> category, sorted by name."""
    ta = _pandas_ta()
    names = {name: category for category, listed in ta.Category.items() for name in listed
             if callable(getattr(ta, name, None)) and name not in _NOT_ROWS}  # fmt: skip
    return dict(sorted(names.items()))


def ta_function(name: str) -> Callable[..., Any]:
    """The pandas-ta function `name`, or a `ConfigError` with "did you mean"."""
    catalogue = ta_catalogue()
    if name not in catalogue:
        why = f" ({_NOT_ROWS[name]})" if name in _NOT_ROWS else ""
        raise ConfigError(
            f"unknown pandas-ta indicator {name!r}{why}{_did_you_mean(name, catalogue)}; "
            "`ivybt indicators` lists them"
        )
    return getattr(_pandas_ta(), name)  # type: ignore[no-any-return]


@lru_cache(maxsize=256)
def ta_keywords(name: str) -> dict[str, inspect.Parameter]:
    """The settings function `name` takes (its parameters other than the price inputs); read
    once per function (a grid declares an Indicator per distinct setting). Do not modify."""
    parameters = inspect.signature(ta_function(name)).parameters
    return {key: p for key, p in parameters.items()
            if key not in _INPUTS and key not in ("talib", "kwargs")
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}  # fmt: skip


def check_ta_call(name: str, keywords: Mapping[str, Any], column: str) -> None:
    """Refuse an unknown function or setting, a look-ahead and a negative offset (one line
    each, with "did you mean"); values may be whole parameter columns (arrays)."""
    known = ta_keywords(name)
    for key, value in keywords.items():
        if key not in known:
            raise ConfigError(
                f"pandas-ta {name} has no setting {key!r}{_did_you_mean(key, known)}; it "
                f"takes {', '.join(known) or 'none'} (`ivybt indicators {name}`)"
            )
        if not isinstance(value, np.ndarray | int | float | bool | str | np.number):
            raise ConfigError(
                f"pandas-ta {name}: setting {key} must be a number, a bool or a string, got "
                f"{type(value).__name__}"
            )
    offset = keywords.get("offset")
    if offset is not None and not isinstance(offset, str) and np.any(np.asarray(offset) < 0):
        raise ConfigError(
            f"pandas-ta {name}: offset {offset} < 0 moves later values back (look-ahead); "
            "use offset >= 0"
        )
    if name in LOOKS_AHEAD:
        allowed = (name == "dpo" and keywords.get("centered") is False) or (
            name == "ichimoku" and column and stem(column) != "ICS"
        )
        if not allowed:
            raise ConfigError(f"pandas-ta {name} looks ahead: {LOOKS_AHEAD[name]}")
    if name in WRONG:
        raise ConfigError(f"pandas-ta {name} is refused: {WRONG[name]}; compute it from "
                          "other rows in your signal kernel")  # fmt: skip


def ta_frame(
    name: str, columns: Mapping[str, np.ndarray], keywords: Mapping[str, TaValue], source: str
) -> Any:
    """pandas-ta's output of `name` on the bars `columns` (a Series or a DataFrame over the
    non-missing bars, indexed by their positions or timestamps)."""
    import pandas as pd

    from ivybt.bars.timeframes import TIME

    function = ta_function(name)
    close = np.asarray(columns["close"], dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(close))
    if TIME in columns:
        index: Any = pd.DatetimeIndex(np.asarray(columns[TIME])[kept].astype("datetime64[ns]"))
    else:
        index = pd.RangeIndex(len(kept))
    parameters = inspect.signature(function).parameters
    given: dict[str, Any] = {}
    for key, column in _INPUTS.items():
        if key in parameters:
            column = source if column == "close" else column
            if column not in columns:
                raise ConfigError(f"pandas-ta {name} needs the bars' {column}, which they lack")
            given[key] = pd.Series(np.asarray(columns[column], np.float64)[kept], index=index,
                                   name=column)  # fmt: skip
    if "talib" in parameters:
        given["talib"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = function(**given, **keywords)
        except ConfigError:
            raise
        except Exception as err:
            shown = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
            raise ConfigError(
                f"pandas-ta {name}({shown}) failed: {type(err).__name__}: "
                f"{' '.join(str(err).split())[:200]}; check its settings "
                f"(`ivybt indicators {name}`)"
            ) from err
    if isinstance(out, tuple):  # ichimoku: (the table on the bars, the spans ahead of them)
        out = out[0]
    return out


def ta_rows(
    name: str, columns: Mapping[str, np.ndarray], keywords: Mapping[str, TaValue],
    wanted: list[str], source: str = "close",
) -> Float64Array2D:  # fmt: skip
    """float64 (len(wanted), n_bars): the `wanted` output columns of one call of pandas-ta's
    `name` on the bars ("" for a function giving one series), NaN at missing bars."""
    import pandas as pd

    out = ta_frame(name, columns, keywords, source)
    shown = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
    if out is None:
        raise ConfigError(
            f"pandas-ta {name}({shown}) returned nothing on {len(columns['close'])} bars "
            "(too few bars for its settings?)"
        )
    close = np.asarray(columns["close"], dtype=np.float64)
    kept = np.flatnonzero(np.isfinite(close))
    rows = np.full((len(wanted), len(close)), np.nan)
    for k, column in enumerate(wanted):
        if isinstance(out, pd.DataFrame):
            series = out[pick_column(name, list(out.columns), column)]
        elif column and column not in (out.name, stem(str(out.name))):
            raise ConfigError(
                f"pandas-ta {name} gives one column, {out.name!r}, not {column!r}; drop column="
            )
        else:
            series = out
        try:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"pandas-ta {name} column {series.name!r} is not numeric") from err
        if len(values) != len(kept):
            raise ConfigError(
                f"pandas-ta {name}({shown}) returned {len(values)} values for {len(kept)} bars"
            )
        rows[k, kept] = values
    return rows


_cache: OrderedDict[tuple[str, TaCall, str], Float64Array1D] = OrderedDict()
_cache_bytes = 0


def clear_ta_cache() -> None:
    """Forget every cached row (up to `CACHE_BYTES`): a batch's worker process calls it
    after each job, so the next job starts without the last one's rows."""
    global _cache_bytes
    _cache.clear()
    _cache_bytes = 0


def ta_table(
    columns: Mapping[str, np.ndarray], wanted: Mapping[TaCall, list[str]]
) -> dict[TaCall, Float64Array2D]:
    """The `wanted` columns of each call on the bars `columns`: (len(columns), n_bars) per
    call, from the run cache or computed (`ta_rows`; in joblib worker processes when at
    least `PARALLEL_CALLS` calls are missing)."""
    digest = _bars_digest(columns)
    out: dict[TaCall, Float64Array2D] = {}
    missing = []
    for call, names in wanted.items():
        cached = [_cache.get((digest, call, name)) for name in names]
        if all(row is not None for row in cached):
            for name in names:
                _cache.move_to_end((digest, call, name))
            out[call] = np.stack(cached)  # type: ignore[arg-type]
        else:
            missing.append(call)
    computed = _compute(columns, [(call, wanted[call]) for call in missing])
    for call, rows in zip(missing, computed, strict=True):
        out[call] = rows
        for name, row in zip(wanted[call], rows, strict=True):
            _remember((digest, call, name), row)
    return out


def _compute(
    columns: Mapping[str, np.ndarray], calls: list[tuple[TaCall, list[str]]]
) -> list[Float64Array2D]:
    def one(call: TaCall, names: list[str]) -> Float64Array2D:
        return ta_rows(call.function, columns, dict(call.settings), names, call.source)

    workers = min(len(calls), os.cpu_count() or 1)
    if len(calls) < PARALLEL_CALLS or workers < 2:
        return [one(call, names) for call, names in calls]
    from joblib import Parallel, delayed

    plain = {name: np.asarray(values) for name, values in columns.items()}
    run = Parallel(n_jobs=workers, backend="loky", batch_size="auto")
    return list(run(delayed(_worker_rows)(plain, call, names) for call, names in calls))


def _worker_rows(columns: Mapping[str, np.ndarray], call: TaCall, names: list[str]) -> Any:
    return ta_rows(call.function, columns, dict(call.settings), names, call.source)


def _remember(key: tuple[str, TaCall, str], row: Float64Array1D) -> None:
    global _cache_bytes
    row = np.array(row)
    row.flags.writeable = False
    if row.nbytes > CACHE_BYTES:
        return
    old = _cache.pop(key, None)
    _cache_bytes -= 0 if old is None else old.nbytes
    _cache[key] = row
    _cache_bytes += row.nbytes
    while _cache_bytes > CACHE_BYTES:
        _, dropped = _cache.popitem(last=False)
        _cache_bytes -= dropped.nbytes


def _bars_digest(columns: Mapping[str, np.ndarray]) -> str:
    """SHA-1 of the bars' arrays (names, dtypes, bytes): rows are cached per bars."""
    sha = hashlib.sha1(usedforsecurity=False)
    for name in sorted(columns):
        values = np.ascontiguousarray(columns[name])
        sha.update(f"{name}:{values.dtype}:{values.shape}".encode())
        sha.update(values.data)
    return sha.hexdigest()


def pick_column(name: str, columns: list[Any], wanted: str) -> Any:
    """The output column `wanted` names: its full name, or its stem (the name without
    pandas-ta's trailing parameter parts, "SUPERTd" for "SUPERTd_7_3.0")."""
    stems = [stem(str(c)) for c in columns]
    if not wanted:
        raise ConfigError(
            f"pandas-ta {name} gives several columns; choose one with column=, one of "
            f"{', '.join(dict.fromkeys(stems))}"
        )
    for full, short in zip(columns, stems, strict=True):
        if wanted in (str(full), short):
            return full
    raise ConfigError(
        f"pandas-ta {name} has no column {wanted!r}{_did_you_mean(wanted, stems)}; its "
        f"columns: {', '.join(dict.fromkeys(stems))}"
    )


def stem(label: str) -> str:
    """'SUPERTd_7_3.0' -> 'SUPERTd', 'BBL_5_2.0_2.0' -> 'BBL', 'SQZ_ON' -> 'SQZ_ON': the label
    without its trailing parts that start with a digit or a sign and digit."""
    parts = label.split("_")
    while len(parts) > 1 and re.match(r"^-?\d", parts[-1]):
        parts.pop()
    return "_".join(parts)


def ta_warmup(keywords: Mapping[str, Any]) -> int:
    """An estimate of the bars before the first value: the largest integer setting whose
    name holds "length" or "period" (pandas-ta's windows), else 0."""
    windows = [int(value) for key, value in keywords.items()
               if ("length" in key or "period" in key) and isinstance(value, int | np.integer)
               and not isinstance(value, bool)]  # fmt: skip
    return max(windows, default=0)


def ta_value(value: Any) -> TaValue:
    """A setting as a plain Python value (numpy numbers to int or float; integral floats of an
    int setting stay floats: pandas-ta takes either)."""
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"a pandas-ta setting must be finite, got {value}")
    return value  # type: ignore[no-any-return]


def _did_you_mean(name: str, choices: object) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=1)  # type: ignore[call-overload]
    return f" (did you mean {matches[0]!r}?)" if matches else ""
