"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 01:28:55.869868
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        "areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("level IN ('street', 'community')", name="ck_areas_level"),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90",
            name="ck_areas_geom",
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["areas.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_areas_geom", "areas", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "footprint",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column(
            "point",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("population", sa.Integer(), server_default="0", nullable=False),
        sa.Column("floors", sa.Integer(), nullable=True),
        sa.Column("use", sa.String(length=16), nullable=False),
        sa.Column("compound", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "use IN ('residential', 'school', 'hospital', 'commercial', 'office', 'industrial', 'public', 'mixed', 'other')",
            name="ck_buildings_use",
        ),
        sa.CheckConstraint(
            "ST_IsValid(point) AND NOT ST_IsEmpty(point) AND ST_XMin(point) >= -180 AND ST_XMax(point) <= 180 AND ST_YMin(point) >= -90 AND ST_YMax(point) <= 90",
            name="ck_buildings_point",
        ),
        sa.CheckConstraint("floors IS NULL OR floors >= 1", name="ck_buildings_floors"),
        sa.CheckConstraint(
            "footprint IS NULL OR (ST_IsValid(footprint) AND NOT ST_IsEmpty(footprint) AND ST_XMin(footprint) >= -180 AND ST_XMax(footprint) <= 180 AND ST_YMin(footprint) >= -90 AND ST_YMax(footprint) <= 90)",
            name="ck_buildings_footprint",
        ),
        sa.CheckConstraint("households >= 0", name="ck_buildings_households"),
        sa.CheckConstraint("population >= 0", name="ck_buildings_population"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "ix_buildings_footprint",
        "buildings",
        ["footprint"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "ix_buildings_point",
        "buildings",
        ["point"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "roads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("class", sa.String(length=32), nullable=False),
        sa.Column("walkable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("barrier", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90",
            name="ck_roads_geom",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_roads_geom", "roads", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("place_type", sa.String(length=16), nullable=True),
        sa.Column("dedicated_category", sa.String(length=16), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "dedicated_category IS NULL OR (kind = 'dedicated' AND dedicated_category IN ('school', 'hospital', 'market', 'enterprise', 'park', 'government', 'other'))",
            name="ck_grids_dedicated_category",
        ),
        sa.CheckConstraint(
            "kind <> 'micro' OR parent_id IS NOT NULL", name="ck_grids_micro_parent"
        ),
        sa.CheckConstraint(
            "kind IN ('master', 'general', 'micro', 'dedicated')", name="ck_grids_kind"
        ),
        sa.CheckConstraint(
            "place_type IS NULL OR (kind = 'general' AND place_type IN ('new_build', 'urban_village', 'old_compound', 'work_unit', 'suburban'))",
            name="ck_grids_place_type",
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90",
            name="ck_grids_geom",
        ),
        sa.CheckConstraint("version >= 1", name="ck_grids_version"),
        sa.ForeignKeyConstraint(["community_id"], ["areas.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["parent_id"], ["grids.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_grids_community", "grids", ["community_id"], unique=False)
    op.create_geospatial_index(
        "ix_grids_geom", "grids", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(
        "ux_grids_active_code", "grids", ["code"], unique=True, postgresql_where=sa.text("active")
    )
    op.create_geospatial_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("opening_hours", sa.Text(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('party_service_center', 'service_post', 'canteen', 'elderly_care', 'health_station', 'other')",
            name="ck_stations_kind",
        ),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom) AND ST_XMin(geom) >= -180 AND ST_XMax(geom) <= 180 AND ST_YMin(geom) >= -90 AND ST_YMax(geom) <= 90",
            name="ck_stations_geom",
        ),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_stations_capacity"),
        sa.ForeignKeyConstraint(["community_id"], ["areas.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "ix_stations_geom",
        "stations",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "grid_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "action IN ('insert', 'update', 'retire', 'revert')", name="ck_grid_revisions_action"
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_grid_revisions_grid", "grid_revisions", ["grid_id", "version"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_grid_revisions_grid", table_name="grid_revisions")
    op.drop_table("grid_revisions")
    op.drop_geospatial_index(
        "ix_stations_geom", table_name="stations", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("stations")
    op.drop_index("ux_grids_active_code", table_name="grids", postgresql_where=sa.text("active"))
    op.drop_geospatial_index(
        "ix_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_grids_community", table_name="grids")
    op.drop_geospatial_table("grids")
    op.drop_table("workers")
    op.drop_geospatial_index(
        "ix_roads_geom", table_name="roads", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("roads")
    op.drop_geospatial_index(
        "ix_buildings_point", table_name="buildings", postgresql_using="gist", column_name="point"
    )
    op.drop_geospatial_index(
        "ix_buildings_footprint",
        table_name="buildings",
        postgresql_using="gist",
        column_name="footprint",
    )
    op.drop_geospatial_table("buildings")
    op.drop_geospatial_index(
        "ix_areas_geom", table_name="areas", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("areas")
