"""Grid revisions: what a grid was and became, who changed it, when and why."""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import mapping
from sqlalchemy import insert
from sqlalchemy.orm import Session

from gridmap.models import GridRevision

#: Grid attributes a revision keeps, besides the geometry.
SNAPSHOT_FIELDS = (
    "code",
    "name",
    "kind",
    "place_type",
    "dedicated_category",
    "community_id",
    "parent_id",
    "worker_id",
    "version",
    "active",
)


def snapshot(attributes: dict[str, Any], geom: shapely.Geometry) -> dict[str, Any]:
    """A JSON-ready picture of one grid (attributes and GeoJSON geometry)."""
    picture = {name: attributes.get(name) for name in SNAPSHOT_FIELDS}
    picture["geometry"] = mapping(geom)
    return picture


def record_revisions(session: Session, revisions: list[dict[str, Any]]) -> None:
    """Write revisions: each a dict of grid_id, version, action, before, after, author, reason."""
    if revisions:
        session.execute(insert(GridRevision), revisions)
