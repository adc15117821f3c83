"""The real price series bundled inside the package (see `ivybt/data/sample/README.md`)."""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from ivybt.data.intervals import parse_interval
from ivybt.data.store import release_arrow_memory
from ivybt.data.validate import validate_ohlcv
from ivybt.errors import DataError


@dataclass(frozen=True)
class SampleSeries:
    """One bundled series and its provenance."""

    file: str
    symbol: str
    aliases: tuple[str, ...]
    interval: str
    name: str
    source: str
    license: str
    vendor: str
    price_basis: str

    @property
    def path(self) -> Path:
        return _sample_dir() / self.file

    def matches(self, symbol: str) -> bool:
        wanted = symbol.strip().upper()
        return wanted == self.symbol or wanted in self.aliases


@functools.cache
def sample_catalog() -> tuple[SampleSeries, ...]:
    """Every bundled series, in catalog order."""
    raw = json.loads((_sample_dir() / "catalog.json").read_text())
    return tuple(
        SampleSeries(**{**entry, "aliases": tuple(entry["aliases"])}) for entry in raw["series"]
    )


def find_sample(symbol: str, interval: str) -> SampleSeries | None:
    """The bundled series for `symbol` (or a Yahoo-style alias such as ^GSPC) at `interval`."""
    name = parse_interval(interval).name
    for entry in sample_catalog():
        if entry.interval == name and entry.matches(symbol):
            return entry
    return None


def load_sample(symbol: str, interval: str) -> tuple[pd.DataFrame, SampleSeries]:
    """Read and validate a bundled series; a clear error (with suggestions) if there is none."""
    entry = find_sample(symbol, interval)
    if entry is None:
        raise DataError(_missing_message(symbol, interval))
    frame = pd.read_parquet(entry.path)
    iv = parse_interval(entry.interval)
    checked = validate_ohlcv(frame, name=f"sample {entry.symbol} {iv.name}", interval=iv)
    release_arrow_memory()
    return checked.frame, entry


def _missing_message(symbol: str, interval: str) -> str:
    bundled = [f"{e.symbol} {e.interval}" for e in sample_catalog()]
    names = [e.symbol for e in sample_catalog()] + [a for e in sample_catalog() for a in e.aliases]
    close = difflib.get_close_matches(symbol.strip().upper(), names, n=1)
    same_symbol = [f"{e.symbol} {e.interval}" for e in sample_catalog() if e.matches(symbol)]
    if same_symbol:
        hint = f"; bundled for that symbol: {', '.join(same_symbol)} (set --interval)"
    elif close:
        hint = f"; did you mean {close[0]!r}?"
    else:
        hint = ""
    return (
        f"no bundled sample for {symbol} {interval}{hint}; bundled series are "
        f"{', '.join(bundled)}; fetch it (--source yahoo) or import it (`ivybt data import`)"
    )


def _sample_dir() -> Path:
    return Path(str(resources.files("ivybt.data") / "sample"))
