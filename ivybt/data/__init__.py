"""Market data: Yahoo fetch, the incremental Parquet cache, vendor-file import, validation,
and the bundled real sample. The only package in IvyBT that touches the network or the cache.

See docs/data.md for the rules (timestamps, coverage, revisions, adjusted vs raw prices).
"""

from __future__ import annotations

from ivybt.data.cache import DataCache, UpdateReport, fetch
from ivybt.data.importer import ImportReport, import_file, read_vendor_file
from ivybt.data.intervals import INTERVAL_NAMES, Interval, parse_interval
from ivybt.data.loader import SOURCES, LoadedSeries, list_series, load, load_series
from ivybt.data.panel import Panel, load_panel, panel_from_frames
from ivybt.data.sample import SampleSeries, sample_catalog
from ivybt.data.store import SeriesMeta, data_sha256
from ivybt.data.universe import parse_symbols, read_universe
from ivybt.data.validate import Validated, validate_ohlcv
from ivybt.data.yahoo import RetryPolicy, fetch_yahoo

__all__ = [
    "INTERVAL_NAMES",
    "SOURCES",
    "DataCache",
    "ImportReport",
    "Interval",
    "LoadedSeries",
    "Panel",
    "RetryPolicy",
    "SampleSeries",
    "SeriesMeta",
    "UpdateReport",
    "Validated",
    "data_sha256",
    "fetch",
    "fetch_yahoo",
    "import_file",
    "list_series",
    "load",
    "load_panel",
    "load_series",
    "panel_from_frames",
    "parse_interval",
    "parse_symbols",
    "read_universe",
    "read_vendor_file",
    "sample_catalog",
    "validate_ohlcv",
]
