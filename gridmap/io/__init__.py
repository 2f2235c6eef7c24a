"""Import and export of gridmap's layers: GeoJSON, GeoPackage, Shapefile and CSV."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Engine

from gridmap.db.engine import session_scope
from gridmap.geometry import to_storage_crs
from gridmap.io.files import FileProblem, read_features
from gridmap.io.layers import LAYERS, prepare
from gridmap.io.store import ImportRejected, import_rows

__all__ = ["LAYERS", "FileProblem", "ImportRejected", "import_file", "read_rows"]


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
        return len(import_rows(session, LAYERS[layer], rows, author=author))


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
