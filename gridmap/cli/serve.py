"""``gridmap serve``: the API and maps through gunicorn (settings in ``api/gunicorn_conf.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="$HOST or 127.0.0.1"
)
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", "5000")),
    show_default="$PORT or 5000",
)
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes.")
@click.option(
    "--threads",
    type=int,
    default=lambda: int(os.environ.get("GRIDMAP_THREADS", "8")),
    show_default="$GRIDMAP_THREADS or 8",
    help="Requests each worker serves at once.",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the API and maps with gunicorn (Ctrl-C stops it; the database keeps running).

    Each worker serves several requests at once on threads, so slow requests never
    starve /health; background jobs (large imports, city-wide coverage, redraws of
    large communities) run in a job process beside the workers.
    """
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [
        str(gunicorn),
        "--config",
        "python:api.gunicorn_conf",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "api:create_app()",
    ]
    click.echo(
        f"serving gridmap at http://{host}:{port} ({workers} workers x {threads} threads, "
        "and a job process)"
    )
    os.execv(args[0], args)
