"""--out and --overwrite never touch what IvyBT did not write (issue #13, point 13).

A folder given with --out is used when it is new, empty or an IvyBT run folder (its
manifest.json says so). Any other existing folder is refused with one line and exit 2, with
or without --overwrite; --overwrite replaces an IvyBT run folder by removing only the files
IvyBT writes there, never a file the user put beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ivybt
from ivybt.cli import cli
from ivybt.errors import ConfigError
from ivybt.runs.folder import check_reusable, clear_run_files, resolve_run_folder

SAMPLE = ["--symbol", "SPY", "--source", "sample", "--start", "2012-01-01"]
WINDOWS = ["--is", "2y", "--oos", "1y", "--no-evidence", "-p", "slow=20,40"]
WALKFORWARD = ["walkforward", "sma_cross", *SAMPLE, *WINDOWS, "-p", "fast=5,10"]
GRID = ["grid", "sma_cross", *SAMPLE, "-p", "fast=5,10", "-p", "slow=20,40", "--no-evidence"]
BACKTEST = ["backtest", "sma_cross", *SAMPLE]
OPTIMIZE = ["optimize", "sma_cross", *SAMPLE, "-p", "fast=5:10", "-p", "slow=20:40", "--trials",
            "4", "--seed", "1"]  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def user_folder(path: Path) -> dict[Path, str]:
    """A folder of the user's, with a `folds/` of its own: what must survive."""
    files = {path / "notes.txt": "my notes\n", path / "folds" / "mine.csv": "a,b\n1,2\n"}
    for file, text in files.items():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return files


def assert_untouched(files: dict[Path, str]) -> None:
    for file, text in files.items():
        assert file.read_text() == text, file


@pytest.mark.parametrize("command", [WALKFORWARD, GRID, BACKTEST, OPTIMIZE], ids=lambda c: c[0])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_a_folder_that_is_no_ivybt_run_is_refused(tmp_path: Path, command: list[str],
                                                  overwrite: bool) -> None:  # fmt: skip
    out = tmp_path / "mine"
    files = user_folder(out)
    result = invoke(*command, "--out", str(out), *(["--overwrite"] if overwrite else []))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "holds no IvyBT run" in lines[0] and "--out" in lines[0]
    assert_untouched(files)
    assert sorted(p.name for p in out.iterdir()) == ["folds", "notes.txt"]


def test_overwrite_removes_only_what_ivybt_wrote(tmp_path: Path) -> None:
    out = tmp_path / "wf"
    assert invoke(*WALKFORWARD, "--out", str(out)).exit_code == 0
    written = sorted(p.relative_to(out) for p in out.rglob("*"))
    stale = out / "surface-is-calmar-fast.html"  # an extra page `ivybt surface` drew
    assert invoke("surface", str(out), "--param", "fast", "--metric", "calmar",
                  "--side", "is").exit_code == 0  # fmt: skip
    (out / "montecarlo.json").write_text("{}")  # another IvyBT output of this run
    (out / ".report.html.x1y2.tmp").write_text("")  # left by a killed write
    files = user_folder(out)
    other = ["walkforward", "sma_cross", *SAMPLE, *WINDOWS, "-p", "fast=5,15"]
    assert invoke(*other, "--out", str(out)).exit_code == 2  # another configuration
    result = invoke(*other, "--out", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert_untouched(files)
    assert not stale.exists() and not (out / "montecarlo.json").exists()
    assert not list(out.glob(".*.tmp"))
    mine = {Path("notes.txt"), Path("folds/mine.csv")}
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.relative_to(out)
                  not in mine) == written  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["strategy"]["space"]["fast"] == "5,15"
    fold = json.loads((out / "folds" / "fold-000.json").read_text())
    assert fold["params"]["fast"] in (5, 15)  # recomputed, not the old run's folds


def test_another_command_replaces_an_ivybt_run_keeping_user_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert invoke(*BACKTEST, "--out", str(out)).exit_code == 0
    files = user_folder(out)
    assert invoke(*GRID, "--out", str(out)).exit_code == 2  # another configuration
    result = invoke(*GRID, "--out", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert_untouched(files)
    assert not (out / "trades.csv").exists() and not (out / "equity.parquet").exists()
    assert (out / "grid.parquet").exists()


def test_new_and_empty_folders_are_used(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke(*BACKTEST, "--out", str(empty)).exit_code == 0
    assert invoke(*BACKTEST, "--out", str(tmp_path / "new" / "deeper")).exit_code == 0
    again = invoke(*BACKTEST, "--out", str(empty))  # the same run again: rerun in place
    assert again.exit_code == 0, again.output


def test_python_api_refuses_files_and_foreign_folders(tmp_path: Path) -> None:
    a_file = tmp_path / "prices.csv"
    a_file.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_run_folder(a_file, "x")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_run_folder(a_file / "below", "x")
    with pytest.raises(ConfigError, match="holds no IvyBT run"):
        ivybt.backtest("sma_cross", symbol="SPY", source="sample").write(tmp_path, overwrite=True)
    assert a_file.read_text() == "keep me"
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "manifest.json").write_text('{"name": "my package"}')
    with pytest.raises(ConfigError, match="holds no IvyBT run"):
        check_reusable(forged, {}, overwrite=True)
    with pytest.raises(ConfigError, match="holds no IvyBT run"):
        clear_run_files(forged)
    assert (forged / "manifest.json").exists()
