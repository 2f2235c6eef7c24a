"""``gridmap db``: the embedded cluster, migrations, dump and restore."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gridmap.cli.common import cluster, engine, settings
from gridmap.db import backup, migrate
from gridmap.db.cluster import ClusterError
from gridmap.db.engine import database_url


@click.group()
def db() -> None:
    """The database: the embedded PostGIS cluster, migrations, dump and restore."""


@db.command()
def start() -> None:
    """Start the embedded cluster (made on first start) and create PostGIS."""
    conf = settings()
    if conf.database_url:
        click.echo("GRIDMAP_DATABASE_URL is set: using that server, nothing to start.")
        return
    try:
        cluster(conf).start()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    status = cluster(conf).status()
    click.echo(
        f"database running on 127.0.0.1:{status.port} (pid {status.pid}, {status.directory})"
    )


@db.command()
def stop() -> None:
    """Stop the embedded cluster."""
    conf = settings()
    if conf.database_url:
        click.echo("GRIDMAP_DATABASE_URL is set: that server is not gridmap's to stop.")
        return
    try:
        stopped = cluster(conf).stop()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database stopped" if stopped else "database was not running")


@db.command()
def status() -> None:
    """Say whether the database runs and which migration it is at."""
    conf = settings()
    if not conf.database_url:
        state = cluster(conf).status()
        if not state.running:
            click.echo(
                f"embedded database in {state.directory}: "
                f"{'stopped' if state.initialised else 'not created yet'}"
            )
            sys.exit(1)
        click.echo(f"embedded database running on 127.0.0.1:{state.port} (pid {state.pid})")
    db_engine = engine()
    try:
        current = migrate.current_revision(db_engine)
    except Exception as exc:  # any connection failure is the answer here
        raise click.ClickException(f"database unreachable: {exc}") from exc
    head = migrate.head_revision()
    click.echo(f"schema at {current or 'nothing (run gridmap db migrate)'}; newest is {head}")


@db.command(name="migrate")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate_command(revision: str) -> None:
    """Apply migrations (up to the newest by default)."""
    db_engine = engine()
    migrate.upgrade(db_engine, revision)
    click.echo(f"schema at {migrate.current_revision(db_engine)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (``base`` removes every table)."""
    db_engine = engine()
    migrate.downgrade(db_engine, revision)
    click.echo(f"schema at {migrate.current_revision(db_engine) or 'base'}")


@db.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def dump(path: Path) -> None:
    """Write the whole database to PATH (pg_dump custom format)."""
    try:
        backup.dump(database_url(settings()), path)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dumped to {path}")


@db.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Replace the database's contents with the dump at PATH."""
    try:
        backup.restore(database_url(settings()), path)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored from {path}")
