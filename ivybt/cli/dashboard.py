"""`ivybt dashboard`: optuna-dashboard on localhost for the project's studies."""

from __future__ import annotations

from pathlib import Path

import click

from ivybt.cli import Settings


@click.command("dashboard")
@click.argument("storage", required=False, metavar="[STORAGE]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_obj
def dashboard(settings: Settings, storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard for STORAGE (default: the journal file of `ivybt optimize`).

    Trials carry every metric as user attributes and the studies name their objectives, so
    the dashboard shows the same numbers as metrics.json. Stop it with Ctrl-C.

    \b
    Examples:
      ivybt dashboard
      ivybt dashboard sqlite:///studies.db --port 8081
      ivybt dashboard journal:///data/results/optuna.journal
    """
    import optuna_dashboard

    from ivybt.errors import ConfigError
    from ivybt.studies.study_storage import open_storage, storage_url_of

    url = storage_url_of(storage, settings.results_dir)
    if url.startswith("journal://") and not Path(url.removeprefix("journal://")).exists():
        raise ConfigError(
            f"no studies at {url} yet; run `ivybt optimize` first or give a STORAGE URL"
        )
    click.echo(f"optuna-dashboard for {url} on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    optuna_dashboard.run_server(open_storage(url), host=host, port=port)
