"""`ivybt dashboard`: optuna-dashboard on localhost for the project's studies.

The order of the checks: the STORAGE URL (`ConfigError`, exit 2, for a form IvyBT does not
accept), then the port (a busy or forbidden port is one line naming it and `--port`, exit 1),
then the connection (`StorageError`, exit 1, for a missing driver or a refused connection),
and only then the start-up line, which shows the URL with its password hidden. The server is
optuna-dashboard's WSGI app on the standard library's threaded server (as `optuna-dashboard`
itself runs it); Ctrl-C stops it, closes the storage's connections and exits 0, the normal
end of a server.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import click

from ivybt.cli import Settings
from ivybt.errors import ConfigError, IvyBTError


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # Ctrl-C does not wait for open browser connections


@click.command("dashboard")
@click.argument("storage", required=False, metavar="[STORAGE]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_obj
def dashboard(settings: Settings, storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard for STORAGE (default: the journal file of `ivybt optimize`).

    STORAGE is journal:///path/optuna.journal (or a path ending in .journal),
    sqlite:///file.db or postgresql://user@host:port/database; leave a PostgreSQL password
    out of the URL and set PGPASSWORD or ~/.pgpass (docs/storage.md). Trials carry every
    metric as user attributes and the studies name their objectives, so the dashboard shows
    the same numbers as metrics.json. Stop it with Ctrl-C.

    \b
    Examples:
      ivybt dashboard
      ivybt dashboard sqlite:///studies.db --port 8081
      ivybt dashboard journal:///data/results/optuna.journal
      PGPASSWORD=... ivybt dashboard postgresql://ivybt@db.example.com:5432/studies
    """
    import optuna_dashboard

    from ivybt.redact import redact
    from ivybt.studies.storage_url import close_storage
    from ivybt.studies.study_storage import open_storage, storage_url_of

    url = storage_url_of(storage, settings.results_dir)
    if url.startswith("journal://") and not Path(url.removeprefix("journal://")).exists():
        raise ConfigError(
            f"no studies at {url} yet; run `ivybt optimize` first or give a STORAGE URL"
        )
    server = _listen(host, port)
    loaded = None
    try:
        loaded = open_storage(url)
        server.set_app(optuna_dashboard.wsgi(loaded))
        click.echo(
            f"optuna-dashboard for {redact(url)} on http://{host}:{port}/ (Ctrl-C stops it)",
            err=True,
        )
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("dashboard stopped", err=True)
    finally:
        server.server_close()
        if loaded is not None:
            close_storage(loaded)


def _listen(host: str, port: int) -> Any:
    """The server bound to host:port, or one line naming the port (or host) and the fix."""
    try:
        return make_server(host, port, _no_app, server_class=_ThreadedServer)
    except socket.gaierror as err:
        raise ConfigError(
            f"cannot listen on --host {host!r}: {err.strerror}; give an address of this "
            "machine, e.g. --host 127.0.0.1"
        ) from None
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise IvyBTError(
                f"port {port} on {host} is already in use (another dashboard?); stop that "
                f"program or choose another port, e.g. --port {port + 1 if port < 65535 else 8081}"
            ) from None
        if err.errno == errno.EACCES:
            raise IvyBTError(
                f"no permission to listen on port {port}; choose a port above 1023, e.g. "
                "--port 8080"
            ) from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"cannot listen on --host {host}: not an address of this machine; use e.g. "
                "--host 127.0.0.1"
            ) from None
        raise IvyBTError(f"cannot listen on {host}:{port}: {err.strerror}") from None


def _no_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Placeholder until the storage is open (the port is taken first, to fail fast)."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]
