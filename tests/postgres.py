"""A PostgreSQL server for the tests that need one, on 127.0.0.1 only.

`$IVYBT_TEST_POSTGRES_URL` names it (.ci/run starts one with .ci/postgres.sh and exports
it). Without the variable, a session starts its own with .ci/postgres.sh when the server
binaries are installed, and stops it at the end; otherwise the tests skip, except under CI
(`CI` set), where they fail: CI must never skip the PostgreSQL tests silently. Each test gets
a database of its own (`postgres_url`), dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_ENV = "IVYBT_TEST_POSTGRES_URL"
SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the PostgreSQL tests must run (.ci/run starts it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server whose role may create databases."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    if os.environ.get("CI"):
        _unavailable(f"${URL_ENV} is not set")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'ivybt[postgres]')")
    if subprocess.run([str(SCRIPT), "available"], check=False).returncode != 0:
        _unavailable(f"no PostgreSQL server installed and ${URL_ENV} is not set")
    started = subprocess.run(
        [str(SCRIPT), "start"], capture_output=True, text=True, check=False, timeout=120
    )
    if started.returncode != 0:
        pytest.fail(f".ci/postgres.sh start failed: {started.stderr.strip()}")
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    try:
        yield exports[URL_ENV]
    finally:
        subprocess.run([str(SCRIPT), "stop", exports["IVYBT_TEST_POSTGRES_DIR"]], check=False)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """`postgresql://ivybt:<password>@127.0.0.1:<port>/<a new database>`, dropped after."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_server)
    name = f"ivybt_test_{secrets.token_hex(6)}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
