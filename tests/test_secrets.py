"""Passwords never leave the process (issue #13, point 3), and storage URLs are checked: an
unknown form, a missing driver and a refused connection are one line each (point 18).

These tests need no database server: a PostgreSQL URL on a closed local port is refused. The
same commands against a live server are in tests/test_postgres.py."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from ivybt.cli import USAGE_EXIT, cli
from ivybt.files import write_json, write_text
from ivybt.redact import redact, redact_value

PASSWORD = "S3cretPW"
COMMON = ["-s", "SPY", "--source", "sample", "--start", "2016-01-01"]
SPACE = ["-p", "fast=5:30:5", "-p", "slow=40:100:20"]
ACCEPTED = "journal:///path/optuna.journal (or a path ending in .journal), sqlite:///file.db"


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def invoke(*args: str):
    return CliRunner().invoke(cli, ["--results-dir", "results", *args])


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under `root` whose bytes hold `secret`."""
    return [
        str(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:S3cretPW@host/db", "postgresql://u:***@host/db"),
        (
            "--storage=postgresql+psycopg://u:S3cretPW@db.example.com:5432/studies?sslmode=require",
            "--storage=postgresql+psycopg://u:***@db.example.com:5432/studies?sslmode=require",
        ),
        # a password nobody percent-encoded: SQLAlchemy reads it up to the last @
        ("postgresql://u:S3c/re@tPW@host/db", "postgresql://u:***@host/db"),
        ("mysql://root:S3cretPW@127.0.0.1/x", "mysql://root:***@127.0.0.1/x"),
        ("https://user:S3cretPW@example.com/x", "https://user:***@example.com/x"),
        # JSON and HTML around it
        ('{"storage": "postgresql://u:S3cretPW@h/db", "mail": "a@b"}',
         '{"storage": "postgresql://u:***@h/db", "mail": "a@b"}'),
        ("<td>s (postgresql://u:S3cretPW@h/db)</td><td>a@b</td>",
         "<td>s (postgresql://u:***@h/db)</td><td>a@b</td>"),
        # password= parameters: URL queries and libpq key-value strings
        ("postgresql://u@h/db?sslmode=require&password=S3cretPW&x=1",
         "postgresql://u@h/db?sslmode=require&password=***&x=1"),
        ("host=h password=S3cretPW user=u", "host=h password=*** user=u"),
        ("host=h PASSWORD='S3cret PW' user=u", "host=h PASSWORD=*** user=u"),
        ("postgresql://h/db?password=S3cretPW", "postgresql://h/db?password=***"),
    ],
)  # fmt: skip
def test_redact_hides_every_password(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@h:5432/db",
        "postgresql://h:5432/db",
        "sqlite:///studies.db",
        "journal:///data/results/optuna.journal",
        "https://cdn.example.com:8080/npm/pkg@1.2.3/dist/x.js",  # port, then @ in the path
        "mailto:someone@example.com and a: b@c",
        "the password is needed",
    ],
)
def test_redact_leaves_text_without_a_password_alone(text: str) -> None:
    assert redact(text) == text


def test_run_folder_files_never_hold_a_password(tmp_path: Path) -> None:
    url = f"postgresql://u:{PASSWORD}@h/db"
    write_json(tmp_path / "m.json", {"storage": url, url: [url, (url,)], "n": 1.5})
    write_text(tmp_path / "r.html", f"<td>{url}</td>")
    assert files_holding(tmp_path, PASSWORD) == []
    assert redact_value({"a": [url, 1]}) == {"a": ["postgresql://u:***@h/db", 1]}


