"""``gridmap coverage`` and ``plan-sites``: the 10-minute circle and new sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from gridmap import reports
from gridmap.cli.common import transaction
from gridmap.models import STATION_KINDS

METHOD = click.option(
    "--method",
    type=click.Choice(["auto", "network", "euclidean"]),
    default="auto",
    show_default=True,
    help="Walking on the road network, straight line, or network when it holds together.",
)
JUNCTIONS = click.option(
    "--junctions",
    type=click.Choice(["vertices", "crossings"]),
    help="Where roads join: where they share a vertex (the default setting, as "
    "OpenStreetMap ways do) or also where lines cross at one level (centrelines "
    "digitised without shared vertices).",
)

NO_WORKERS = click.option(
    "--no-workers",
    is_flag=True,
    help="Leave out the grid workers' names (personal data) from the report files.",
)


@click.command()
@click.argument("code")
@click.option("--kind", type=click.Choice(list(STATION_KINDS)), required=True)
@click.option("--minutes", type=float, default=10, show_default=True)
@METHOD
@JUNCTIONS
@click.option(
    "--geojson",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every building's distance and coverage as GeoJSON.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report per grid (names, community subtotals, total) as CSV "
    "(UTF-8 with a byte order mark, for Excel).",
)
@click.option(
    "--xlsx",
    "xlsx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the same report as an Excel workbook.",
)
@NO_WORKERS
def coverage(
    code: str,
    kind: str,
    minutes: float,
    method: str,
    junctions: str | None,
    geojson: Path | None,
    csv_path: Path | None,
    xlsx_path: Path | None,
    no_workers: bool,
) -> None:
    """Print who is inside the 10-minute circle of KIND stations, per community and grid."""
    import json

    from shapely.geometry import mapping

    from gridmap import report_store
    from gridmap.coverage import analyse

    with tqdm(total=3, desc="coverage", disable=None, leave=False) as bar:
        with transaction() as session:
            result = analyse(
                session, code, kind, minutes, method, junctions=junctions, shapes=bool(geojson)
            )
            names = report_store.area_names(session, code) if csv_path or xlsx_path else None
        bar.update(2)
        b = result.data.buildings
        rows = result.by(b.grid)
        bar.update(1)
    click.echo(f"{code}: {kind} within {minutes:g} min ({result.distance_m:g} m, {result.method})")
    echo_network(result.network and result.network.as_dict(), result.warnings)
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
    if names is not None:
        notes = reports.coverage_notes(
            names, kind, minutes, result.distance_m, result.method, result.warnings
        )
        table = reports.coverage_table(
            **report_store.coverage_rows(result), names=names, workers=not no_workers, notes=notes
        )
        write_report(table, csv_path, xlsx_path)
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


def write_report(table: reports.Table, csv_path: Path | None, xlsx_path: Path | None) -> None:
    """Write a report table to the CSV and Excel files asked for."""
    for path, fmt in ((csv_path, "csv"), (xlsx_path, "xlsx")):
        if path is not None:
            path.write_bytes(reports.write(table, fmt))


def echo_network(net: dict[str, Any] | None, warnings: list[str]) -> None:
    """One line on how whole the network is (pieces, who could not join), then warnings."""
    if net is not None:
        pieces = f"{net['pieces']} piece" + ("" if net["pieces"] == 1 else "s")
        click.echo(
            f"network ({net['junctions']}): {pieces}, "
            f"{net['off_main_share']:.1%} of joined buildings off the main piece; "
            f"not joined: {net['buildings_not_joined']} buildings, "
            f"{net['stations_not_joined']} stations"
        )
    for warning in warnings:
        click.echo(f"warning: {warning}")


@click.command(name="plan-sites")
@click.argument("code")
@click.option("--kind", type=click.Choice(list(STATION_KINDS)), required=True)
@click.option("--k", "k", type=int, help="Maximal covering: this many new sites.")
@click.option("--share", type=float, help="Set covering: reach this share (default 1).")
@click.option("--minutes", type=float, default=10, show_default=True)
@METHOD
@JUNCTIONS
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
    junctions: str | None,
    uses: str | None,
    spacing: float | None,
    time_limit: float,
) -> None:
    """Propose new KIND stations for a street or community."""
    from gridmap.planning import plan_sites

    with transaction() as session:
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
            junctions,
        )
    click.echo(
        f"{plan['objective']} by {plan['solver']} "
        f"({'optimal' if plan['optimal'] else 'not proven optimal'}), "
        f"{plan['candidates']} candidates, {plan['method']}"
    )
    echo_network(plan["network"], plan["warnings"])
    for site in plan["sites"]:
        lon, lat = site["location"]
        click.echo(
            f"{site['rank']:>3}  {lon:.6f},{lat:.6f}  +{site['gain_households']} "
            f"households  ({site['source']})"
        )
    for note in plan["notes"]:
        click.echo(f"note: {note}")
    click.echo(f"households covered: {plan['share_before']:.1%} -> {plan['share_after']:.1%}")
