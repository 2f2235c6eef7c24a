"""Reading and writing GeoJSON, GeoPackage, Shapefile and CSV with pyogrio (GDAL)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS

from gridmap.geometry import CRSProblem, parse_crs
from gridmap.io.chinacrs import offset_crs
from gridmap.io.osm import is_osm_file, read_osm_layers

#: GDAL drivers by file suffix, for export.
DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".csv": "CSV",
}


#: GDAL CSV open options: the column names read as a point's coordinates.
CSV_POINT_COLUMNS = {
    "X_POSSIBLE_NAMES": "lon,lng,longitude,x,经度",
    "Y_POSSIBLE_NAMES": "lat,latitude,y,纬度",
    "KEEP_GEOM_COLUMNS": "NO",
}


class FileProblem(ValueError):
    """A file that cannot be read or written as asked."""


@dataclass
class SourceData:
    """Features read from a file: geometries (``None`` where absent), records and CRS.

    ``unreadable`` maps the index of each feature whose geometry GEOS could not
    build (a ring of two points, an unclosed ring) to the reason, and ``fixed`` to
    the geometry GEOS builds when asked to fix it (rings closed), where it can.
    ``offset`` names GCJ-02 or BD-09 when the coordinates are in one of them.
    """

    geoms: list[shapely.Geometry | None] | None
    records: list[dict[str, Any]]
    crs: CRS
    unreadable: dict[int, str] = field(default_factory=dict)
    fixed: dict[int, shapely.Geometry] = field(default_factory=dict)
    offset: str | None = None


def decode_wkb(
    wkb: Sequence[bytes | None],
) -> tuple[list[shapely.Geometry | None], dict[int, str], dict[int, shapely.Geometry]]:
    """Geometries from WKB, one bad geometry never stopping the rest.

    Returns
    -------
    geoms, unreadable, fixed
        The geometries (``None`` where absent or unreadable), the reason each
        unreadable one failed, and what GEOS makes of it when asked to fix it.
    """
    array = np.array(list(wkb), dtype=object)
    geoms = list(shapely.from_wkb(array, on_invalid="ignore"))
    unreadable: dict[int, str] = {}
    fixed: dict[int, shapely.Geometry] = {}
    for index in np.flatnonzero(
        [g is None and b is not None for g, b in zip(geoms, array, strict=True)]
    ):
        index = int(index)
        try:
            shapely.from_wkb(array[index])
        except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
            unreadable[index] = f"unreadable geometry: {str(exc).split(': ', 1)[-1]}"
        else:  # pragma: no cover - read when asked again
            unreadable[index] = "unreadable geometry"
        try:
            repaired = shapely.from_wkb(array[index], on_invalid="fix")
        except (shapely.errors.GEOSException, ValueError, TypeError):
            repaired = None
        if repaired is not None:
            fixed[index] = repaired
    return geoms, unreadable, fixed


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def source_crs(crs: str | None, file_crs: str | None = None) -> tuple[CRS, str | None]:
    """The CRS to read coordinates in, and ``"GCJ-02"``/``"BD-09"`` for those offsets.

    Coordinates in GCJ-02 or BD-09 are longitude/latitude read as WGS 84 and then
    shifted back (:mod:`gridmap.io.chinacrs`).

    Raises
    ------
    FileProblem
        The CRS is unknown.
    """
    offset = offset_crs(crs)
    if offset is not None:
        return parse_crs(None), offset
    try:
        return parse_crs(crs or file_crs), None
    except CRSProblem as exc:
        raise FileProblem(f"{exc}; give the file's CRS, e.g. --crs EPSG:4490 or GCJ-02") from exc


def read_features(
    path: Path, crs: str | None = None, layer: str | None = None, osm_layer: str | None = None
) -> SourceData:
    """Read every feature of a vector file; a broken feature never stops the rest.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage, Shapefile, CSV or OSM (``.osm.pbf``, ``.osm``) file.
    crs
        The file's CRS when the file does not say (or says wrongly); a file with
        none is taken as WGS 84 (GeoJSON's rule). ``GCJ-02`` and ``BD-09`` too.
    layer
        The layer inside a multi-layer file such as a GeoPackage.
    osm_layer
        For an OSM file, the gridmap layer to read (which of GDAL's OSM layers
        hold it: :data:`gridmap.io.osm.OSM_SOURCE_LAYERS`).

    Raises
    ------
    FileProblem
        The file cannot be read at all, or its CRS is unknown.
    """
    if not Path(path).exists():
        raise FileProblem(f"no such file: {path}")
    try:
        if osm_layer is not None and is_osm_file(path):
            wkb, records = read_osm_layers(path, osm_layer)
            file_crs = None
        else:
            # A CSV of points (an Amap or Baidu POI list) gives its coordinates in
            # columns such as lng/lat; a CSV without them is a table (workers).
            options = CSV_POINT_COLUMNS if Path(path).suffix.lower() == ".csv" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer, **options)
            file_crs = meta.get("crs")
            names = list(meta["fields"])
            count = len(columns[0]) if columns else (0 if wkb is None else len(wkb))
            records = [
                {name: _plain(col[i]) for name, col in zip(names, columns, strict=True)}
                for i in range(count)
            ]
    except pyogrio.errors.DataLayerError as exc:
        raise FileProblem(f"cannot read layer {layer!r} of {path}: {exc}") from exc
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.FieldError,
        pyogrio.errors.FeatureError,
        pyogrio.errors.GeometryError,
        pyogrio.errors.CRSError,
        UnicodeDecodeError,
        ValueError,
        OSError,
    ) as exc:
        raise FileProblem(f"cannot read {path}: {exc}") from exc
    read_crs, offset = source_crs(crs, file_crs)
    if wkb is None:
        return SourceData(None, records, read_crs, offset=offset)
    geoms, unreadable, fixed = decode_wkb(wkb)
    return SourceData(geoms, records, read_crs, unreadable, fixed, offset)


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
