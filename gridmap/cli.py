"""The ``gridmap`` command: database, import and export, the demo town, the server."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from tqdm import tqdm

from gridmap.db import backup, migrate
from gridmap.db.cluster import Cluster, ClusterError
from gridmap.db.engine import database_url, make_engine, session_scope
from gridmap.io.layers import LAYERS
from gridmap.models import ROLES, STATION_KINDS
from gridmap.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _cluster(settings: Settings) -> Cluster:
    try:
        return Cluster(settings.pg_dir, settings.pg_bin)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc


def _engine():
    try:
        return make_engine(database_url(_settings()))
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc


class _Progress:
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


@click.group()
def main() -> None:
    """gridmap: community grids, buildings and service stations over PostGIS."""


# -- database ---------------------------------------------------------------------


@main.group()
def db() -> None:
    """The database: the embedded PostGIS cluster, migrations, dump and restore."""


@db.command()
def start() -> None:
    """Start the embedded cluster (made on first start) and create PostGIS."""
    settings = _settings()
    if settings.database_url:
        click.echo("GRIDMAP_DATABASE_URL is set: using that server, nothing to start.")
        return
    try:
        _cluster(settings).start()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    status = _cluster(settings).status()
    click.echo(
        f"database running on 127.0.0.1:{status.port} (pid {status.pid}, {status.directory})"
    )


@db.command()
def stop() -> None:
    """Stop the embedded cluster."""
    settings = _settings()
    if settings.database_url:
        click.echo("GRIDMAP_DATABASE_URL is set: that server is not gridmap's to stop.")
        return
    try:
        stopped = _cluster(settings).stop()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database stopped" if stopped else "database was not running")


@db.command()
def status() -> None:
    """Say whether the database runs and which migration it is at."""
    settings = _settings()
    if not settings.database_url:
        state = _cluster(settings).status()
        if not state.running:
            click.echo(
                f"embedded database in {state.directory}: "
                f"{'stopped' if state.initialised else 'not created yet'}"
            )
            sys.exit(1)
        click.echo(f"embedded database running on 127.0.0.1:{state.port} (pid {state.pid})")
    engine = _engine()
    try:
        current = migrate.current_revision(engine)
    except Exception as exc:  # any connection failure is the answer here
        raise click.ClickException(f"database unreachable: {exc}") from exc
    head = migrate.head_revision()
    click.echo(f"schema at {current or 'nothing (run gridmap db migrate)'}; newest is {head}")


@db.command(name="migrate")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate_command(revision: str) -> None:
    """Apply migrations (up to the newest by default)."""
    engine = _engine()
    migrate.upgrade(engine, revision)
    click.echo(f"schema at {migrate.current_revision(engine)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (``base`` removes every table)."""
    engine = _engine()
    migrate.downgrade(engine, revision)
    click.echo(f"schema at {migrate.current_revision(engine) or 'base'}")


@db.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def dump(path: Path) -> None:
    """Write the whole database to PATH (pg_dump custom format)."""
    try:
        backup.dump(database_url(_settings()), path)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"dumped to {path}")


@db.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def restore(path: Path) -> None:
    """Replace the database's contents with the dump at PATH."""
    try:
        backup.restore(database_url(_settings()), path)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored from {path}")


# -- data ---------------------------------------------------------------------------

LAYER_CHOICE = click.Choice(list(LAYERS))


def _field_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            raise click.BadParameter(f"{pair!r} is not FIELD=SOURCE", param_hint="--map")
        mapping[target.strip()] = source.strip()
    return mapping


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", type=LAYER_CHOICE, required=True, help="Layer the file holds.")
@click.option(
    "--map",
    "pairs",
    multiple=True,
    metavar="FIELD=SOURCE",
    help="Take FIELD from the file's SOURCE field (repeatable).",
)
@click.option("--crs", help="The file's CRS when it does not say (e.g. EPSG:4490).")
@AUTHOR
def import_command(
    path: Path, layer: str, pairs: tuple[str, ...], crs: str | None, author: str
) -> None:
    """Import a GeoJSON, GeoPackage, Shapefile or CSV file into LAYER, all or nothing."""
    from gridmap.io import FileProblem, ImportRejected, import_file

    progress = _Progress()
    try:
        count = import_file(
            _engine(),
            path,
            layer,
            _field_map(pairs),
            crs,
            author=author,
            progress=lambda done, total: progress(layer, done, total),
        )
    except FileProblem as exc:
        raise click.ClickException(str(exc)) from exc
    except ImportRejected as exc:
        for problem in exc.problems[:50]:
            where = "file" if problem.get("index") is None else f"feature {problem['index']}"
            field = f" {problem['field']}" if problem.get("field") else ""
            location = f" at {problem['location']}" if problem.get("location") else ""
            click.echo(f"{where}{field}: {problem['reason']}{location}", err=True)
        if len(exc.problems) > 50:
            click.echo(f"... and {len(exc.problems) - 50} more", err=True)
        raise click.ClickException(f"{path}: {exc}") from exc
    click.echo(f"imported {count} {layer} from {path}")