def test_a_refused_connection_is_one_line_and_nothing_written_or_printed_shows_the_password(
    tmp_path: Path,
) -> None:
    port = closed_port()
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db"
    shown = f"postgresql://u:***@127.0.0.1:{port}/db"
    runs = {
        "optimize": invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "8",
                           "--storage", url, "--out", "results/opt"),
        "walkforward": invoke("walkforward", "sma_cross", *COMMON, *SPACE, "--is", "2y",
                              "--oos", "1y", "--search", "optuna", "--trials", "8",
                              "--storage", url, "--out", "results/wf"),
        "grid": invoke("grid", "sma_cross", *COMMON, *SPACE, "--export-study",
                       f"--storage={url}", "--out", "results/grid"),
    }  # fmt: skip
    for name, result in runs.items():
        assert result.exit_code == 1, (name, result.output)
        error = result.stderr.strip().splitlines()[-1]
        assert error.startswith(f"Error: cannot connect to PostgreSQL at 127.0.0.1:{port} "), name
        assert shown in error, name
        assert "start the server, or correct the host and port" in error, name
        assert "internal error" not in result.output, name
        assert PASSWORD not in result.output, name
    # the failed walk-forward's manifest and the grid's manifest (its command line) hold it
    assert (tmp_path / "results/wf/manifest.json").exists()
    assert (tmp_path / "results/grid/manifest.json").exists()
    assert f"--storage={shown}" in (tmp_path / "results/grid/manifest.json").read_text()
    assert files_holding(tmp_path, PASSWORD) == []


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("notaurl", f"unknown study storage 'notaurl'; give {ACCEPTED}"),
        (f"mysql://u:{PASSWORD}@127.0.0.1/db", "unknown study storage 'mysql://u:***@"),
        ("studies.db", "(for a sqlite file: sqlite:///studies.db)"),
        ("sqlite://", "an in-memory study is lost when the command ends"),
        (f"postgres://u:{PASSWORD}@127.0.0.1/db", "write postgresql://, not postgres://"),
        ("postgresql://u:pa ss@127.0.0.1/db", "percent-encode special characters"),
        ("postgresql://u:p/ss@127.0.0.1/db", "percent-encode special characters"),
        ("postgresql://127.0.0.1:port/db", "is not a valid PostgreSQL URL"),
        (".", "is a folder; give a file in it"),
    ],
)
def test_a_storage_url_of_another_form_is_one_line_exit_2(storage: str, expected: str) -> None:
    for args in (
        ["dashboard", storage],
        ["optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage", storage],
        ["grid", "sma_cross", *COMMON, *SPACE, "--export-study", "--storage", storage],
    ):
        result = invoke(*args)
        assert result.exit_code == USAGE_EXIT, (args, result.output)
        assert expected in result.stderr, (args, result.stderr)
        assert "internal error" not in result.output
        assert PASSWORD not in result.output
        assert "pa ss" not in result.output and "p/ss" not in result.output
        assert not Path("results").exists()  # refused before any work


def test_a_journal_path_is_a_storage(tmp_path: Path) -> None:
    result = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage",
                    "studies/mine.journal", "--out", "results/opt")  # fmt: skip
    assert result.exit_code == 0, result.output
    journal = (tmp_path / "studies/mine.journal").resolve()
    assert f"in journal://{journal}: 4 trials" in result.output
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert len(study.trials) == 4


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails, as uninstalled
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:{closed_port()}/db"
    result = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--storage", url)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        "Error: a PostgreSQL study storage needs the psycopg driver, which is not installed; "
        "install it with pip install 'ivybt[postgres]'"
    )


def test_dashboard_refused_connection_is_one_line_without_the_password() -> None:
    port = closed_port()
    result = invoke("dashboard", f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db", "--port",
                    str(closed_port()))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().startswith(
        f"Error: cannot connect to PostgreSQL at 127.0.0.1:{port} "
        f"(postgresql://u:***@127.0.0.1:{port}/db): "
    )
    assert PASSWORD not in result.output
    assert "optuna-dashboard for" not in result.output  # no start-up line before it fails


def test_dashboard_on_a_busy_port_names_the_port_and_the_option(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    journal.touch()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("dashboard", str(journal), "--port", str(port))
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use (another dashboard?); stop that "
        f"program or choose another port, e.g. --port {port + 1}"
    )


def test_an_error_warning_or_log_line_never_shows_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI's last line of defence: whatever raises, warns or logs, the line is redacted."""
    import logging
    import warnings

    url = f"postgresql://u:{PASSWORD}@h/db"

    def fail() -> None:
        logging.getLogger("ivybt.test").warning("logged %s", url)
        warnings.warn(f"warned {url}", UserWarning, stacklevel=1)
        raise RuntimeError(f"boom at {url}")

    monkeypatch.setattr("ivybt.strategies.builtin_strategies", fail)
    result = invoke("strategies")
    assert result.exit_code == 1
    shown = "postgresql://u:***@h/db"
    assert f"warning: logged {shown}" in result.stderr
    assert f"warning: warned {shown}" in result.stderr
    assert f"internal error: RuntimeError: boom at {shown}" in result.stderr
    assert PASSWORD not in result.output


def test_a_storage_lost_mid_run_is_one_line_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that goes away while a search runs: Optuna raises StorageInternalError,
    which was an "internal error"; it is one line (exit 1) saying the stored trials are kept."""

    def lost(*args: object, **kwargs: object) -> None:
        raise optuna.exceptions.StorageInternalError(
            "An exception is raised during the commit: connection to postgresql://u:S3cretPW@h/db "
            "was closed"
        )

    monkeypatch.setattr("ivybt.runs.optimize.search_batch", lost)
    result = invoke("optimize", "sma_cross", *COMMON, *SPACE, "--trials", "4", "--out", "o")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "the study storage failed while the command ran" in lines[0]
    assert "rerun the same command to resume" in lines[0] and "internal error" not in lines[0]
    assert "S3cretPW" not in result.output
