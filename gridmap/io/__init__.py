"""Import and export of gridmap's layers: GeoJSON, GeoPackage, Shapefile, CSV and OSM."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Engine

from gridmap.io.files import FileProblem
from gridmap.io.importer import (
    ImportOptions,
    ImportReport,
    check_source,
    import_path,
    options_for,
    read_source,
)
from gridmap.io.layers import LAYERS
from gridmap.io.mapping import build_mapping
from gridmap.io.store import ImportRejected

__all__ = [
    "LAYERS",
    "FileProblem",
    "ImportOptions",
    "ImportRejected",
    "ImportReport",
    "import_file",
    "import_path",
    "read_rows",
]


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

    The short form of :func:`gridmap.io.importer.import_path` (which takes every
    option and returns the whole report).

    Raises
    ------
    FileProblem
        The file cannot be read.
    ImportRejected
        Any feature is bad (each problem has the feature's index and the reason);
        nothing of the file is written.
    """
    options = options_for(
        path, ImportOptions(layer=layer, crs=crs, mapping=build_mapping(renames=field_map))
    )
    return import_path(engine, path, options, author=author, progress=progress).imported


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
    options = options_for(
        path, ImportOptions(layer=layer, crs=crs, mapping=build_mapping(renames=field_map))
    )
    return check_source(read_source(path, options), options, progress).rows
