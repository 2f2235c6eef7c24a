"""``gridmap render``: standalone map files."""

from __future__ import annotations

from pathlib import Path

import click

from gridmap.cli.common import transaction
from gridmap.models import STATION_KINDS


@click.command()
@click.argument("code")
@click.option(
    "--layer",
    type=click.Choice(["grids", "grids-by-place", "coverage", "plan"]),
    default="grids",
    show_default=True,
    help="What the map shows.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write.",
)
@click.option("--kind", type=click.Choice(list(STATION_KINDS)), help="Coverage: station kind.")
@click.option("--minutes", type=float, default=10, show_default=True, help="Coverage: minutes.")
@click.option("--plan", "plan_id", type=int, help="Plan: which plan (CODE is its community).")
@click.option("--staff", is_flag=True, help="Show worker names in the tooltips.")
def render(
    code: str,
    layer: str,
    output: Path,
    kind: str | None,
    minutes: float,
    plan_id: int | None,
    staff: bool,
) -> None:
    """Write a standalone map of street or community CODE: one HTML file with every
    asset inside it, that opens with no server and no internet."""
    from layers.base import inlined, standalone_page
    from layers.pages import coverage_map, grids_map, plan_map

    if layer == "coverage" and not kind:
        raise click.UsageError("--layer coverage needs --kind")
    if layer == "plan" and plan_id is None:
        raise click.UsageError("--layer plan needs --plan ID")
    with transaction() as session:
        if layer == "coverage":
            fmap = coverage_map(session, code, kind, inlined, minutes)
        elif layer == "plan":
            from gridmap.redraw.plans import get_plan

            if get_plan(session, plan_id).community.code != code:
                raise click.UsageError(f"plan {plan_id} is not a plan of {code}")
            fmap = plan_map(session, plan_id, inlined, staff=staff)
        else:
            fmap = grids_map(session, code, inlined, staff=staff, by_place=layer != "grids")
        html = standalone_page(fmap)
    output.write_text(html, encoding="utf-8")
    click.echo(f"{output}: {len(html) / 1e6:.1f} MB")
