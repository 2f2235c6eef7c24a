"""Reading and writing GeoJSON, GeoPackage, Shapefile and CSV with pyogrio (GDAL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS

from gridmap.geometry import CRSProblem, parse_crs

#: GDAL drivers by file suffix, for export.
DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".csv": "CSV",
}


class FileProblem(ValueError):
    """A file that cannot be read or written as asked."""


@dataclass
class SourceData:
    """Features read from a file: geometries (``None`` where absent), records and CRS."""

    geoms: list[shapely.Geometry | None] | None
    records: list[dict[str, Any]]
    crs: CRS


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def read_features(path: Path, crs: str | None = None, layer: str | None = None) -> SourceData:
    """Read every feature of a vector file.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage, Shapefile or CSV file.
    crs
        The file's CRS when the file does not say (or says wrongly); a file with
        none is taken as WGS 84 (GeoJSON's rule).
    layer
        The layer inside a multi-layer file such as a GeoPackage.
    """
    if not Path(path).exists():
        raise FileProblem(f"no such file: {path}")
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer)
    except pyogrio.errors.DataSourceError as exc:
        raise FileProblem(f"cannot read {path}: {exc}") from exc
    except pyogrio.errors.DataLayerError as exc:
        raise FileProblem(f"cannot read layer {layer!r} of {path}: {exc}") from exc
    try:
        source_crs = parse_crs(crs or meta.get("crs"))
    except CRSProblem as exc:
        raise FileProblem(str(exc)) from exc
    names = list(meta["fields"])
    count = len(columns[0]) if columns else (0 if wkb is None else len(wkb))
    records = [
        {name: _plain(col[i]) for name, col in zip(names, columns, strict=True)}
        for i in range(count)
    ]
    geoms = None if wkb is None else list(shapely.from_wkb(wkb))
    return SourceData(geoms, records, source_crs)


def write_features(
    path: Path,
    geoms: list[shapely.Geometry | None] | None,
    columns: dict[str, np.ndarray],
    geometry_type: str | None,
    layer: str | None = None,
) -> None:
    """Write features in EPSG:4326; the format follows the file's suffix.

    Parameters
    ----------
    path
        Target file; ``.geojson``, ``.gpkg``, ``.shp`` or ``.csv``.
    geoms
        One geometry per feature, or ``None`` for a table without geometry.
    columns
        Field name → values, typed (int64, float64 with NaN for nulls, bool, object).
    geometry_type
        The OGR geometry type name (``"MultiPolygon"``, ``"Point"``, ...).
    layer
        Layer name inside the file.
    """
    driver = DRIVERS.get(Path(path).suffix.lower())
    if driver is None:
        raise FileProblem(f"unknown format {Path(path).suffix!r}: use one of {', '.join(DRIVERS)}")
    wkb = None if geoms is None else np.array(shapely.to_wkb(geoms), dtype=object)
    pyogrio.raw.write(
        path,
        wkb,
        list(columns.values()),
        list(columns),
        driver=driver,
        crs="EPSG:4326" if geoms is not None else None,
        geometry_type=geometry_type if geoms is not None else None,
        layer=layer,
        encoding="UTF-8",
    )
