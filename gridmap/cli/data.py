"""``gridmap import``, ``export`` and ``demo``: data in and out."""

from __future__ import annotations

from pathlib import Path

import click

from gridmap.cli.common import AUTHOR, Progress, engine, settings
from gridmap.io.layers import LAYERS

LAYER_CHOICE = click.Choice(list(LAYERS))


def _field_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            raise click.BadParameter(f"{pair!r} is not FIELD=SOURCE", param_hint="--map")
        mapping[target.strip()] = source.strip()
    return mapping


@click.command(name="import")
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

    progress = Progress()
    try:
        count = import_file(
            engine(),
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


@click.command(name="export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", type=LAYER_CHOICE, required=True)
@click.option("--area", help="Only features in this street or community (code).")
def export_command(path: Path, layer: str, area: str | None) -> None:
    """Export LAYER to PATH; the format follows the suffix (.geojson .gpkg .shp .csv)."""
    from gridmap.io.export import export_file
    from gridmap.io.files import FileProblem

    try:
        count = export_file(engine(), path, layer, area)
    except FileProblem as exc:
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
