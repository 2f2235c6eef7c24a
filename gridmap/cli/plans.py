"""``gridmap redraw`` and ``plan``: drawing, editing and applying grid plans."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from gridmap.cli.common import AUTHOR, geometry_file, transaction


def _household_range(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("-")
    if not (sep and low.isdigit() and high.isdigit() and int(low) <= int(high)):
        raise click.BadParameter("give MIN-MAX households, e.g. 300-500")
    return int(low), int(high)


def _echo_plan(summary: dict) -> None:
    m = summary["metrics"]
    click.echo(f"plan {summary['id']} of {summary['area']} ({summary['status']})")
    click.echo("grids: " + ", ".join(f"{n} {kind}" for kind, n in m["grids"].items()))
    click.echo(
        f"{'households':<12}{'count':>6}{'min':>6}{'max':>6}{'mean':>8}{'cv':>7}{'in range':>10}"
    )
    for kind in ("general", "micro"):
        h = m[f"{kind}_households"]
        if h["count"]:
            click.echo(
                f"{kind:<12}{h['count']:>6}{h['min']:>6}{h['max']:>6}{h['mean']:>8.1f}"
                f"{h['cv'] if h['cv'] is not None else '-':>7}{h['in_range']:>10.0%}"
            )
    compact = ", ".join(f"{k} {v:.2f}" for k, v in m["polsby_popper_mean"].items())
    click.echo(f"compactness (Polsby-Popper mean): {compact}")
    roads = m["road_boundary_share"]
    click.echo(
        f"contiguous: {m['contiguous_share']:.0%}; boundary on roads: "
        f"{'-' if roads is None else f'{roads:.0%}'}; households changing grid: "
        f"{m['households_moved']} of {m['households']}"
    )
    v = m["validation"]
    click.echo(
        f"validator: {'clean' if v['valid'] else 'INVALID'} "
        f"({v['errors']} errors, {v['warnings']} warnings)"
    )
    for note in summary["notes"]:
        click.echo(f"note: {note}")


@click.command()
@click.argument("code")
@click.option("--general", callback=_household_range, help="Households per general grid: MIN-MAX.")
@click.option("--micro", callback=_household_range, help="Households per micro grid: MIN-MAX.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stability", is_flag=True, help="Prefer today's grid boundaries.")
@click.option("--split-compounds", is_flag=True, help="Do not try to keep compounds whole.")
@AUTHOR
def redraw(
    code: str,
    general: tuple[int, int] | None,
    micro: tuple[int, int] | None,
    seed: int,
    stability: bool,
    split_compounds: bool,
    author: str,
) -> None:
    """Draw a draft plan of community CODE's grids and print its measures."""
    from gridmap.redraw import plans
    from gridmap.redraw.engine import RedrawRules

    ranges = {k: v for k, v in (("general", general), ("micro", micro)) if v}
    rules = RedrawRules(
        seed=seed, stability=stability, keep_compounds=not split_compounds, **ranges
    )
    with tqdm(total=4, desc="redraw", disable=None, leave=False) as bar:

        def progress(step: str, done: int, total: int) -> None:
            bar.set_postfix_str(step)
            bar.update(done - bar.n)

        with transaction() as session:
            summary = plans.summary(plans.create_plan(session, code, rules, author, progress))
    _echo_plan(summary)
    click.echo(f"apply it with: gridmap plan apply {summary['id']}")


@click.group()
def plan() -> None:
    """Redraw plans: list, show, diff, apply and discard."""


@plan.command(name="list")
@click.option("--area", help="Only this community's plans.")
def plan_list(area: str | None) -> None:
    """List plans, newest first."""
    from gridmap.redraw import plans

    with transaction() as session:
        rows = [plans.summary(p) for p in plans.list_plans(session, area)]
    for row in rows:
        general = row["metrics"]["general_households"]
        click.echo(
            f"{row['id']:>5}  {row['area']}  {row['status']:<8} {row['created_at'][:16]}  "
            f"{general['count']} general grids, {general['in_range'] or 0:.0%} in range"
        )


@plan.command(name="show")
@click.argument("plan_id", type=int)
def plan_show(plan_id: int) -> None:
    """Print a plan's measures."""
    from gridmap.redraw import plans

    with transaction() as session:
        summary = plans.summary(plans.get_plan(session, plan_id))
    _echo_plan(summary)


@plan.command(name="diff")
@click.argument("plan_id", type=int)
def plan_diff(plan_id: int) -> None:
    """Print where each planned grid's households come from today."""
    from gridmap.redraw import plans

    with transaction() as session:
        answer = plans.diff(session, plans.get_plan(session, plan_id))
    for grid in answer["grids"]:
        sources = ", ".join(f"{s['grid'] or 'none'} {s['households']}" for s in grid["from"])
        click.echo(f"{grid['key']:<9} continues {grid['continues'] or '-':<18} from {sources}")
    click.echo(
        f"{answer['buildings_moved']} buildings and {answer['households_moved']} households "
        "change grid"
    )


@plan.command(name="reshape")
@click.argument("plan_id", type=int)
@click.argument("key")
@click.argument("geometry", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--adjust-neighbours",
    is_flag=True,
    help="Take gained area from neighbours and give lost area to them.",
)
def plan_reshape(plan_id: int, key: str, geometry: Path, adjust_neighbours: bool) -> None:
    """Give grid KEY of a draft a new boundary from a GeoJSON file."""
    from gridmap.redraw import plans

    with transaction() as session:
        summary = plans.summary(
            plans.reshape_plan_grid(
                session, plan_id, key, geometry_file(geometry), adjust_neighbours
            )
        )
    _echo_plan(summary)


@plan.command(name="split")
@click.argument("plan_id", type=int)
@click.argument("key")
@click.argument("line", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def plan_split(plan_id: int, key: str, line: Path) -> None:
    """Cut grid KEY of a draft in two along a line from a GeoJSON file."""
    from gridmap.redraw import plans

    with transaction() as session:
        summary = plans.summary(plans.split_plan_grid(session, plan_id, key, geometry_file(line)))
    _echo_plan(summary)


@plan.command(name="merge")
@click.argument("plan_id", type=int)
@click.argument("keys", nargs=-1, required=True)
def plan_merge(plan_id: int, keys: tuple[str, ...]) -> None:
    """Merge touching sibling grids KEYS of a draft into the first of them."""
    from gridmap.redraw import plans

    with transaction() as session:
        summary = plans.summary(plans.merge_plan_grids(session, plan_id, list(keys)))
    _echo_plan(summary)


@plan.command(name="apply")
@click.argument("plan_id", type=int)
@AUTHOR
def plan_apply(plan_id: int, author: str) -> None:
    """Replace the community's grids with the plan's."""
    from gridmap.redraw import plans

    with transaction() as session:
        answer = plans.apply_plan(session, plan_id, author)
    click.echo(
        f"plan {plan_id} applied to {answer['area']}: {len(answer['retired'])} grids retired, "
        f"{len(answer['created'])} created"
    )
    ranges = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in answer["household_ranges"].items())
    click.echo(f"household ranges of {answer['area']} from now on: {ranges}")


@plan.command(name="delete")
@click.argument("plan_id", type=int)
def plan_delete(plan_id: int) -> None:
    """Discard a draft plan."""
    from gridmap.redraw import plans

    with transaction() as session:
        plans.delete_plan(session, plan_id)
    click.echo(f"plan {plan_id} discarded")
