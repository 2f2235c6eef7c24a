"""Validation of a grid layout: gaps, overlaps, containment, buildings, households, workers.

:mod:`gridmap.topology.checks` holds the pure checks; :func:`validate_area` loads a
street's or community's layout from PostGIS, runs them in the community's metric
frame at one precision (:mod:`gridmap.topology.precision`) and returns findings with
lon/lat geometries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.features import NotFound, area_and_descendants
from gridmap.geometry import MetricFrame
from gridmap.models import Area, Building, Grid
from gridmap.settings import LayoutRules
from gridmap.topology.checks import Buildings, Finding, GridShape, validate_layout
from gridmap.topology.precision import metric

#: Findings whose geometry is their one grid's whole.
WHOLE_GRID_KINDS = frozenset(
    {"invalid_geometry", "not_contiguous", "households_out_of_range", "no_worker"}
)

__all__ = ["Finding", "Report", "validate_area", "validate_community", "validate_lonlat"]


@dataclass
class Report:
    """Findings for an area, each tagged with its community."""

    area: str
    findings: list[tuple[str, Finding]]

    @property
    def errors(self) -> int:
        """How many findings make the layout invalid."""
        return sum(1 for _, f in self.findings if f.severity == "error")

    def as_dict(self) -> dict:
        """JSON-ready: counts and each finding with a GeoJSON geometry in lon/lat."""
        return {
            "area": self.area,
            "valid": self.errors == 0,
            "errors": self.errors,
            "warnings": len(self.findings) - self.errors,
            "findings": [
                {
                    "community": community,
                    "kind": f.kind,
                    "severity": f.severity,
                    "grids": f.grids,
                    "buildings": f.buildings,
                    "detail": f.detail,
                    "area_m2": f.area_m2,
                    "geometry": mapping(f.geometry) if f.geometry is not None else None,
                }
                for community, f in self.findings
            ],
        }


def _communities(session: Session, code: str) -> list[Area]:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(f"no area with code {code!r}")
    if area.level == "community":
        return [area]
    below = area_and_descendants(code)
    return list(
        session.scalars(
            select(Area).where(Area.id.in_(below), Area.level == "community").order_by(Area.code)
        )
    )


def load_buildings(session: Session, community: Area) -> Buildings:
    """The community's buildings (those whose point lies in it), in lon/lat."""
    rows = session.execute(
        select(
            Building.code,
            func.ST_AsBinary(Building.point),
            func.ST_AsBinary(Building.footprint),
            Building.households,
        )
        .where(func.ST_Intersects(Building.point, community.geom))
        .order_by(Building.id)
    ).all()
    if not rows:
        return Buildings.empty()
    points = shapely.from_wkb([bytes(r[1]) for r in rows])
    footprints = np.array(
        [None if r[2] is None else shapely.from_wkb(bytes(r[2])) for r in rows], dtype=object
    )
    return Buildings(
        [r[0] for r in rows], points, footprints, np.array([r[3] for r in rows], dtype=np.int64)
    )


def validate_lonlat(
    boundary: shapely.Geometry,
    code: str,
    grids: list[GridShape],
    buildings: Buildings,
    rules: LayoutRules,
) -> list[Finding]:
    """Every check on a layout as stored, in lon/lat (pure).

    Every geometry is taken to the community's metric frame at gridmap's one
    precision (:func:`gridmap.topology.precision.metric`) and checked there by
    :func:`~gridmap.topology.checks.validate_layout`; a grid's validity is judged in
    lon/lat, as it is stored. The findings' geometries come back in lon/lat.

    Parameters
    ----------
    boundary
        The community (lon/lat).
    code
        Its code, for the findings' text.
    grids, buildings
        Its grids and buildings (lon/lat).
    rules
        Tolerances, precision and household ranges.
    """
    frame = MetricFrame(boundary)
    findings = validate_layout(
        metric(frame, boundary, None),
        code,
        [
            replace(g, geom=metric(frame, g.geom, rules.precision_m if g.geom.is_valid else None))
            for g in grids
        ],
        Buildings(
            buildings.codes,
            frame.to_metric(buildings.points),
            metric(frame, buildings.footprints, None),
            buildings.households,
        ),
        rules,
    )
    stored = {g.code: g.geom for g in grids}

    def in_lonlat(finding: Finding) -> shapely.Geometry | None:
        if finding.geometry is None:
            return None
        if finding.kind in WHOLE_GRID_KINDS:  # the grid as stored, not its metric copy
            return stored[finding.grids[0]]
        return frame.to_lonlat(finding.geometry)

    return [replace(f, geometry=in_lonlat(f)) for f in findings]


def validate_community(
    session: Session,
    community: Area,
    rules: LayoutRules | None = None,
    grids: list[GridShape] | None = None,
    ranges: dict[str, list[int]] | None = None,
) -> list[Finding]:
    """Findings of one community (geometries in lon/lat, sizes in m²), by
    :func:`validate_lonlat`.

    Parameters
    ----------
    grids
        The layout to check; the community's active grids when omitted (a draft
        plan passes its own).
    ranges
        Household ranges by kind to check against instead of the community's own
        (a draft plan's).
    """
    rules = (rules or LayoutRules()).with_ranges(
        community.household_ranges if ranges is None else ranges
    )
    if grids is None:
        rows = session.scalars(
            select(Grid).where(Grid.community_id == community.id, Grid.active).order_by(Grid.code)
        )
        grids = [
            GridShape(g.id, g.code, g.kind, to_shape(g.geom), g.parent_id, g.worker_id)
            for g in rows
        ]
    return validate_lonlat(
        to_shape(community.geom), community.code, grids, load_buildings(session, community), rules
    )


def validate_area(session: Session, code: str, rules: LayoutRules | None = None) -> Report:
    """Validate every community of a street, or one community.

    Raises
    ------
    NotFound
        No area has that code.
    """
    findings = []
    for community in _communities(session, code):
        findings += [(community.code, f) for f in validate_community(session, community, rules)]
    return Report(code, findings)
