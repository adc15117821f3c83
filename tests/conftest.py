"""Shared fixtures. No test touches the network: `_no_network` refuses any non-loopback
connection, and Yahoo is replaced by `tests.fakes.FakeYahoo`."""

from __future__ import annotations

import os

# The GPU grid's CUDA kernel runs under Numba's CUDA simulator in the tests (tests/test_gpu.py),
# on any machine: set before anything imports Numba, which reads it once. IVYBT_TEST_GPU=1
# leaves it unset, so the same tests run on a real GPU.
if os.environ.get("IVYBT_TEST_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import socket
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes import FakeYahoo

_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family == socket.AF_UNIX or str(host).startswith(_LOOPBACK):
            return real_connect(self, address)
        raise AssertionError(f"a test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse_dns(socket.getaddrinfo))


def _refuse_dns(real: object) -> object:
    def guarded(host: object, *args: object, **kwargs: object) -> object:
        if host is None or str(host).startswith(_LOOPBACK):
            return real(host, *args, **kwargs)  # type: ignore[operator]
        raise AssertionError(f"a test tried to resolve {host!r}")

    return guarded


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder, so ./cache and ./results never land in the repo,
    and keep presets in ./presets there (relative: the docs examples' one working folder
    shares its presets) instead of the user's own presets folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVYBT_CACHE_DIR", raising=False)
    monkeypatch.delenv("IVYBT_RESULTS_DIR", raising=False)
    monkeypatch.setenv("IVYBT_PRESETS_DIR", "presets")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def fake_yahoo(monkeypatch: pytest.MonkeyPatch) -> FakeYahoo:
    fake = FakeYahoo()
    monkeypatch.setattr("ivybt.data.yahoo.download", fake)
    monkeypatch.setattr("ivybt.data.yahoo._sleep", fake.sleeps.append)
    return fake


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).as_unit("ns")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC").as_unit("ns")


@pytest.fixture(scope="module")
def spy_columns() -> dict[str, object]:
    """The bar columns of the last 2,000 bundled SPY daily bars (grid and evidence tests)."""
    from ivybt.data.sample import load_sample
    from ivybt.engine.tables import bar_columns

    frame, _ = load_sample("SPY", "1d")
    return bar_columns(frame.iloc[-2000:])
