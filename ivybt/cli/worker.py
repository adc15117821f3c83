"""`ivybt worker`: join an `ivybt optimize` study as one more worker (issue #18)."""

from __future__ import annotations

import click

from ivybt.cli import Settings
from ivybt.runs.workers import STORAGE_ENV


@click.command("worker")
@click.option(
    "--storage",
    envvar=STORAGE_ENV,
    required=True,
    metavar="URL",
    help=f"The study's storage (postgresql://... or a journal file); default ${STORAGE_ENV}. "
    "Keep the password out of it: PGPASSWORD or ~/.pgpass.",
)
@click.option("--study", "study_name", required=True, help="The study to join.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.pass_obj
def worker(settings: Settings, storage: str, study_name: str, quiet: bool) -> None:
    """Evaluate trials of an `ivybt optimize` study until it holds its --trials.

    The study records its run configuration (strategy, space, constraints, execution, bars,
    data source) and the SHA-256 of its bars: the worker loads the same bars here, refuses
    (exit 2) when their hash differs, then runs batches next to the other workers. Start
    the study with `ivybt optimize ... --storage URL --study-name NAME`, then run
    `ivybt worker --storage URL --study NAME` on any machine that reaches the database.

    \b
    Examples:
      ivybt worker --storage postgresql://ivybt@db.example.com/studies --study sma-spy
    """
    import contextlib

    from ivybt.cli.progress import ProgressBar
    from ivybt.redact import redact
    from ivybt.runs.optimize import join_study
    from ivybt.studies.study_storage import counted, quiet_optuna

    bar = contextlib.nullcontext(None) if quiet else ProgressBar("trials")
    with quiet_optuna(), bar as progress:
        result = join_study(
            storage, study_name, cache_dir=settings.cache_dir, results_dir=settings.results_dir,
            progress=progress,
        )  # fmt: skip
    if not quiet:
        click.echo(
            f"study {study_name!r} in {redact(result.storage_url)}: "
            f"{counted(result.study)} trials done"
        )
