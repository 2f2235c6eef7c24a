"""``gridmap validate``, ``recode`` and ``grid``: checking and editing grids."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gridmap.cli.common import AUTHOR, REASON, geometry_file, transaction


@click.command()
@click.argument("code")
def validate(code: str) -> None:
    """Check the grid layout of a street or community; exit 1 when it has errors."""
    from gridmap.topology import validate_area

    with transaction() as session:
        report = validate_area(session, code)
    for community, finding in report.findings:
        area = f"{finding.area_m2:>10.1f}" if finding.area_m2 is not None else " " * 10
        click.echo(
            f"{finding.severity:<8}{finding.kind:<24}{community:<14}{area}  {finding.detail}"
        )
    warnings = len(report.findings) - report.errors
    click.echo(f"{code}: {report.errors} error(s), {warnings} warning(s)")
    if report.errors:
        sys.exit(1)


@click.command()
@click.argument("code")
@AUTHOR
def recode(code: str, author: str) -> None:
    """Renumber a community's grids north to south, west to east."""
    from gridmap.grids import recode_community

    with transaction() as session:
        changed = recode_community(session, code, author)
    for old, new in changed.items():
        click.echo(f"{old} -> {new}")
    click.echo(f"{len(changed)} grid code(s) changed")


@click.group()
def grid() -> None:
    """Edit grids: reshape, split, merge (refused when the layout would break)."""


@grid.command()
@click.argument("grid_id", type=int)
@click.argument("geometry", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--adjust-neighbours",
    is_flag=True,
    help="Take gained area from neighbours and give lost area to them.",
)
@AUTHOR
@REASON
def reshape(
    grid_id: int, geometry: Path, adjust_neighbours: bool, author: str, reason: str | None
) -> None:
    """Give grid GRID_ID the boundary in GEOMETRY (a GeoJSON file)."""
    from gridmap.grids import update_grid

    geom = geometry_file(geometry)
    with transaction() as session:
        record = update_grid(
            session, grid_id, geom, {}, author, reason, adjust_neighbours=adjust_neighbours
        )
    click.echo(f"grid {record['code']} is at version {record['version']}")


@grid.command()
@click.argument("grid_id", type=int)
@click.argument("line", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@AUTHOR
@REASON
def split(grid_id: int, line: Path, author: str, reason: str | None) -> None:
    """Split grid GRID_ID along the LineString in LINE (a GeoJSON file)."""
    from gridmap.grids import split_grid

    geom = geometry_file(line)
    with transaction() as session:
        ids = split_grid(session, grid_id, geom, author, reason)
    click.echo("new grids: " + ", ".join(map(str, ids)))


@grid.command()
@click.argument("grid_ids", type=int, nargs=-1, required=True)
@click.option("--name", help="Name of the merged grid.")
@AUTHOR
@REASON
def merge(grid_ids: tuple[int, ...], name: str | None, author: str, reason: str | None) -> None:
    """Merge neighbouring sibling grids GRID_IDS into one."""
    from sqlalchemy import select

    from gridmap.grids import merge_grids
    from gridmap.models import Grid

    with transaction() as session:
        versions = dict(
            session.execute(select(Grid.id, Grid.version).where(Grid.id.in_(grid_ids))).all()
        )
        new_id = merge_grids(session, versions, author, reason, name)
    click.echo(f"new grid: {new_id}")
