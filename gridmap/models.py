"""GeoAlchemy2 models of gridmap's tables.

Every geometry is stored in EPSG:4326 with a GiST index; the schema itself is made
by the Alembic migrations in ``gridmap/db/migrations`` (never ``create_all``), and
the check constraints here mirror theirs so the two are compared in the tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gridmap.settings import STORAGE_SRID

#: Area levels from the top: a city holds districts, a district streets, a street communities.
AREA_LEVELS = ("city", "district", "street", "community")
GRID_KINDS = ("master", "general", "micro", "dedicated")
PLACE_TYPES = ("new_build", "urban_village", "old_compound", "work_unit", "suburban")
DEDICATED_CATEGORIES = (
    "school",
    "hospital",
    "market",
    "enterprise",
    "park",
    "government",
    "other",
)
BUILDING_USES = (
    "residential",
    "school",
    "hospital",
    "commercial",
    "office",
    "industrial",
    "public",
    "mixed",
    "other",
)
STATION_KINDS = (
    "party_service_center",
    "service_post",
    "canteen",
    "elderly_care",
    "health_station",
    "other",
)
REVISION_ACTIONS = ("insert", "update", "retire", "revert")
PLAN_STATUSES = ("draft", "applied")
JOB_STATUSES = ("queued", "running", "done", "failed")
#: API roles, each allowed what the ones before it are.
ROLES = ("viewer", "staff", "planner", "admin")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a check that ``column`` holds one of ``values``."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def valid_geometry(column: str = "geom") -> str:
    """SQL for a check that a geometry is valid, not empty and in lon/lat range."""
    return (
        f"ST_IsValid({column}) AND NOT ST_IsEmpty({column}) "
        f"AND ST_XMin({column}) >= -180 AND ST_XMax({column}) <= 180 "
        f"AND ST_YMin({column}) >= -90 AND ST_YMax({column}) <= 90"
    )


def _geometry(kind: str) -> Geometry:
    # GiST indexes are made by the migrations, named, so spatial_index is off here.
    return Geometry(kind, srid=STORAGE_SRID, spatial_index=False)


class Base(DeclarativeBase):
    """Declarative base of every gridmap table."""


class Area(Base):
    """A city (市), district (区/县), street (街道) or community (社区) with its boundary;
    ``parent`` is the area one level up."""

    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint(one_of("level", AREA_LEVELS), name="ck_areas_level"),
        CheckConstraint(valid_geometry(), name="ck_areas_geom"),
        Index("ix_areas_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    geom: Mapped[Any] = mapped_column(_geometry("MULTIPOLYGON"))
    #: A community's own household ranges per grid kind, e.g. {"general": [250, 450]}.
    household_ranges: Mapped[dict | None] = mapped_column(JSONB)

    parent: Mapped[Area | None] = relationship(remote_side=[id])


class Worker(Base):
    """A grid worker (网格员). The phone number is personal data."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))

    grids: Mapped[list[Grid]] = relationship(back_populates="worker")