@main.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", type=LAYER_CHOICE, required=True)
@click.option("--area", help="Only features in this street or community (code).")
def export_command(path: Path, layer: str, area: str | None) -> None:
    """Export LAYER to PATH; the format follows the suffix (.geojson .gpkg .shp .csv)."""
    from gridmap.io.export import export_file
    from gridmap.io.files import FileProblem

    try:
        count = export_file(_engine(), path, layer, area)
    except FileProblem as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count} {layer} to {path}")


@main.command()
def demo() -> None:
    """Load the demo town (once; later runs change nothing)."""
    from gridmap.demo import load_demo

    counts = load_demo(_engine(), _settings().demo_dir, progress=_Progress())
    if counts is None:
        click.echo("demo town already loaded")
    else:
        click.echo("demo town loaded: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@main.command()
@click.argument("code")
def validate(code: str) -> None:
    """Check the grid layout of a street or community; exit 1 when it has errors."""
    from gridmap.topology import validate_area

    with _transaction() as session:
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


@main.command()
@click.argument("code")
@AUTHOR
def recode(code: str, author: str) -> None:
    """Renumber a community's grids north to south, west to east."""
    from gridmap.grids import recode_community

    with _transaction() as session:
        changed = recode_community(session, code, author)
    for old, new in changed.items():
        click.echo(f"{old} -> {new}")
    click.echo(f"{len(changed)} grid code(s) changed")


@main.group()
def grid() -> None:
    """Edit grids: reshape, split, merge (refused when the layout would break)."""


def _geometry_file(path: Path):
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
def _transaction():
    """One transaction on gridmap's database; refusals become a clear message and exit 1."""
    from gridmap.features import Conflict, NotFound
    from gridmap.grids import LayoutRefused
    from gridmap.io.store import ImportRejected
    from gridmap.planning import PlanningProblem
    from gridmap.topology.edits import EditProblem

    try:
        with session_scope(_engine()) as session:
            yield session
    except LayoutRefused as exc:
        for finding in exc.findings:
            click.echo(f"{finding.kind}: {finding.detail}", err=True)
        raise click.ClickException("refused; nothing was changed") from exc
    except ImportRejected as exc:
        raise click.ClickException("; ".join(p["reason"] for p in exc.problems)) from exc
    except (NotFound, Conflict, EditProblem, PlanningProblem, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


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

    geom = _geometry_file(geometry)
    with _transaction() as session:
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

    geom = _geometry_file(line)
    with _transaction() as session:
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

    with _transaction() as session:
        versions = dict(
            session.execute(select(Grid.id, Grid.version).where(Grid.id.in_(grid_ids))).all()
        )
        new_id = merge_grids(session, versions, author, reason, name)
    click.echo(f"new grid: {new_id}")


@main.command()
@click.argument("code")
@click.option("--kind", type=click.Choice(list(STATION_KINDS)), required=True)
@click.option("--minutes", type=float, default=10, show_default=True)
@click.option(
    "--method",
    type=click.Choice(["auto", "network", "euclidean"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--geojson",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every building's distance and coverage as GeoJSON.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-grid table as CSV.",
)
def coverage(
    code: str, kind: str, minutes: float, method: str, geojson: Path | None, csv_path: Path | None
) -> None:
    """Print who is inside the 10-minute circle of KIND stations, per community and grid."""
    import csv
    import json

    from shapely.geometry import mapping

    from gridmap.coverage import analyse

    with tqdm(total=3, desc="coverage", disable=None, leave=False) as bar:
        with _transaction() as session:
            result = analyse(session, code, kind, minutes, method)
        bar.update(2)
        b = result.data.buildings
        rows = result.by(b.grid)
        bar.update(1)
    click.echo(f"{code}: {kind} within {minutes:g} min ({result.distance_m:g} m, {result.method})")
    header = f"{'grid':<18}{'buildings':>10}{'covered':>9}{'households':>12}{'covered':>9}"
    click.echo(header + f"{'share':>8}")
    for row in [*rows, {"code": "total", **result.summary()}]:
        share = "-" if row["share"] is None else f"{row['share']:.0%}"
        click.echo(
            f"{row['code']:<18}{row['buildings']:>10}{row['buildings_covered']:>9}"
            f"{row['households']:>12}{row['households_covered']:>9}{share:>8}"
        )
    overloaded = [s for s in result.station_loads() if s["overloaded"]]
    for s in overloaded:
        click.echo(
            f"overloaded: {s['name']} serves {s['load']} households (capacity {s['capacity']})"
        )
    if csv_path:
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["code"])
            writer.writeheader()
            writer.writerows(rows)
    if geojson:
        frame = result.data.frame
        features = [
            {
                "type": "Feature",
                "geometry": mapping(frame.to_lonlat(b.shapes_m[k])),
                "properties": {
                    "code": b.codes[k],
                    "grid": b.grid[k],
                    "distance_m": None
                    if result.station[k] < 0
                    else round(float(result.distance[k]), 1),
                    "covered": bool(result.covered[k]),
                },
            }
            for k in range(len(b.ids))
        ]
        geojson.write_text(
            json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
            encoding="utf-8",
        )


@main.command(name="plan-sites")
@click.argument("code")
@click.option("--kind", type=click.Choice(list(STATION_KINDS)), required=True)
@click.option("--k", "k", type=int, help="Maximal covering: this many new sites.")
@click.option("--share", type=float, help="Set covering: reach this share (default 1).")
@click.option("--minutes", type=float, default=10, show_default=True)
@click.option(
    "--method",
    type=click.Choice(["auto", "network", "euclidean"]),
    default="auto",
    show_default=True,
)
@click.option("--uses", help="Candidate buildings of these uses, comma-separated.")
@click.option("--spacing", type=float, help="Candidate road junctions on this spacing (m).")
@click.option("--time-limit", type=float, default=30, show_default=True)
def plan_sites_command(
    code: str,
    kind: str,
    k: int | None,
    share: float | None,
    minutes: float,
    method: str,
    uses: str | None,
    spacing: float | None,
    time_limit: float,
) -> None:
    """Propose new KIND stations for a street or community."""
    from gridmap.planning import plan_sites

    with _transaction() as session:
        plan = plan_sites(
            session,
            code,
            kind,
            minutes,
            method,
            k,
            share,
            None,
            uses.split(",") if uses else None,
            spacing,
            time_limit,
        )
    click.echo(
        f"{plan['objective']} by {plan['solver']} "
        f"({'optimal' if plan['optimal'] else 'not proven optimal'}), "
        f"{plan['candidates']} candidates, {plan['method']}"
    )
    for site in plan["sites"]:
        lon, lat = site["location"]
        click.echo(
            f"{site['rank']:>3}  {lon:.6f},{lat:.6f}  +{site['gain_households']} "
            f"households  ({site['source']})"
        )
    for note in plan["notes"]:
        click.echo(f"note: {note}")
    click.echo(f"households covered: {plan['share_before']:.1%} -> {plan['share_after']:.1%}")


# -- redraw -------------------------------------------------------------------------


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


@main.command()
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

        with _transaction() as session:
            summary = plans.summary(plans.create_plan(session, code, rules, author, progress))
    _echo_plan(summary)
    click.echo(f"apply it with: gridmap plan apply {summary['id']}")


@main.group()
def plan() -> None:
    """Redraw plans: list, show, diff, apply and discard."""


@plan.command(name="list")
@click.option("--area", help="Only this community's plans.")
def plan_list(area: str | None) -> None:
    """List plans, newest first."""
    from gridmap.redraw import plans

    with _transaction() as session:
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

    with _transaction() as session:
        summary = plans.summary(plans.get_plan(session, plan_id))
    _echo_plan(summary)


@plan.command(name="diff")
@click.argument("plan_id", type=int)
def plan_diff(plan_id: int) -> None:
    """Print where each planned grid's households come from today."""
    from gridmap.redraw import plans

    with _transaction() as session:
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

    with _transaction() as session:
        summary = plans.summary(
            plans.reshape_plan_grid(
                session, plan_id, key, _geometry_file(geometry), adjust_neighbours
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

    with _transaction() as session:
        summary = plans.summary(plans.split_plan_grid(session, plan_id, key, _geometry_file(line)))
    _echo_plan(summary)


@plan.command(name="merge")
@click.argument("plan_id", type=int)
@click.argument("keys", nargs=-1, required=True)
def plan_merge(plan_id: int, keys: tuple[str, ...]) -> None:
    """Merge touching sibling grids KEYS of a draft into the first of them."""
    from gridmap.redraw import plans

    with _transaction() as session:
        summary = plans.summary(plans.merge_plan_grids(session, plan_id, list(keys)))
    _echo_plan(summary)


@plan.command(name="apply")
@click.argument("plan_id", type=int)
@AUTHOR
def plan_apply(plan_id: int, author: str) -> None:
    """Replace the community's grids with the plan's."""
    from gridmap.redraw import plans

    with _transaction() as session:
        answer = plans.apply_plan(session, plan_id, author)
    click.echo(
        f"plan {plan_id} applied to {answer['area']}: {len(answer['retired'])} grids retired, "
        f"{len(answer['created'])} created"
    )


@plan.command(name="delete")
@click.argument("plan_id", type=int)
def plan_delete(plan_id: int) -> None:
    """Discard a draft plan."""
    from gridmap.redraw import plans

    with _transaction() as session:
        plans.delete_plan(session, plan_id)
    click.echo(f"plan {plan_id} discarded")


# -- maps ---------------------------------------------------------------------------


@main.command()
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
    from layers.base import inlined
    from layers.pages import coverage_map, grids_map, plan_map

    if layer == "coverage" and not kind:
        raise click.UsageError("--layer coverage needs --kind")
    if layer == "plan" and plan_id is None:
        raise click.UsageError("--layer plan needs --plan ID")
    with _transaction() as session:
        if layer == "coverage":
            fmap = coverage_map(session, code, kind, inlined, minutes)
        elif layer == "plan":
            from gridmap.redraw.plans import get_plan

            if get_plan(session, plan_id).community.code != code:
                raise click.UsageError(f"plan {plan_id} is not a plan of {code}")
            fmap = plan_map(session, plan_id, inlined, staff=staff)
        else:
            fmap = grids_map(session, code, inlined, staff=staff, by_place=layer != "grids")
        html = fmap.get_root().render()
    output.write_text(html, encoding="utf-8")
    click.echo(f"{output}: {len(html) / 1e6:.1f} MB")


# -- tokens -------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens: make, list and revoke."""


@token.command(name="create")
@click.argument("name")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
def token_create(name: str, role: str) -> None:
    """Make a token for NAME; it is printed once and kept only as a hash."""
    from gridmap.tokens import create_token

    with _transaction() as session:
        secret = create_token(session, name, role)
    click.echo(secret)


@token.command(name="list")
def token_list() -> None:
    """List tokens (names and roles, never the tokens)."""
    from gridmap.tokens import list_tokens

    with _transaction() as session:
        for row in list_tokens(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "live"
            click.echo(f"{row.name}\t{row.role}\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")


@token.command(name="revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke NAME's token."""
    from gridmap.tokens import revoke_token

    with _transaction() as session:
        if not revoke_token(session, name):
            raise click.ClickException(f"no live token named {name!r}")
    click.echo(f"revoked {name}")


# -- serving ------------------------------------------------------------------------


@main.command()
@click.option(
    "--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="$HOST or 127.0.0.1"
)
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", "5000")),
    show_default="$PORT or 5000",
)
@click.option("--workers", type=int, default=2, show_default=True)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API and maps with gunicorn (Ctrl-C stops it; the database keeps running)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [
        str(gunicorn),
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "api:create_app()",
    ]
    click.echo(f"serving gridmap at http://{host}:{port}")
    os.execv(args[0], args)
