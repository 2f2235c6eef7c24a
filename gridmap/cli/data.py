"""``gridmap import``, ``export`` and ``demo``: data in and out."""

from __future__ import annotations

from pathlib import Path

import click

from gridmap.cli.common import AUTHOR, REASON, Progress, engine, settings
from gridmap.io.layers import LAYERS, ON_INVALID
from gridmap.models import PLACE_TYPES as PLACE_TYPE_NAMES

LAYER_CHOICE = click.Choice(list(LAYERS))
PLACE_TYPES = click.Choice(["default", *PLACE_TYPE_NAMES])


def _problem_line(problem: dict) -> str:
    where = "file" if problem.get("index") is None else f"feature {problem['index']}"
    field = f" {problem['field']}" if problem.get("field") else ""
    location = f" at {problem['location']}" if problem.get("location") else ""
    return f"{where}{field}: {problem['reason']}{location}"


@click.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", type=LAYER_CHOICE, required=True, help="Layer the file holds.")
@click.option(
    "--map",
    "renames",
    multiple=True,
    metavar="FIELD=SOURCE",
    help="Take FIELD from the file's SOURCE field (repeatable).",
)
@click.option(
    "--set",
    "constants",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Give every feature this VALUE of FIELD, e.g. use=residential (repeatable).",
)
@click.option(
    "--values",
    "values_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A mapping file (JSON or YAML): gridmap field -> source field and value map.",
)
@click.option(
    "--osm",
    is_flag=True,
    help="Map OpenStreetMap tags (building, highway, amenity, building:levels) to "
    "gridmap's fields; always on for .osm.pbf and .osm files.",
)
@click.option(
    "--on-invalid",
    type=click.Choice(ON_INVALID),
    default="refuse",
    show_default=True,
    help="A bad feature refuses the file, is skipped, or has its geometry repaired "
    "(make_valid's polygonal part; what cannot be repaired is skipped).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every skipped or repaired feature and every warning to FILE (.json, else CSV).",
)
@click.option(
    "--crs",
    help="The file's CRS when it does not say: EPSG:4490, or GCJ-02 (Amap, Tencent) "
    "or BD-09 (Baidu).",
)
@click.option(
    "--place-type",
    type=PLACE_TYPES,
    default="default",
    show_default=True,
    help="Place type whose floor area per household estimates missing households.",
)
@click.option("--source-layer", help="The layer inside a multi-layer file (GeoPackage).")
@AUTHOR
@REASON
def import_command(
    path: Path,
    layer: str,
    renames: tuple[str, ...],
    constants: tuple[str, ...],
    values_file: Path | None,
    osm: bool,
    on_invalid: str,
    report_path: Path | None,
    crs: str | None,
    place_type: str,
    source_layer: str | None,
    author: str,
    reason: str | None,
) -> None:
    """Import a GeoJSON, GeoPackage, Shapefile, CSV or OSM file into LAYER.

    With --on-invalid refuse (the default) nothing is written if any feature is
    bad; every problem is listed. Examples:

    \b
      gridmap import Helsinki.osm.pbf --layer buildings
      gridmap import shops.geojson --layer buildings --set use=commercial --on-invalid skip
      gridmap import poi.csv --layer stations --crs GCJ-02 --values kinds.yaml
    """
    from sqlalchemy.exc import OperationalError

    from gridmap.io import FileProblem, ImportRejected
    from gridmap.io.importer import ImportOptions, import_path, options_for, write_report
    from gridmap.io.mapping import MappingProblem, build_mapping, pairs, read_mapping_file

    try:
        mapping = build_mapping(
            read_mapping_file(values_file) if values_file else None,
            pairs(renames, "--map", "FIELD=SOURCE"),
            pairs(constants, "--set"),
        )
    except MappingProblem as exc:
        raise click.UsageError(str(exc)) from exc
    options = options_for(
        path,
        ImportOptions(
            layer=layer,
            crs=crs,
            on_invalid=on_invalid,  # type: ignore[arg-type]
            mapping=mapping,
            osm=osm,
            place_type=None if place_type == "default" else place_type,
            source_layer=source_layer,
        ),
    )
    progress = Progress()
    try:
        report = import_path(
            engine(),
            path,
            options,
            author=author,
            reason=reason,
            progress=lambda done, total: progress(layer, done, total),
        )
    except FileProblem as exc:
        if report_path is not None:
            write_report(report_path, {"refused": [{"index": None, "reason": str(exc)}]})
        raise click.ClickException(str(exc)) from exc
    except OperationalError as exc:
        # The database is down or unreachable; its first line says which (no row values).
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else "no connection"
        raise click.ClickException(f"cannot reach the database: {first}") from exc
    except ImportRejected as exc:
        for problem in exc.problems:
            click.echo(_problem_line(problem), err=True)
        if report_path is not None:
            write_report(report_path, {"refused": exc.problems})
        raise click.ClickException(f"{path}: {exc}") from exc
    for problem in report.skipped:
        click.echo("skipped " + _problem_line(problem), err=True)
    for problem in report.repaired:
        click.echo("repaired " + _problem_line(problem), err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning['reason']}", err=True)
        for pair in warning.get("pairs", []):
            a, b = pair["indices"]
            codes = ", ".join(str(c) for c in pair["codes"])
            click.echo(f"  {pair['kind']}: features {a} and {b} ({codes})", err=True)
    if report_path is not None:
        write_report(report_path, report.to_dict())
    parts = [f"imported {report.imported} {layer} from {path}"]
    if report.left_out:
        parts.append(f"{report.left_out} OSM features of other kinds not read")
    if report.skipped:
        parts.append(f"{len({p['index'] for p in report.skipped})} skipped")
    if report.repaired:
        parts.append(f"{len(report.repaired)} repaired")
    if report.estimated_households:
        parts.append(f"households estimated for {report.estimated_households}")
    click.echo("; ".join(parts))


@click.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", type=LAYER_CHOICE, required=True)
@click.option("--area", help="Only features in this street or community (code).")
@click.option(
    "--crs",
    help="GCJ-02 (Amap, Tencent) or BD-09 (Baidu) to write their coordinates; default WGS 84.",
)
def export_command(path: Path, layer: str, area: str | None, crs: str | None) -> None:
    """Export LAYER to PATH; the format follows the suffix (.geojson .gpkg .shp .csv)."""
    from gridmap.geometry import CRSProblem
    from gridmap.io.export import export_file
    from gridmap.io.files import FileProblem

    try:
        count = export_file(engine(), path, layer, area, crs)
    except (FileProblem, CRSProblem) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {count} {layer} to {path}")


@click.command()
def demo() -> None:
    """Load the demo town (once; later runs change nothing)."""
    from gridmap.demo import load_demo

    counts = load_demo(engine(), settings().demo_dir, progress=Progress())
    if counts is None:
        click.echo("demo town already loaded")
    else:
        click.echo("demo town loaded: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
