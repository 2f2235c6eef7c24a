"""Export of a layer to GeoJSON, GeoPackage, Shapefile or CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from gridmap.db.engine import session_scope
from gridmap.features import Query, select_features
from gridmap.geometry import parse_crs
from gridmap.io import chinacrs
from gridmap.io.chinacrs import offset_crs
from gridmap.io.files import FileProblem, write_features
from gridmap.io.layers import LAYERS
from gridmap.settings import EQUIVALENT_SRIDS

#: OGR geometry type written for each layer (buildings: decided by their contents).
GEOMETRY_TYPES = {
    "areas": "MultiPolygon",
    "grids": "MultiPolygon",
    "stations": "Point",
    "roads": "LineString",
    "workers": None,
}


def typed_column(kind: str, values: list[Any]) -> np.ndarray:
    """Values of one field as the numpy array GDAL writes with the right field type."""
    if kind == "int":
        if any(v is None for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.array(values, dtype=np.int64)
    if kind == "bool":
        return np.array(values, dtype=bool)
    if kind == "ranges":
        return np.array([None if v is None else json.dumps(v) for v in values], dtype=object)
    return np.array(values, dtype=object)


def export_file(
    engine: Engine, path: Path, layer: str, area: str | None = None, crs: str | None = None
) -> int:
    """Write one layer (optionally only one street's or community's part) to a file.

    Parameters
    ----------
    crs
        ``GCJ-02`` or ``BD-09`` to write coordinates for Amap/Tencent or Baidu maps
        (the file then says WGS 84, as those maps' own files do); default WGS 84.

    Raises
    ------
    FileProblem
        An unknown format, or a CRS other than GCJ-02 and BD-09.

    Returns
    -------
    int
        The number of features written.
    """
    spec = LAYERS[layer]
    offset = offset_crs(crs)
    if crs and offset is None and parse_crs(crs).to_epsg() not in EQUIVALENT_SRIDS:
        raise FileProblem(f"export writes WGS 84, GCJ-02 or BD-09, not {crs!r}")
    with session_scope(engine) as session:
        page = select_features(session, spec, Query(area=area))
    columns = {f.name: typed_column(f.type, [r[f.name] for r in page.records]) for f in spec.fields}
    geoms = page.geoms if spec.geometry else None
    if geoms is not None and offset is not None:
        geoms = chinacrs.from_wgs84(geoms, offset)
    if layer == "buildings":
        kinds = {g.geom_type for g in page.geoms}
        geometry_type = kinds.pop() if len(kinds) == 1 else "Unknown"
    else:
        geometry_type = GEOMETRY_TYPES[layer]
    write_features(path, geoms, columns, geometry_type, layer=layer)
    return len(page.records)
