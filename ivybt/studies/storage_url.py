"""Study storage URLs: the forms IvyBT accepts, how a failed connection reads, and closing.

Accepted forms (anything else is a `ConfigError` that lists them):

- `journal:///abs/path/optuna.journal` (or `journal://relative/path`): Optuna's journal
  file, the default (`<results dir>/optuna.journal`); several processes may share it.
- a path ending in `.journal` (`results/optuna.journal`): the same, written short; it
  becomes `journal:///<absolute path>`.
- `sqlite:///file.db` (relative) or `sqlite:////abs/file.db`: one process at a time.
- `postgresql://user[:password]@host[:port]/database[?param=value&...]`, or the same with
  `postgresql+psycopg://`: PostgreSQL through psycopg 3, `pip install 'ivybt[postgres]'`.
  `postgresql://` always means psycopg 3 here, whatever SQLAlchemy's default driver.

Passwords. A password written in the URL is kept in memory only, where the connection is
made (`open_rdb_storage`); everything IvyBT writes or prints shows `user:***@`
(`ivybt.redact`). Better: leave it out of the URL (the command line is visible to other users
in `ps` and stays in the shell's history) and let libpq find it in the environment
(`PGPASSWORD`) or in `~/.pgpass` (`PGPASSFILE`), as psql does. A URL whose password is
`***`, as a run's manifest.json shows it, connects without a password, so `--config
manifest.json` reruns a study with the password from those places. Special characters in
the user name, password or database name must be percent-encoded (`@` as %40, `/` as %2F).

Failures are one line, the password hidden: an unknown form is a `ConfigError` (exit 2); a
missing driver, a refused connection, a failed login or a missing database is a
`StorageError` (exit 1) naming the host and port and the fix. A PostgreSQL connection
attempt gives up after 10 s unless the URL sets `connect_timeout`.

Every RDB storage opened here has its connection pool closed when the storage is garbage
collected or at exit (`close_storage` closes it at once), so psycopg never warns that a
connection was "deleted while still open".
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
import weakref
from pathlib import Path
from typing import Any

from ivybt.errors import ConfigError, StorageError
from ivybt.redact import MASK, redact

ACCEPTED = (
    "journal:///path/optuna.journal (or a path ending in .journal), sqlite:///file.db or "
    "postgresql://user@host:port/database"
)
INSTALL_POSTGRES = "pip install 'ivybt[postgres]'"
POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg")
CONNECT_TIMEOUT_S = 10
POOL_SIZE = 3  # connections kept per process (storage, heartbeat, advisory lock)
_PASSWORD_FIX = "put the password in PGPASSWORD or ~/.pgpass instead of the URL"
_ENCODE = (
    "percent-encode special characters in the user name, password and database name "
    "(@ as %40, / as %2F, ? as %3F, # as %23, a space as %20)"
)
_UNSAFE_USERINFO = re.compile(r"[\s\"<>\\]")


def check_storage_url(text: str) -> str:
    """`text` checked against the accepted forms; a bare `.journal` path becomes a
    `journal:///` URL, every other accepted URL is returned as given.

    Raises `ConfigError` for anything else, naming the accepted forms; its message never
    holds a password.

    Examples
    --------
    >>> check_storage_url("postgresql://u:S3cret@db.example.com/studies")
    'postgresql://u:S3cret@db.example.com/studies'
    >>> check_storage_url("notaurl")
    Traceback (most recent call last):
    ...
    ivybt.errors.ConfigError: unknown study storage 'notaurl'; give journal:///path/optuna.journal (or a path ending in .journal), sqlite:///file.db or postgresql://user@host:port/database
    """  # noqa: E501
    url = text.strip()
    if not url:
        raise ConfigError(f"the study storage is empty; give {ACCEPTED}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        path = Path(url).expanduser()
        _check_file(path, url)
        if url.endswith(".journal"):
            return f"journal://{path.resolve()}"
        raise _unknown(url)
    kind = scheme.lower()
    if kind == "journal":
        if not rest:
            raise ConfigError("journal:// needs a file, e.g. journal:///data/optuna.journal")
        _check_file(Path(rest).expanduser(), url)
        return f"journal://{rest}"
    if kind == "sqlite":
        path = rest.removeprefix("/")
        if not rest.startswith("/") or not path or path == ":memory:":
            raise ConfigError(
                f"{url!r} is not a sqlite file: an in-memory study is lost when the command "
                "ends; give a file, e.g. sqlite:///studies.db (relative) or "
                "sqlite:////data/studies.db (absolute)"
            )
        _check_file(Path(path), url)
        return url
    if kind in POSTGRES_SCHEMES:
        _check_postgres(url, rest)
        return url
    if kind == "postgres":
        raise ConfigError(
            f"{redact(url)!r}: write postgresql://, not postgres:// (SQLAlchemy reads only "
            "the former)"
        )
    raise _unknown(url)


# Heartbeats of the trials a PostgreSQL worker evaluates (ivybt.studies.study_storage)
HEARTBEAT_ENV = "IVYBT_HEARTBEAT_S"  # "interval[,grace]" in seconds, e.g. "1,4" in the tests
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 120  # > the longest pause of a live worker (a cold Numba compile holds the GIL)
MAX_RETRY = 3  # a trial's parameters are evaluated again at most this many times


def heartbeat_settings() -> dict[str, Any]:
    """`RDBStorage` keywords of the heartbeat: interval and grace period (seconds, from
    `$IVYBT_HEARTBEAT_S` = "interval[,grace]" when set) and the retry of a dead worker's
    trials (`RetryFailedTrialCallback`, at most `MAX_RETRY` times)."""
    import optuna

    interval, grace = HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S
    given = os.environ.get(HEARTBEAT_ENV, "").strip()
    if given:
        try:
            parts = [int(part) for part in given.split(",")]
        except ValueError:
            parts = []
        if not 1 <= len(parts) <= 2 or min(parts) < 1:
            raise StorageError(
                f"${HEARTBEAT_ENV}={given!r} is not 'interval[,grace]' in whole seconds >= 1, "
                "e.g. 10,120; unset it for the defaults"
            )
        interval = parts[0]
        grace = parts[1] if len(parts) == 2 else max(GRACE_PERIOD_S, 3 * interval)
    settings: dict[str, Any] = {"heartbeat_interval": interval, "grace_period": grace}
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
    if retry is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            settings["heartbeat_stale_trial_callback"] = retry(max_retry=MAX_RETRY)
    else:
        settings["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(
            max_retry=MAX_RETRY
        )
    return settings


def open_rdb_storage(url: str) -> Any:
    """An Optuna `RDBStorage` on a checked sqlite or PostgreSQL `url`, its failures one line.

    The connection URL is built here and kept here: `postgresql://` gets the psycopg 3
    driver, a `***` password is dropped (libpq then reads `PGPASSWORD` or `~/.pgpass`), and
    a connection attempt gives up after `CONNECT_TIMEOUT_S` unless the URL sets
    `connect_timeout`. Raises `StorageError` for a missing driver or a failed connection
    or login, `ConfigError` for a URL SQLAlchemy cannot read.
    """
    import optuna
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    url = check_storage_url(url)
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as err:
        raise ConfigError(f"{redact(url)!r} is not a valid storage URL: {err}") from None
    engine_kwargs: dict[str, Any] = {}
    heartbeat: dict[str, Any] = {}
    if parsed.drivername in POSTGRES_SCHEMES:
        if importlib.util.find_spec("psycopg") is None:
            raise StorageError(_missing_driver())
        parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.password == MASK:
            parsed = parsed._replace(password=None)  # URL.set() ignores None
        if "connect_timeout" not in parsed.query:
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        # per process: the storage's session, the heartbeat thread's and the study's advisory
        # lock (ivybt.studies.study_storage): N workers open at most 5 x N connections
        engine_kwargs.update(pool_size=POOL_SIZE, max_overflow=2)
        heartbeat = heartbeat_settings()
    # Optuna formats the URL as a template ({SCHEMA_VERSION}): keep literal braces literal
    connect = parsed.render_as_string(hide_password=False).replace("{", "{{").replace("}", "}}")
    try:
        with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(connect, engine_kwargs=engine_kwargs, **heartbeat)
    except ImportError as err:
        raise StorageError(_missing_driver()) from err
    except sqlalchemy.exc.DBAPIError as err:
        raise StorageError(connection_failure(url, err)) from err
    weakref.finalize(storage, storage.engine.dispose)
    return storage


def close_storage(storage: Any) -> None:
    """Close the connections of an RDB storage at once (a journal file needs nothing)."""
    backend = getattr(storage, "_backend", storage)  # optuna's _CachedStorage wraps RDBStorage
    engine = getattr(backend, "engine", None)
    if engine is not None:
        backend.remove_session()
        engine.dispose()


def connection_failure(url: str, err: BaseException) -> str:
    """One line for a failed connection to `url`: where, why (the driver's words) and the fix;
    the password hidden."""
    from sqlalchemy.engine import make_url

    reason = " ".join(str(getattr(err, "orig", None) or err).split())
    # the host and port are named once, before the reason
    reason = re.sub(r'^(connection failed: )?(connection to server at "[^"]*"( \([^)]*\))?, '
                    r"port \d+ failed: )?", "", reason)  # fmt: skip
    parsed = make_url(url)
    shown = redact(url)
    if parsed.drivername.startswith("sqlite"):
        return (
            f"cannot open the sqlite study storage {shown} ({reason}); create its folder or "
            "give a path you can write to"
        )
    where = f"{parsed.host or 'the local socket'}:{parsed.port or 5432}"
    lowered = reason.lower()
    if "connection refused" in lowered or "timeout expired" in lowered:
        fix = "start the server, or correct the host and port in the storage URL"
    elif "password" in lowered or "authentication" in lowered:
        fix = "check the user name and password (in the URL, PGPASSWORD or ~/.pgpass)"
    elif "does not exist" in lowered:
        fix = f"create the database (createdb {parsed.database}) or name an existing one"
    elif "translate host name" in lowered or "name or service not known" in lowered:
        fix = "correct the host name in the storage URL"
    else:
        fix = "check that the server is up and the storage URL is right"
    return f"cannot connect to PostgreSQL at {where} ({shown}): {redact(reason)}; {fix}"


def lost_storage(err: BaseException) -> str | None:
    """The one line for a study storage that failed after it was opened (a database that
    went away mid-run: Optuna's `StorageInternalError`, SQLAlchemy's `OperationalError`),
    or None when `err` is something else. The types are told by name, so that a command
    that never touched a storage does not import Optuna or SQLAlchemy for this."""
    names = {f"{kind.__module__}.{kind.__name__}" for kind in type(err).__mro__}
    if not names & {"optuna.exceptions.StorageInternalError", "sqlalchemy.exc.OperationalError"}:
        return None
    reason = " ".join(str(err).split("\n")[0].split())[:300]
    return (
        f"the study storage failed while the command ran ({type(err).__name__}: {reason}); "
        "the trials stored before it are kept: check that the database is running and "
        "reachable, then rerun the same command to resume"
    )


def _check_postgres(url: str, rest: str) -> None:
    """A PostgreSQL URL SQLAlchemy and libpq read the way the user meant, with no raw
    character in its user info that would defeat `redact` or move the host."""
    from sqlalchemy.engine import make_url

    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    after = rest[len(netloc) :]
    if netloc.count("@") > 1 or "@" in after.split("?", 1)[0]:
        raise ConfigError(f"the PostgreSQL storage URL holds a raw @, / ? or #; {_ENCODE}")
    userinfo = netloc.rpartition("@")[0]
    if _UNSAFE_USERINFO.search(userinfo) or "{" in userinfo or "}" in userinfo:
        raise ConfigError(
            f"the user name or password of the PostgreSQL storage URL holds a space, a quote, "
            f"< > \\ {{ or }}; {_ENCODE}, or {_PASSWORD_FIX}"
        )
    try:
        make_url(url)
    except ValueError as err:  # sqlalchemy's ArgumentError is a ValueError too
        raise ConfigError(
            f"{redact(url)!r} is not a valid PostgreSQL URL ({err}); write "
            "postgresql://user@host:port/database"
        ) from None


def _check_file(path: Path, url: str) -> None:
    if path.is_dir():
        raise ConfigError(
            f"the study storage {url!r} is a folder; give a file in it, e.g. "
            f"{path / 'optuna.journal'}"
        )


def _unknown(url: str) -> ConfigError:
    hint = ""
    if re.search(r"\.(db|sqlite3?)$", url) and "://" not in url:
        hint = f" (for a sqlite file: sqlite:///{url})"
    return ConfigError(f"unknown study storage {redact(url)!r}; give {ACCEPTED}{hint}")


def _missing_driver() -> str:
    return (
        "a PostgreSQL study storage needs the psycopg driver, which is not installed; "
        f"install it with {INSTALL_POSTGRES}"
    )
