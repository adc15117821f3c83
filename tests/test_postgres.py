"""Studies on PostgreSQL (issue #13, points 3, 18 and 28) against a live server on 127.0.0.1:
optimize, walk-forward with Optuna, grid export and the dashboard work, never show the
password, take it from PGPASSWORD (so a manifest, which hides it, reruns), close their
connections, and a failed login or a missing database is one line.

The server comes from tests/postgres.py: $IVYBT_TEST_POSTGRES_URL (.ci/run), or one started
with .ci/postgres.sh; without either the tests skip, and under CI they fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from ivybt.cli import cli
from tests.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.test_secrets import closed_port, files_holding

REPO = Path(__file__).resolve().parents[1]
COMMON = ["-s", "SPY", "--source", "sample", "--start", "2016-01-01"]
SPACE = ["-p", "fast=5:30:5", "-p", "slow=40:100:20"]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def invoke(*args: str):
    return CliRunner().invoke(cli, ["--results-dir", "results", *args])


def ivybt_process(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
    return subprocess.Popen(
        [sys.executable, "-m", "ivybt", "--results-dir", "results", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs,
    )  # fmt: skip


def password_of(url: str) -> str:
    password = make_url(url).password
    assert password and len(password) >= 8
    return password


def study_names(url: str) -> list[str]:
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    finally:
        storage.engine.dispose()


def test_optimize_walkforward_and_grid_export_never_show_the_password(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    password = password_of(postgres_url)
    shown = postgres_url.replace(f":{password}@", ":***@")
    runs = [
        invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "8", "--storage",
               postgres_url, "--study-name", "search", "--out", "results/opt"),
        invoke("walkforward", "sma_cross", *COMMON, *SPACE, "--is", "2y", "--oos", "2y",
               "--search", "optuna", "--trials", "6", "--storage", postgres_url, "--out",
               "results/wf"),
        invoke("grid", "sma_cross", *COMMON, *SPACE, "--export-study", "--storage",
               postgres_url, "--out", "results/grid"),
    ]  # fmt: skip
    for result in runs:
        assert result.exit_code == 0, result.output
        assert password not in result.output
    assert f"study 'search' in {shown}: 8 trials" in runs[0].output
    assert f"exported study 'sma_cross-SPY-grid' to {shown}" in runs[2].output
    manifest = json.loads((tmp_path / "results/opt/manifest.json").read_text())
    assert manifest["config"]["study"]["storage"] == shown
    assert manifest["storage"] == shown
    assert json.loads((tmp_path / "results/opt/metrics.json").read_text())["storage"] == shown
    assert shown in (tmp_path / "results/opt/report.html").read_text()
    # the manifest hides the password, yet a rerun on the same folder is the same run: resumed
    again = invoke("walkforward", "sma_cross", *COMMON, *SPACE, "--is", "2y", "--oos", "2y",
                   "--search", "optuna", "--trials", "6", "--storage", postgres_url, "--out",
                   "results/wf")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert files_holding(tmp_path, password) == []
    assert study_names(postgres_url)[:3] == ["search", "sma_cross-SPY-grid", "wf-fold-000"]


def test_walkforward_on_postgresql_closes_its_connections(
    postgres_url: str,  # noqa: F811
) -> None:
    """Issue #13 point 28: no 'Connection ... deleted while still open' (one storage a fold)."""
    process = ivybt_process(
        "walkforward", "sma_cross", "-s", "SPY", "--source", "sample", *SPACE, "--start",
        "2014-01-01", "--is", "1y",
        "--oos", "1y", "--search", "optuna", "--trials", "4", "--storage", postgres_url,
        "--out", "results/wf",
    )  # fmt: skip
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "deleted while still open" not in err
    assert "psycopg.Connection" not in err and "ResourceWarning" not in err
    assert len([name for name in study_names(postgres_url) if "-fold-" in name]) >= 5
    assert password_of(postgres_url) not in out + err


def test_dashboard_serves_postgresql_studies_and_never_shows_the_password(
    postgres_url: str,  # noqa: F811
) -> None:
    created = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage",
                     postgres_url, "--study-name", "search")  # fmt: skip
    assert created.exit_code == 0, created.output
    port = closed_port()
    process = ivybt_process("dashboard", postgres_url, "--port", str(port))
    try:
        studies = None
        deadline = time.monotonic() + 60
        while studies is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=5
                ) as r:
                    studies = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert studies is not None, err
    assert [s["study_name"] for s in studies["study_summaries"]] == ["search"]
    shown = postgres_url.replace(f":{password_of(postgres_url)}@", ":***@")
    assert f"optuna-dashboard for {shown} on http://127.0.0.1:{port}/" in err
    assert password_of(postgres_url) not in out + err
    assert process.returncode == 0, err


def test_the_password_comes_from_pgpassword_so_a_manifest_reruns(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = password_of(postgres_url)
    bare = postgres_url.replace(f":{password}@", "@")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no.pgpass"))
    refused = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage", bare)
    assert refused.exit_code == 1, refused.output
    assert "no password supplied; check the user name and password (in the URL, PGPASSWORD or " \
        "~/.pgpass)" in refused.stderr  # fmt: skip

    monkeypatch.setenv("PGPASSWORD", password)
    first = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage",
                   postgres_url, "--study-name", "search", "--out", "results/first")  # fmt: skip
    assert first.exit_code == 0, first.output
    # the manifest hides the password; rerunning from it takes the password from PGPASSWORD
    rerun = invoke("optimize", "--config", "results/first/manifest.json", "--trials", "8",
                   "--out", "results/rerun")  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    assert f"study 'search' in {bare.replace('ivybt@', 'ivybt:***@')}: 8 trials" in rerun.output
    # ~/.pgpass works the same way (libpq reads it when the URL has no password)
    monkeypatch.delenv("PGPASSWORD")
    url = make_url(postgres_url)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{url.host}:{url.port}:{url.database}:{url.username}:{password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    again = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "10", "--storage", bare,
                   "--study-name", "search")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert f"study 'search' in {bare}: 10 trials" in again.output
    assert files_holding(tmp_path / "results", password) == []


def test_a_failed_login_or_a_missing_database_is_one_line(
    postgres_url: str,  # noqa: F811
) -> None:
    url = make_url(postgres_url)
    wrong = url.set(password="wrong-password").render_as_string(hide_password=False)
    where = f"127.0.0.1:{url.port}"
    failed = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--storage", wrong)
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.strip() == (
        f"Error: cannot connect to PostgreSQL at {where} "
        f"(postgresql://ivybt:***@{where}/{url.database}): FATAL: password authentication "
        'failed for user "ivybt"; check the user name and password (in the URL, PGPASSWORD '
        "or ~/.pgpass)"
    )
    missing = url.set(database="no_such_db").render_as_string(hide_password=False)
    failed = invoke("dashboard", missing, "--port", str(closed_port()))
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.strip().endswith(
        'FATAL: database "no_such_db" does not exist; create the database (createdb '
        "no_such_db) or name an existing one"
    )
    assert password_of(postgres_url) not in failed.output
