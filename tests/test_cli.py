"""The `ivybt` command through Click's test runner (offline: Yahoo is the fake)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import ivybt
from ivybt.cli import IvyBTGroup, cli
from ivybt.errors import DataError
from tests.fakes import FakeYahoo


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    commands = group.all_commands() if isinstance(group, IvyBTGroup) else group.commands
    for name, command in commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
    return found


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"ivybt, version {ivybt.__version__}"


@pytest.mark.parametrize(("name", "command"), all_commands(cli), ids=lambda v: str(v))
def test_every_command_has_help_with_examples(name: str, command: click.Command) -> None:
    result = run(*name.split(), "--help")
    assert result.exit_code == 0
    assert command.help and command.help.strip().splitlines()[0]
    assert "Examples:" in result.output


def test_data_list_shows_bundled_series() -> None:
    result = run("data", "list")
    assert result.exit_code == 0
    for expected in ("SPY", "SPX", "MSFT", "BTCUSD", "IXIC", "IBM", "AAPL", "GOOG", "EURUSD"):
        assert expected in result.output
    assert "2007-01-01 21:00 UTC" in result.output
    assert "9 bundled" in result.output
    csv = run("data", "list", "--format", "csv").output.splitlines()
    assert csv[0] == "symbol,interval,location,source,first,last,rows,adj_close,detail"
    assert len(csv) == 10


def test_data_show_spy_offline() -> None:
    result = run("data", "show", "SPY", "--rows", "2")
    assert result.exit_code == 0, result.output
    assert "source            sample" in result.output
    assert "rows              5,241" in result.output
    assert "largest_gap       7 days" in result.output  # the 9/11 closure
    assert "1999-11-01  136.5000" in result.output
    assert "2020-08-28  349.44" in result.output


def test_data_show_adjusted_and_range() -> None:
    result = run(
        "data", "show", "AAPL", "--start", "2010-01-01", "--end", "2011-01-01", "--raw", "-n", "1"
    )
    assert result.exit_code == 0
    assert "adj_close" in result.output
    assert "rows              252" in result.output


def test_unknown_symbol_is_one_line_error_exit_1() -> None:
    result = run("data", "show", "NOPE")
    assert result.exit_code == 1
    assert result.output.startswith("Error: NOPE 1d is neither cached in cache nor bundled")
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_debug_shows_the_exception() -> None:
    result = run("--debug", "data", "show", "NOPE")
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)


def test_usage_errors_exit_2() -> None:
    assert run("data", "show", "SPY", "--interval", "2d").exit_code == 2
    assert run("data", "show", "SPY", "--start", "2020-13-45").exit_code == 2
    assert run("data", "fetch").exit_code == 2
    assert run("data", "nosuch").exit_code == 2
    result = run("data", "fetch", "SPY", "--start", "2020-01-01", "--end", "2019-01-01")
    assert result.exit_code == 2
    assert "--start must be before --end" in result.output


def test_unexpected_exception_is_reported_without_traceback(monkeypatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr("ivybt.data.loader.load_series", boom)
    result = run("data", "show", "SPY")
    assert result.exit_code == 1
    assert "internal error: RuntimeError: kaput (rerun with --debug" in result.output
    assert "Traceback" not in result.output


def test_fetch_then_refetch_nothing(fake_yahoo: FakeYahoo, tmp_path: Path) -> None:
    fake_yahoo.serve_sample("AAPL")
    args = ("data", "fetch", "AAPL", "--start", "2015-01-01", "--end", "2016-01-01")
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "AAPL 1d: 1 request(s), +252 bars; cache 2015-01-02..2015-12-31" in first.output
    second = run(*args)
    assert "up to date, nothing fetched" in second.output
    assert len(fake_yahoo.calls) == 1
    assert (tmp_path / "cache" / "AAPL_1d.parquet").exists()
    listed = run("data", "list").output
    assert "AAPL       1d    cache" in listed
    shown = run("data", "show", "AAPL", "-n", "0")
    assert "source            cache" in shown.output


def test_fetch_many_reports_failures_and_keeps_the_rest(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.serve_sample("AAPL")
    result = run("data", "fetch", "NOPE", "AAPL", "--start", "2015-01-01", "--end", "2016-01-01")
    assert result.exit_code == 1
    assert "[1/2] error: NOPE: Yahoo returned no bars for NOPE 1d" in result.output
    assert "[2/2] AAPL 1d: 1 request(s), +252 bars" in result.output
    assert "1 of 2 symbols failed (NOPE); the others are cached" in result.output


def test_fetch_offline_is_one_line(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.script = deque(["network"])
    result = run("data", "fetch", "SPY")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach Yahoo Finance for SPY 1d")
    assert len(result.output.strip().splitlines()) == 1


def test_import_then_show(tmp_path: Path) -> None:
    spy = ivybt.load("SPY", "1d", "2019-01-01", "2020-01-01", source="sample")
    path = tmp_path / "SPY_D.csv"
    spy.rename(columns=str.title).rename_axis("Date").to_csv(path)
    result = run("data", "import", str(path), "--symbol", "spy", "--interval", "1d")
    assert result.exit_code == 0, result.output
    assert "read 252 1d bars of SPY from SPY_D.csv" in result.output
    shown = run("data", "show", "SPY", "-n", "0")
    assert "source            cache" in shown.output
    assert "rows              252" in shown.output
    bad = run("data", "import", str(path), "--symbol", "SPY", "--interval", "1h")
    assert bad.exit_code == 1
    assert "stamped" in bad.output or "does not fit --interval 1h" in bad.output


def test_cache_dir_from_env_and_flag(tmp_path: Path) -> None:
    env_dir, flag_dir = tmp_path / "from-env", tmp_path / "from-flag"
    shown = run("info", env={"IVYBT_CACHE_DIR": str(env_dir), "IVYBT_RESULTS_DIR": "res"})
    assert f"cache dir    {env_dir}" in shown.output
    assert "results dir  res" in shown.output
    shown = run("--cache-dir", str(flag_dir), "info", env={"IVYBT_CACHE_DIR": str(env_dir)})
    assert f"cache dir    {flag_dir}" in shown.output
    default = run("info")
    assert "cache dir    cache" in default.output
    assert "results dir  results" in default.output


def test_console_script_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "ivybt", "data", "show", "SPY", "-n", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "rows              5,241" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "ivybt", "data", "show", "NOPE"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: NOPE 1d is neither cached")
    assert "Traceback" not in failed.stderr
