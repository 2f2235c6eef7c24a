"""The ``gridmap`` command: one module per command group, gathered here."""

from __future__ import annotations

import click

from gridmap.cli.coverage import coverage, plan_sites_command
from gridmap.cli.data import demo, export_command, import_command
from gridmap.cli.database import db
from gridmap.cli.grids import grid, recode, validate
from gridmap.cli.jobs import job
from gridmap.cli.maps import render
from gridmap.cli.plans import plan, redraw
from gridmap.cli.reports import report
from gridmap.cli.serve import serve
from gridmap.cli.tokens import token


@click.group()
def main() -> None:
    """gridmap: community grids, buildings and service stations over PostGIS."""


for command in (
    db,
    import_command,
    export_command,
    demo,
    validate,
    recode,
    grid,
    coverage,
    plan_sites_command,
    redraw,
    plan,
    render,
    report,
    token,
    job,
    serve,
):
    main.add_command(command)
