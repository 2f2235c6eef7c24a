"""Import and export of gridmap's layers: GeoJSON, GeoPackage, Shapefile and CSV."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Engine

from gridmap.db.engine import session_scope
from gridmap.geometry import to_storage_crs
from gridmap.io.files import FileProblem, read_features, write_features
from gridmap.io.layers import LAYERS, prepare
from gridmap.io.store import ImportRejected, export_rows, import_rows

__all__ = ["LAYERS", "FileProblem", "ImportRejected", "export_file", "import_file", "read_rows"]

#: OGR geometry type written for each layer.
EXPORT_GEOMETRY_TYPES = {
    "areas": "MultiPolygon", "grids": "MultiPolygon", "stations": "Point",
    "roads": "LineString", "buildings": "Unknown", "workers": None,
}


def import_file(
    engine: Engine,
    path: Path,
    layer: str,
    field_map: Mapping[str, str] | None = None,
    crs: str | None = None,
    author: str = "import",
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Read one file into one layer, all or nothing; return the features written.

    Raises
    ------
    FileProblem
        The file cannot be read.
    ImportRejected
        Any feature is bad (each problem has the feature's index and the reason);
        nothing of the file is written.
    """
    rows = read_rows(path, layer, field_map, crs, progress)
    with session_scope(engine) as session:
        return import_rows(session, LAYERS[layer], rows, author=author)


def read_rows(
    path: Path,
    layer: str,
    field_map: Mapping[str, str] | None = None,
    crs: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Read and check one file's features as rows of ``layer`` (nothing is written).

    Raises
    ------
    FileProblem, ImportRejected
        As :func:`import_file`.
    """
    source = read_features(path, crs=crs)
    geoms = to_storage_crs(source.geoms, source.crs) if source.geoms is not None else None
    prepared = prepare(LAYERS[layer], geoms, source.records, field_map, progress)
    if prepared.problems:
        raise ImportRejected(prepared.problems)
    return prepared.rows


def export_file(engine: Engine, path: Path, layer: str, area: str | None = None) -> int:
    """Write one layer (optionally only what intersects an area) to a file."""
    spec = LAYERS[layer]
    with session_scope(engine) as session:
        geoms, columns = export_rows(session, spec, area)
    geometry_type = EXPORT_GEOMETRY_TYPES[layer]
    if layer == "buildings" and geoms:
        kinds = {g.geom_type for g in geoms}
        geometry_type = kinds.pop() if len(kinds) == 1 else "Unknown"
    write_features(path, geoms, columns, geometry_type, layer=layer)
    return len(next(iter(columns.values()))) if columns else 0
