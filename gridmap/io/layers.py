"""What each importable layer holds, and the pure check of incoming features.

:func:`prepare` turns raw features (shapely geometries in EPSG:4326 and field
dicts) into rows ready to store, or lists every problem with the feature's index
and the reason. It touches no database; references by code (a grid's community,
a micro grid's parent) are resolved by :mod:`gridmap.io.store`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import shapely
from sqlalchemy import inspect as sa_inspect

from gridmap import models
from gridmap.geometry import MAX_VERTICES, as_multipolygon, geometry_problems, single_part
from gridmap.io.households import RESIDENTIAL_USES, areas_m2, estimate_households
from gridmap.settings import HouseholdEstimate

FieldType = Literal["str", "int", "bool", "ranges"]
#: Largest value of an integer column (PostgreSQL ``integer``).
INT4_MAX = 2**31 - 1


@dataclass(frozen=True)
class Field:
    """One attribute of a layer as files and the API carry it.

    ``reference`` names the layer whose ``code`` this field holds (stored as that
    row's id in ``column``).
    """

    name: str
    type: FieldType = "str"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    reference: str | None = None
    column: str | None = None
    #: Longest text the column takes (set from the model by :class:`LayerSpec`).
    max_length: int | None = None

    @property
    def target(self) -> str:
        """The model attribute the value is stored in."""
        return self.column or self.name


@dataclass(frozen=True)
class LayerSpec:
    """An importable layer: its model, geometry types and fields."""

    name: str
    model: type[models.Base]
    geometry: tuple[str, ...] | None
    fields: tuple[Field, ...]
    key: str | None = "code"
    self_reference: str | None = None
    field_by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        columns = sa_inspect(self.model).columns
        fields = tuple(
            replace(f, max_length=getattr(columns[f.target].type, "length", None))
            if f.type == "str" and not f.reference and f.max_length is None
            else f
            for f in self.fields
        )
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "field_by_name", {f.name: f for f in self.fields})


LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec(
            "areas",
            models.Area,
            ("Polygon", "MultiPolygon"),
            (
                Field("code", required=True),
                Field("name", required=True),
                Field("level", required=True, choices=models.AREA_LEVELS),
                Field("parent", reference="areas", column="parent_id"),
                Field("household_ranges", "ranges"),
            ),
            self_reference="parent",
        ),
        LayerSpec(
            "workers",
            models.Worker,
            None,
            (Field("code"), Field("name", required=True), Field("phone")),
        ),
        LayerSpec(
            "grids",
            models.Grid,
            ("Polygon", "MultiPolygon"),
            (
                Field("code", required=True),
                Field("name", required=True),
                Field("kind", required=True, choices=models.GRID_KINDS),
                Field("place_type", choices=models.PLACE_TYPES),
                Field("dedicated_category", choices=models.DEDICATED_CATEGORIES),
                Field("community", required=True, reference="areas", column="community_id"),
                Field("parent", reference="grids", column="parent_id"),
                Field("worker", reference="workers", column="worker_id"),
            ),
            self_reference="parent",
        ),
        LayerSpec(
            "buildings",
            models.Building,
            ("Polygon", "MultiPolygon", "Point"),
            (
                Field("code", required=True),
                Field("name"),
                # Missing households are estimated for residential footprints
                # (households_estimated), 0 for other uses; never 0 for unknown.
                Field("households", "int", minimum=0),
                Field("population", "int", minimum=0),
                Field("floors", "int", minimum=1),
                Field("use", required=True, choices=models.BUILDING_USES),
                Field("compound"),
                Field("households_estimated", "bool"),
            ),
        ),
        LayerSpec(
            "stations",
            models.Station,
            ("Point",),
            (
                Field("name", required=True),
                Field("kind", required=True, choices=models.STATION_KINDS),
                Field("capacity", "int", minimum=0),
                Field("opening_hours"),
                Field("community", reference="areas", column="community_id"),
            ),
            key=None,
        ),
        LayerSpec(
            "roads",
            models.Road,
            ("LineString", "MultiLineString"),
            (
                Field("name"),
                Field("class", required=True, column="road_class"),
                Field("walkable", "bool", default=True),
                Field("barrier", "bool", default=False),
                Field("bridge", "bool"),
                Field("tunnel", "bool"),
                Field("layer", "int"),
            ),
            key=None,
        ),
    )
}


class FieldProblem(ValueError):
    """A value that does not fit its field."""


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def coerce(spec: Field, value: Any) -> Any:
    """Convert one raw value to the field's type, or raise :class:`FieldProblem`."""
    if _is_missing(value):
        if spec.required:
            raise FieldProblem(f"'{spec.name}' is required")
        return spec.default
    if spec.type == "int":
        if isinstance(value, bool):
            raise FieldProblem(f"'{spec.name}' must be a whole number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise FieldProblem(f"'{spec.name}' must be a whole number, not {value!r}") from None
        if not number.is_integer():
            raise FieldProblem(f"'{spec.name}' must be a whole number, not {value!r}")
        result: Any = int(number)
        if spec.minimum is not None and result < spec.minimum:
            raise FieldProblem(f"'{spec.name}' must be at least {spec.minimum}, not {result}")
        if result > INT4_MAX:
            raise FieldProblem(f"'{spec.name}' must be at most {INT4_MAX}, not {value!r}")
        return result
    if spec.type == "ranges":
        return household_ranges(spec.name, value)
    if spec.type == "bool":
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        key = str(value).strip().lower()
        if isinstance(value, bool | int | float) and value in (0, 1):
            return bool(value)
        if key not in truth:
            raise FieldProblem(f"'{spec.name}' must be true or false, not {value!r}")
        return truth[key]
    if not isinstance(value, str):
        raise FieldProblem(f"'{spec.name}' must be text, not {value!r}")
    text = value.strip()
    if "\x00" in text:
        raise FieldProblem(f"'{spec.name}' must not contain NUL characters")
    if spec.max_length is not None and len(text) > spec.max_length:
        raise FieldProblem(
            f"'{spec.name}' must be at most {spec.max_length} characters, not {len(text)}"
        )
    if spec.choices is not None and text not in spec.choices:
        raise FieldProblem(f"'{spec.name}' must be one of {', '.join(spec.choices)}, not {text!r}")
    return text


def household_ranges(name: str, value: Any) -> dict[str, list[int]]:
    """Check ``{"general": [300, 500], "micro": [30, 100]}`` (or its JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FieldProblem(
                f"'{name}' must be JSON such as {{\"general\": [300, 500]}}"
            ) from None
    if not isinstance(value, dict):
        raise FieldProblem(f"'{name}' must map grid kinds to [min, max] households")
    out = {}
    for kind, bounds in value.items():
        if kind not in ("general", "micro", "dedicated"):
            raise FieldProblem(f"'{name}': {kind!r} is not a grid kind with a household range")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bounds)
            or bounds[0] > bounds[1]
        ):
            raise FieldProblem(f"'{name}': {kind} needs [min, max] whole numbers, min <= max")
        out[kind] = bounds
    return out


def storage_geometry(spec: LayerSpec, geom: shapely.Geometry) -> dict[str, shapely.Geometry]:
    """The geometry columns of one checked input geometry."""
    if spec.name == "buildings":
        if geom.geom_type == "Point":
            return {"footprint": None, "point": geom}
        footprint = single_part(geom)
        return {"footprint": footprint, "point": footprint.point_on_surface()}
    if spec.geometry and "MultiPolygon" in spec.geometry:
        return {"geom": as_multipolygon(geom)}
    return {"geom": single_part(geom)}


def grid_rule_problems(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules between a grid's fields: (field, reason) for each one broken."""
    kind = row.get("kind")
    found = []
    if row.get("place_type") and kind != "general":
        found.append(("place_type", "only general grids have a place type"))
    if row.get("dedicated_category") and kind != "dedicated":
        found.append(("dedicated_category", "only dedicated grids have a dedicated category"))
    if kind == "micro" and not row.get("parent"):
        found.append(("parent", "a micro grid needs its general grid as parent"))
    return found


#: What import does with a bad feature: refuse the file, skip the feature, or repair
#: its geometry where it can (and skip it where it cannot).
OnInvalid = Literal["refuse", "skip", "repair"]
ON_INVALID: tuple[str, ...] = ("refuse", "skip", "repair")


def repair_geometry(
    geom: shapely.Geometry, allowed: Sequence[str]
) -> tuple[shapely.Geometry | None, str]:
    """The part of ``shapely.make_valid`` a layer can take, and what was done.

    Polygon layers keep the polygonal part (a bow-tie becomes two triangles; a ring
    collapsed to a line leaves nothing); line layers keep the linear part. Returns
    ``None`` with the reason when nothing usable is left.
    """
    try:
        fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    except (shapely.errors.GEOSException, ValueError):
        return None, "make_valid failed"
    polygonal = "Polygon" in allowed or "MultiPolygon" in allowed
    wanted = ("Polygon",) if polygonal else ("LineString",) if "LineString" in allowed else ()
    parts = [p for p in shapely.get_parts(fixed) if p.geom_type in wanted and not p.is_empty]
    if polygonal:
        parts = [p for p in shapely.get_parts(shapely.union_all(parts)) if p.area > 0]
    dropped = len(shapely.get_parts(fixed)) - len(parts) if fixed is not None else 0
    if not parts:
        kind = "polygonal" if polygonal else "usable"
        return None, f"nothing {kind} is left after make_valid"
    if polygonal:
        result = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        what = f"kept the polygonal part of make_valid ({len(parts)} polygon(s)"
    else:
        result = parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)
        what = f"kept the linear part of make_valid ({len(parts)} line(s)"
    what += f", {dropped} other part(s) dropped)" if dropped > 0 else ")"
    if result.geom_type not in allowed:
        return None, f"make_valid gives a {result.geom_type}, which the layer does not take"
    return result, what


@dataclass
class Prepared:
    """Rows ready to store, and every problem found (the rows are only used if none).

    ``repaired`` lists each feature whose geometry was repaired (``index``,
    ``field``, ``reason``); ``estimated`` the indices of rows whose households were
    estimated, and ``assumed_floors`` those of them that had no floors.
    """

    rows: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    repaired: list[dict[str, Any]] = field(default_factory=list)
    estimated: list[int] = field(default_factory=list)
    assumed_floors: list[int] = field(default_factory=list)


def prepare(
    spec: LayerSpec,
    geoms: Sequence[shapely.Geometry | None] | None,
    records: Sequence[Mapping[str, Any]],
    field_map: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_invalid: OnInvalid = "refuse",
    read_problems: Mapping[int, str] | None = None,
    households: HouseholdEstimate | None = None,
) -> Prepared:
    """Check features of one layer and turn them into rows.

    Parameters
    ----------
    spec
        The layer, from :data:`LAYERS`.
    geoms
        One shapely geometry (EPSG:4326) or ``None`` per feature; ``None`` for a
        layer without geometry.
    records
        One mapping of source field names to values per feature.
    field_map
        Target field → source field, for sources whose names differ
        (``{"households": "HH"}``).
    progress
        Called now and then with the features done so far and the total.
    on_invalid
        ``repair`` mends invalid geometries (:func:`repair_geometry`) and lists them
        in ``repaired``; otherwise they are problems like any other.
    read_problems
        Index → why a feature's geometry could not be taken as it came (the whole
        reason, e.g. ``"unreadable geometry: ..."``). Under
        ``repair`` the geometry given for it is the one GEOS built with its rings
        closed, which is then checked and repaired like any other.
    households
        How to estimate the households of residential buildings whose data has
        none (default: :class:`~gridmap.settings.HouseholdEstimate`'s default place).

    Returns
    -------
    Prepared
        ``rows`` keyed by field name (references still as codes, geometry as
        shapely), and ``problems``: ``{"index", "field" or "geometry", "reason"}``.
    """
    field_map = dict(field_map or {})
    read_problems = read_problems or {}
    unknown = sorted(set(field_map) - set(spec.field_by_name))
    if unknown:
        return Prepared(
            [],
            [
                {
                    "index": None,
                    "field": name,
                    "reason": f"--map names '{name}', which layer {spec.name} does not have",
                }
                for name in unknown
            ],
        )
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    repaired: list[dict[str, Any]] = []
    seen_keys: dict[str, int] = {}
    for index, record in enumerate(records):
        row: dict[str, Any] = {}
        for fld in spec.fields:
            try:
                row[fld.name] = coerce(fld, record.get(field_map.get(fld.name, fld.name)))
            except FieldProblem as exc:
                problems.append({"index": index, "field": fld.name, "reason": str(exc)})
        if spec.name == "grids":
            problems.extend(
                {"index": index, "field": name, "reason": reason}
                for name, reason in grid_rule_problems(row)
            )
        if spec.geometry is not None:
            geom = geoms[index] if geoms is not None else None
            found = _checked_geometry(spec, geom, index, on_invalid, read_problems, repaired)
            if isinstance(found, list):
                # A problem's own "index" (of a coordinate) must not hide the feature's.
                problems.extend({**p, "index": index, "field": "geometry"} for p in found)
            else:
                row.update(storage_geometry(spec, found))
        if spec.key and row.get(spec.key):
            first = seen_keys.setdefault(row[spec.key], index)
            if first != index:
                problems.append(
                    {
                        "index": index,
                        "field": spec.key,
                        "reason": f"{spec.key} {row[spec.key]!r} also at feature {first}",
                    }
                )
        rows.append(row)
        if progress and index % 1000 == 999:
            progress(index + 1, len(records))
    if progress:
        progress(len(records), len(records))
    prepared = Prepared(rows, problems, repaired)
    if spec.name == "buildings":
        _fill_households(prepared, households or HouseholdEstimate())
    return prepared


def _checked_geometry(
    spec: LayerSpec,
    geom: shapely.Geometry | None,
    index: int,
    on_invalid: OnInvalid,
    read_problems: Mapping[int, str],
    repaired: list[dict[str, Any]],
) -> shapely.Geometry | list[dict[str, Any]]:
    """One feature's geometry as stored, or its problems (repairs noted in ``repaired``)."""
    assert spec.geometry is not None
    unreadable = read_problems.get(index)
    if unreadable is not None and (on_invalid != "repair" or geom is None):
        cannot = "; cannot be repaired" if on_invalid == "repair" else ""
        return [{"reason": f"{unreadable}{cannot}"}]
    max_vertices = MAX_VERTICES.get(spec.name)
    found = geometry_problems(geom, spec.geometry, max_vertices)
    notes = [f"{unreadable}; read with its rings closed"] if unreadable else []
    if found and on_invalid == "repair" and found[0]["reason"].startswith("invalid geometry"):
        fixed, what = repair_geometry(geom, spec.geometry)
        if fixed is None:
            return [{**found[0], "reason": f"{found[0]['reason']}; cannot be repaired: {what}"}]
        notes.append(f"{found[0]['reason']}; {what}")
        if spec.name == "buildings" and len(shapely.get_parts(fixed)) > 1:
            # A footprint is one polygon: a self-crossing outline keeps its largest piece.
            parts = shapely.get_parts(fixed)
            areas = shapely.area(parts)
            largest = int(areas.argmax())
            dropped = 1 - areas[largest] / areas.sum()
            fixed = parts[largest]
            notes.append(
                f"kept the largest of {len(parts)} pieces ({dropped:.1%} of the area dropped)"
            )
        geom, found = fixed, geometry_problems(fixed, spec.geometry, max_vertices)
    if not found and spec.name == "buildings" and len(shapely.get_parts(geom)) > 1:
        found = [{"reason": "a building footprint must be one polygon"}]
        if notes:
            found[0]["reason"] += f" ({'; '.join(notes)})"
    if found:
        return found
    if notes:
        repaired.append({"index": index, "field": "geometry", "reason": "; ".join(notes)})
    return geom


def _fill_households(prepared: Prepared, estimate: HouseholdEstimate) -> None:
    """Households of residential footprints with none given: estimated and marked.

    A residential building given as a point with no households cannot be estimated
    and is a problem: unknown is never stored as 0.
    """
    bad = {p["index"] for p in prepared.problems}
    wanted = []
    for index, row in enumerate(prepared.rows):
        if row.get("households") is not None or index in bad:
            if row.get("households_estimated") is None:
                row["households_estimated"] = False
            continue
        if row.get("use") not in RESIDENTIAL_USES:
            row["households"] = 0
            row["households_estimated"] = False
        elif row.get("footprint") is None:
            prepared.problems.append(
                {
                    "index": index,
                    "field": "households",
                    "reason": "a residential building given as a point needs households "
                    "(there is no footprint to estimate them from)",
                }
            )
        else:
            wanted.append(index)
    if wanted:
        areas = areas_m2([prepared.rows[i]["footprint"] for i in wanted])
        counts, assumed = estimate_households(
            areas, [prepared.rows[i].get("floors") for i in wanted], estimate
        )
        for i, count, guessed in zip(wanted, counts, assumed, strict=True):
            row = prepared.rows[i]
            row["households"] = int(count)
            row["households_estimated"] = True
            if row.get("population") is None:
                row["population"] = round(int(count) * estimate.persons_per_household)
            if guessed:
                prepared.assumed_floors.append(i)
        prepared.estimated.extend(wanted)
    for row in prepared.rows:
        if "population" in row and row["population"] is None:
            row["population"] = 0
