"""``gridmap report``: tables to take away, as CSV or Excel."""

from __future__ import annotations

from pathlib import Path

import click

from gridmap.cli.common import transaction
from gridmap.cli.coverage import NO_WORKERS, write_report


@click.group()
def report() -> None:
    """Reports per grid and community with names, subtotals and the total."""


@report.command()
@click.argument("code")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write: .csv (UTF-8 with a byte order mark, for Excel) or .xlsx.",
)
@NO_WORKERS
def workload(code: str, output: Path, no_workers: bool) -> None:
    """Workload per grid of the street or community CODE: buildings, households (and
    how many are estimated), residents and stations, with names and subtotals."""
    from gridmap import report_store, reports

    fmt = output.suffix.lower().lstrip(".")
    if fmt not in reports.FORMATS:
        raise click.BadParameter("the file must end in .csv or .xlsx", param_hint="--output")
    with transaction() as session:
        names = report_store.area_names(session, code)
        figures = report_store.workload_figures(session, code)
    table = reports.workload_table(figures, names, workers=not no_workers)
    write_report(table, output if fmt == "csv" else None, output if fmt == "xlsx" else None)
    click.echo(f"wrote {output}: {len(table.rows)} rows, {len(figures)} grids")
