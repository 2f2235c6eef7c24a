"""One import, from a file or a request body to rows in PostGIS, with its report.

The steps, each a function a caller (the CLI, the API, a background job) can use:

1. :func:`read_source` reads a file (any GDAL vector format, or an OSM file through
   GDAL's OSM driver); a broken feature never stops the rest.
2. :func:`check_source` (pure) reprojects (GCJ-02 and BD-09 too), applies the
   built-in OSM mapping and the user's field mapping, checks every feature
   (:func:`gridmap.io.layers.prepare`), estimates missing households, and under
   ``skip`` or ``repair`` sets bad features aside with their reasons.
3. :func:`store_checked` checks codes and references against the database, sets
   aside what it must under ``skip``/``repair``, and writes the rest in the
   caller's transaction.

:func:`import_path` runs all three in one transaction. Nothing is written when the
import is refused; an import that would write nothing is refused too.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gridmap.db.engine import session_scope
from gridmap.geometry import crs_area_problems, to_storage_crs
from gridmap.io import chinacrs
from gridmap.io.files import FileProblem, SourceData, read_features
from gridmap.io.households import RESIDENTIAL_USES, overlapping_pairs
from gridmap.io.layers import LAYERS, OnInvalid, Prepared, prepare
from gridmap.io.mapping import FieldMapping, MappingProblem, apply_mapping, unknown_fields
from gridmap.io.osm import OSM_LAYERS, is_osm_file, map_tags
from gridmap.io.store import NOTHING_TO_IMPORT, ImportRejected, check_rows, import_rows
from gridmap.settings import HouseholdEstimate

Progress = Callable[[int, int], None]


@dataclass
class ImportOptions:
    """How to read and check one import.

    Attributes
    ----------
    layer
        The gridmap layer (``buildings``, ``roads``, ...).
    crs
        The source's CRS when it does not say: an EPSG code, WKT, or ``GCJ-02`` /
        ``BD-09``.
    on_invalid
        ``refuse`` (nothing is written if any feature is bad), ``skip`` (bad
        features are left out and listed) or ``repair`` (invalid geometries are
        mended where they can be, the rest left out and listed).
    mapping
        Field rules (:mod:`gridmap.io.mapping`), applied after the OSM mapping.
    osm
        Read the source's OSM tags with the built-in mapping (always on for
        ``.osm.pbf``/``.osm`` files).
    place_type
        The place type whose figures estimate missing households.
    source_layer
        The layer inside a multi-layer file (a GeoPackage).
    """

    layer: str
    crs: str | None = None
    on_invalid: OnInvalid = "refuse"
    mapping: FieldMapping = field(default_factory=dict)
    osm: bool = False
    place_type: str | None = None
    source_layer: str | None = None


@dataclass
class Checked:
    """Features of a source checked and ready to store.

    Attributes
    ----------
    rows
        Prepared rows (:func:`gridmap.io.layers.prepare`).
    source_index
        Each row's feature index in the source.
    references
        Each row's source reference (an OSM ``way/123``) where known.
    read
        Features read for the layer.
    left_out
        Features of an OSM source that are not of the layer (a café for stations).
    skipped, repaired
        ``{"index", "field", "reason"}`` per problem of a feature left out, and per
        feature mended.
    warnings
        ``{"kind", "reason", ...}``: overlapping footprints, households estimated.
    estimated
        Rows whose households were estimated.
    """

    rows: list[dict[str, Any]]
    source_index: list[int]
    references: list[str | None]
    read: int
    left_out: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    estimated: int = 0


@dataclass
class ImportReport:
    """What one import did: written, left out (with reasons), mended, warned."""

    layer: str
    read: int
    imported: int
    ids: list[int]
    skipped: list[dict[str, Any]]
    repaired: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    estimated_households: int
    left_out: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def read_source(path: Path, options: ImportOptions) -> SourceData:
    """Read a file for one layer (an OSM file through GDAL's OSM driver).

    Raises
    ------
    FileProblem
        The file cannot be read at all, or is an OSM file for a layer OSM has not.
    """
    if is_osm_file(path):
        if options.layer not in OSM_LAYERS:
            raise FileProblem(f"an OSM file gives {', '.join(OSM_LAYERS)}, not {options.layer}")
        return read_features(path, crs=options.crs, osm_layer=options.layer)
    return read_features(path, crs=options.crs, layer=options.source_layer)


def _with_reference(problem: dict[str, Any], reference: str | None) -> dict[str, Any]:
    if reference is None:
        return problem
    return {**problem, "reason": f"{problem['reason']} (OSM {reference})"}


def _to_source(
    problems: Sequence[dict[str, Any]], index: Sequence[int], references: Sequence[str | None]
) -> list[dict[str, Any]]:
    """Problems with row positions turned into source indices, in source order."""
    out = []
    for p in problems:
        i = p.get("index")
        if i is None:
            out.append(p)
        else:
            out.append(_with_reference({**p, "index": index[i]}, references[i]))
    return sorted(out, key=lambda p: -1 if p.get("index") is None else p["index"])


def storage_geometries(source: SourceData) -> tuple[list | None, dict[int, shapely.Geometry]]:
    """A source's geometries (and those GEOS fixed) in EPSG:4326.

    Raises
    ------
    ImportRejected
        The coordinates cannot be transformed at all.
    """
    if source.geoms is None:
        return None, {}
    keys = list(source.fixed)
    # Heights are dropped: gridmap's geometry is two-dimensional.
    both = [
        None if g is None else shapely.force_2d(g)
        for g in list(source.geoms) + [source.fixed[k] for k in keys]
    ]
    try:
        projected = to_storage_crs(both, source.crs)
    except Exception as exc:  # PROJ refuses what it cannot transform
        raise ImportRejected(
            [{"index": None, "field": "crs", "reason": f"cannot transform coordinates: {exc}"}]
        ) from exc
    if source.offset is not None:
        projected = chinacrs.to_wgs84(projected, source.offset)
    count = len(source.geoms)
    return projected[:count], dict(zip(keys, projected[count:], strict=True))


def check_source(
    source: SourceData, options: ImportOptions, progress: Progress | None = None
) -> Checked:
    """Check a source's features as rows of ``options.layer`` (pure: nothing is written).

    Raises
    ------
    ImportRejected
        Under ``refuse``, with every problem of every feature; under any policy,
        problems of the whole import (an unknown field in the mapping).
    """
    spec = LAYERS[options.layer]
    unknown = unknown_fields(options.mapping, list(spec.field_by_name))
    if unknown:
        raise ImportRejected(
            [
                {
                    "index": None,
                    "field": name,
                    "reason": f"the mapping names '{name}', which {spec.name} do not have "
                    f"({', '.join(spec.field_by_name)})",
                }
                for name in unknown
            ]
        )
    geoms, fixed = storage_geometries(source)
    records = source.records
    read_problems = dict(source.unreadable)
    if geoms is not None and source.offset is None:
        # Coordinates far outside their CRS's area of use: a wrong CRS, not a place.
        for problem in crs_area_problems(geoms, source.crs):
            read_problems[problem["index"]] = problem["reason"]
            geoms[problem["index"]] = None
    if options.on_invalid == "repair" and geoms is not None:
        geoms = [fixed.get(i, g) for i, g in enumerate(geoms)]
    index = list(range(len(records)))
    references: list[str | None] = [None] * len(records)
    left_out = 0
    if options.osm:
        if spec.name not in OSM_LAYERS:
            raise ImportRejected(
                [
                    {
                        "index": None,
                        "field": None,
                        "reason": f"the OSM mapping gives {', '.join(OSM_LAYERS)}, not {spec.name}",
                    }
                ]
            )
        selected = map_tags(
            spec.name, geoms if geoms is not None else [None] * len(records), records
        )
        geoms, records = selected.geoms, selected.records
        index, references, left_out = (
            selected.source_index,
            selected.references,
            selected.left_out,
        )
        read_problems = {row: read_problems[i] for row, i in enumerate(index) if i in read_problems}
    if options.mapping:
        records = [apply_mapping(options.mapping, r) for r in records]
    prepared = prepare(
        spec,
        geoms if spec.geometry else None,
        records,
        progress=progress,
        on_invalid=options.on_invalid,
        read_problems=read_problems,
        households=HouseholdEstimate.for_place_type(options.place_type),
    )
    whole = [p for p in prepared.problems if p.get("index") is None]
    if whole or (prepared.problems and options.on_invalid == "refuse"):
        raise ImportRejected(_to_source(prepared.problems, index, references))
    bad = {p["index"] for p in prepared.problems}
    keep = [i for i in range(len(prepared.rows)) if i not in bad]
    checked = Checked(
        rows=[prepared.rows[i] for i in keep],
        source_index=[index[i] for i in keep],
        references=[references[i] for i in keep],
        read=len(records),
        left_out=left_out,
        skipped=_to_source(prepared.problems, index, references),
        repaired=_to_source(
            [p for p in prepared.repaired if p["index"] not in bad], index, references
        ),
        estimated=len([i for i in prepared.estimated if i not in bad]),
    )
    if spec.name == "buildings":
        checked.warnings.extend(building_warnings(checked, prepared, bad, options))
    return checked


def building_warnings(
    checked: Checked, prepared: Prepared, bad: set[int], options: ImportOptions
) -> list[dict[str, Any]]:
    """Warnings about buildings that were taken: overlapping footprints, and
    households estimated because the data had none."""
    warnings: list[dict[str, Any]] = []
    with_footprint = [i for i, row in enumerate(checked.rows) if row.get("footprint") is not None]
    pairs = overlapping_pairs([checked.rows[i]["footprint"] for i in with_footprint])
    if pairs:
        listed = [
            {
                "kind": kind,
                "indices": [
                    checked.source_index[with_footprint[a]],
                    checked.source_index[with_footprint[b]],
                ],
                "codes": [
                    checked.rows[with_footprint[a]].get("code"),
                    checked.rows[with_footprint[b]].get("code"),
                ],
            }
            for a, b, kind in pairs
        ]
        nested = sum(1 for p in listed if p["kind"] == "nested")
        warnings.append(
            {
                "kind": "overlapping_footprints",
                "reason": f"{len(listed)} pair(s) of footprints overlap ({nested} one inside "
                "the other); they are imported as they are",
                "pairs": listed,
            }
        )
    residential = [
        i
        for i, row in enumerate(prepared.rows)
        if i not in bad and row.get("use") in RESIDENTIAL_USES
    ]
    estimated = set(prepared.estimated) - bad
    if residential and all(i in estimated for i in residential):
        warnings.append(
            {
                "kind": "no_household_figures",
                "reason": f"none of the {len(residential)} residential building(s) has "
                "household figures: all were estimated from footprint x floors / "
                f"floor area per household ({options.place_type or 'default'} place type)",
            }
        )
    elif estimated:
        warnings.append(
            {
                "kind": "households_estimated",
                "reason": f"{len(estimated)} residential building(s) had no household "
                "figures: estimated from footprint x floors / floor area per household",
            }
        )
    assumed = [i for i in prepared.assumed_floors if i not in bad]
    if assumed:
        warnings.append(
            {
                "kind": "floors_assumed",
                "reason": f"{len(assumed)} of the estimated building(s) had no floors; "
                f"the {options.place_type or 'default'} place type's assumed floors were used",
            }
        )
    return warnings


def store_checked(
    session: Session,
    checked: Checked,
    options: ImportOptions,
    author: str,
    reason: str | None = None,
) -> ImportReport:
    """Write checked rows in the caller's transaction; return the report.

    Under ``skip`` and ``repair``, rows whose code already exists or whose
    references name nothing are left out and listed (and so are rows referring to
    them); under ``refuse`` they refuse the import.

    Raises
    ------
    ImportRejected
        Under ``refuse``, any problem; under any policy, nothing left to write.
    """
    spec = LAYERS[options.layer]
    rows, index, references = checked.rows, checked.source_index, checked.references
    skipped = list(checked.skipped)
    if options.on_invalid != "refuse":
        while rows:
            _, problems = check_rows(session, spec, rows)
            if not problems:
                break
            skipped.extend(_to_source(problems, index, references))
            bad = {p["index"] for p in problems}
            keep = [i for i in range(len(rows)) if i not in bad]
            rows = [rows[i] for i in keep]
            index = [index[i] for i in keep]
            references = [references[i] for i in keep]
        skipped.sort(key=lambda p: -1 if p.get("index") is None else p["index"])
    if not rows:
        raise ImportRejected([dict(NOTHING_TO_IMPORT), *skipped])
    try:
        ids = import_rows(session, spec, rows, author=author, reason=reason)
    except ImportRejected as exc:
        raise ImportRejected(_to_source(exc.problems, index, references)) from exc
    kept = set(index)
    estimated = (
        sum(1 for row in rows if row.get("households_estimated")) if spec.name == "buildings" else 0
    )
    return ImportReport(
        layer=spec.name,
        read=checked.read,
        imported=len(ids),
        ids=ids,
        skipped=skipped,
        repaired=[r for r in checked.repaired if r["index"] in kept],
        warnings=checked.warnings,
        estimated_households=estimated,
        left_out=checked.left_out,
    )


def import_path(
    engine: Engine,
    path: Path,
    options: ImportOptions,
    author: str = "import",
    reason: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read, check and write one file in one transaction.

    Raises
    ------
    FileProblem
        The file cannot be read at all.
    ImportRejected
        The import is refused; nothing was written.
    """
    source = read_source(path, options)
    checked = check_source(source, options, progress)
    with session_scope(engine) as session:
        return store_checked(session, checked, options, author, reason)


def options_for(path: Path | None, options: ImportOptions) -> ImportOptions:
    """Options with the OSM mapping switched on for an OSM file."""
    if path is not None and is_osm_file(path) and not options.osm:
        return ImportOptions(**{**options.__dict__, "osm": True})
    return options


#: Columns of a CSV report.
REPORT_COLUMNS = ("action", "index", "field", "reason")


def report_entries(
    skipped: Sequence[dict[str, Any]],
    repaired: Sequence[dict[str, Any]],
    warnings: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every skipped or repaired feature and every warning as flat report lines."""
    lines = [{"action": "skipped", **p} for p in skipped]
    lines += [{"action": "repaired", **p} for p in repaired]
    for warning in warnings:
        lines.append(
            {
                "action": "warning",
                "index": None,
                "field": warning["kind"],
                "reason": warning["reason"],
            }
        )
        for pair in warning.get("pairs", []):
            lines.append(
                {
                    "action": "warning",
                    "index": pair["indices"][0],
                    "field": warning["kind"],
                    "reason": f"{pair['kind']}: features {pair['indices'][0]} and "
                    f"{pair['indices'][1]} ({pair['codes'][0]}, {pair['codes'][1]})",
                }
            )
    return lines


def write_report(path: Path, body: dict[str, Any]) -> None:
    """Write an import's report: JSON (``.json``) or CSV (any other suffix).

    ``body`` is :meth:`ImportReport.to_dict`, or for a refused import
    ``{"refused": problems}``.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        return
    if "refused" in body:
        lines = [{"action": "refused", **p} for p in body["refused"]]
    else:
        lines = report_entries(body["skipped"], body["repaired"], body["warnings"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, REPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(lines)


__all__ = [
    "Checked",
    "FileProblem",
    "ImportOptions",
    "ImportRejected",
    "ImportReport",
    "MappingProblem",
    "check_source",
    "import_path",
    "options_for",
    "read_source",
    "store_checked",
    "write_report",
]