class Grid(Base):
    """A grid of any kind; retired grids stay with ``active = false``."""

    __tablename__ = "grids"
    __table_args__ = (
        CheckConstraint(one_of("kind", GRID_KINDS), name="ck_grids_kind"),
        CheckConstraint(
            f"place_type IS NULL OR (kind = 'general' AND {one_of('place_type', PLACE_TYPES)})",
            name="ck_grids_place_type",
        ),
        CheckConstraint(
            "dedicated_category IS NULL OR (kind = 'dedicated' AND "
            f"{one_of('dedicated_category', DEDICATED_CATEGORIES)})",
            name="ck_grids_dedicated_category",
        ),
        CheckConstraint("kind <> 'micro' OR parent_id IS NOT NULL", name="ck_grids_micro_parent"),
        CheckConstraint("version >= 1", name="ck_grids_version"),
        CheckConstraint(valid_geometry(), name="ck_grids_geom"),
        Index("ix_grids_geom", "geom", postgresql_using="gist"),
        Index("ux_grids_active_code", "code", unique=True, postgresql_where=text("active")),
        Index("ix_grids_community", "community_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    place_type: Mapped[str | None] = mapped_column(String(16))
    dedicated_category: Mapped[str | None] = mapped_column(String(16))
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="RESTRICT"))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    geom: Mapped[Any] = mapped_column(_geometry("MULTIPOLYGON"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    community: Mapped[Area] = relationship()
    parent: Mapped[Grid | None] = relationship(remote_side=[id])
    worker: Mapped[Worker | None] = relationship(back_populates="grids")


class Building(Base):
    """A building: footprint where known, and always a point inside it.

    A building given as a point keeps that point and no footprint (nothing is
    invented); a footprint's point is its point on surface. Grid membership and
    distances use the point.
    """

    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint(one_of("use", BUILDING_USES), name="ck_buildings_use"),
        CheckConstraint("households >= 0", name="ck_buildings_households"),
        CheckConstraint("population >= 0", name="ck_buildings_population"),
        CheckConstraint("floors IS NULL OR floors >= 1", name="ck_buildings_floors"),
        CheckConstraint(
            f"footprint IS NULL OR ({valid_geometry('footprint')})", name="ck_buildings_footprint"
        ),
        CheckConstraint(valid_geometry("point"), name="ck_buildings_point"),
        Index("ix_buildings_footprint", "footprint", postgresql_using="gist"),
        Index("ix_buildings_point", "point", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    footprint: Mapped[Any | None] = mapped_column(_geometry("POLYGON"))
    point: Mapped[Any] = mapped_column(_geometry("POINT"))
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    population: Mapped[int] = mapped_column(Integer, server_default="0")
    floors: Mapped[int | None] = mapped_column(Integer)
    use: Mapped[str] = mapped_column(String(16))
    compound: Mapped[str | None] = mapped_column(Text)
    #: Households (and population) estimated from the footprint, not given by the data.
    households_estimated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class Station(Base):
    """A service station (party service centre, service post, canteen, ...)."""

    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint(one_of("kind", STATION_KINDS), name="ck_stations_kind"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_stations_capacity"),
        CheckConstraint(valid_geometry(), name="ck_stations_geom"),
        Index("ix_stations_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    geom: Mapped[Any] = mapped_column(_geometry("POINT"))
    capacity: Mapped[int | None] = mapped_column(Integer)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))


class Road(Base):
    """A road or path; ``barrier`` roads are where grid boundaries should run."""

    __tablename__ = "roads"
    __table_args__ = (
        CheckConstraint(valid_geometry(), name="ck_roads_geom"),
        Index("ix_roads_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    road_class: Mapped[str] = mapped_column("class", String(32))
    walkable: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    barrier: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Where a road passes over or under another (OSM bridge, tunnel, layer): roads
    # noded where they cross are joined only at one level.
    bridge: Mapped[bool | None] = mapped_column(Boolean)
    tunnel: Mapped[bool | None] = mapped_column(Boolean)
    layer: Mapped[int | None] = mapped_column(Integer)
    geom: Mapped[Any] = mapped_column(_geometry("LINESTRING"))


class GridRevision(Base):
    """One change of a grid: what it was and became, who, when and why."""

    __tablename__ = "grid_revisions"
    __table_args__ = (
        CheckConstraint(one_of("action", REVISION_ACTIONS), name="ck_grid_revisions_action"),
        Index("ix_grid_revisions_grid", "grid_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiToken(Base):
    """A bearer token of the API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(one_of("role", ROLES), name="ck_api_tokens_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Plan(Base):
    """A redraw of one community's grids, kept apart from the live grids until applied.

    ``based_on`` maps the id of each active grid of the community when the plan
    was drawn to its version; a plan whose community changed since is stale.
    """

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(one_of("status", PLAN_STATUSES), name="ck_plans_status"),
        Index("ix_plans_community", "community_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    settings: Mapped[dict] = mapped_column(JSONB)
    metrics: Mapped[dict] = mapped_column(JSONB)
    notes: Mapped[list] = mapped_column(JSONB)
    based_on: Mapped[dict] = mapped_column(JSONB)
    author: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    community: Mapped[Area] = relationship()
    grids: Mapped[list[PlanGrid]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="PlanGrid.id"
    )


class PlanGrid(Base):
    """One grid of a plan; ``key`` names it in the plan (``G01``, ``G01-M02``, ``D01``)."""

    __tablename__ = "plan_grids"
    __table_args__ = (
        CheckConstraint(one_of("kind", GRID_KINDS), name="ck_plan_grids_kind"),
        CheckConstraint(valid_geometry(), name="ck_plan_grids_geom"),
        Index("ix_plan_grids_geom", "geom", postgresql_using="gist"),
        Index("ux_plan_grids_key", "plan_id", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    parent_key: Mapped[str | None] = mapped_column(String(32))
    dedicated_category: Mapped[str | None] = mapped_column(String(16))
    households: Mapped[int] = mapped_column(Integer)
    buildings: Mapped[int] = mapped_column(Integer)
    polsby_popper: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(_geometry("MULTIPOLYGON"))

    plan: Mapped[Plan] = relationship(back_populates="grids")


class Job(Base):
    """Long work run in the background: an import, a city-wide coverage, a large redraw.

    ``payload`` holds the uploaded input until the job ends; ``runner`` names the
    process (host:pid) running it, which beats ``heartbeat_at``. A job whose runner
    died is marked failed (``gridmap/jobs.py``).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(one_of("status", JOB_STATUSES), name="ck_jobs_status"),
        CheckConstraint(one_of("read_role", ROLES), name="ck_jobs_read_role"),
        Index("ix_jobs_status", "status", "created_at"),
        Index(
            "ux_jobs_dedupe",
            "dedupe_key",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    params: Mapped[dict] = mapped_column(JSONB)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    author: Mapped[str] = mapped_column(Text)
    read_role: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str | None] = mapped_column(Text)
    step: Mapped[str | None] = mapped_column(Text)
    done: Mapped[int] = mapped_column(Integer, server_default="0")
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[dict | None] = mapped_column(JSONB)
    runner: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
