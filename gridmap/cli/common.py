"""What the command groups share: settings, the database, progress bars, transactions."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import click
from tqdm import tqdm

from gridmap.db.cluster import Cluster, ClusterError
from gridmap.db.engine import database_url, make_engine, session_scope
from gridmap.settings import Settings


def settings() -> Settings:
    return Settings.from_env()


def cluster(settings: Settings) -> Cluster:
    try:
        return Cluster(settings.pg_dir, settings.pg_bin)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc


def engine():
    try:
        return make_engine(database_url(settings()))
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc


class Progress:
    """A tqdm bar per label, fed ``(label, done, total)``; quiet when not a terminal."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        bar = self.bars.get(label)
        if bar is None:
            bar = self.bars[label] = tqdm(
                total=total, desc=label, unit=" features", disable=None, leave=True
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()


AUTHOR = click.option(
    "--author",
    default=lambda: os.environ.get("USER", "cli"),
    show_default="$USER",
    help="Who is recorded in grid revisions.",
)
REASON = click.option("--reason", help="Why (kept in the grids' revisions).")


def geometry_file(path: Path):
    import json

    from gridmap.geometry import geometry_from_geojson

    data = json.loads(path.read_text(encoding="utf-8"))
    while data.get("type") in ("FeatureCollection", "Feature"):
        data = data["features"][0] if data["type"] == "FeatureCollection" else data["geometry"]
    geom, problems = geometry_from_geojson(data)
    if problems or geom is None:
        raise click.ClickException(f"{path}: " + "; ".join(p["reason"] for p in problems))
    return geom


@contextmanager
def transaction():
    """One transaction on gridmap's database; refusals become a clear message and exit 1."""
    from gridmap.features import Conflict, NotFound
    from gridmap.grids import LayoutRefused
    from gridmap.io.store import ImportRejected
    from gridmap.planning import PlanningProblem
    from gridmap.topology.edits import EditProblem

    try:
        with session_scope(engine()) as session:
            yield session
    except LayoutRefused as exc:
        for finding in exc.findings:
            click.echo(f"{finding.kind}: {finding.detail}", err=True)
        raise click.ClickException("refused; nothing was changed") from exc
    except ImportRejected as exc:
        raise click.ClickException("; ".join(p["reason"] for p in exc.problems)) from exc
    except (NotFound, Conflict, EditProblem, PlanningProblem, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
