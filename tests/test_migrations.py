"""Migrations: up, down and up again; the models match the migrated schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from gridmap.db import migrate
from gridmap.db.engine import make_engine
from gridmap.db.migrate import include_object
from gridmap.models import Base

TABLES = {
    "areas",
    "workers",
    "grids",
    "buildings",
    "stations",
    "roads",
    "grid_revisions",
    "api_tokens",
    "plans",
    "plan_grids",
    "jobs",
}


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"spatial_ref_sys", "alembic_version"}


def test_up_down_up(empty_db_url):
    engine = make_engine(empty_db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert _tables(engine) == TABLES
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert _tables(engine) == set()
    migrate.upgrade(engine)
    assert _tables(engine) == TABLES
    engine.dispose()


def test_every_geometry_column_has_srid_4326_and_a_gist_index(engine):
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT f_table_name, f_geometry_column, srid, type FROM geometry_columns "
                "WHERE f_table_schema = 'public'"
            )
        ).all()
        gist = {
            (row.tablename, row.indexdef.split("(")[-1].rstrip(")"))
            for row in conn.execute(
                text(
                    "SELECT tablename, indexdef FROM pg_indexes "
                    "WHERE schemaname = 'public' AND indexdef LIKE '%USING gist%'"
                )
            )
        }
    found = {(t, c): (srid, kind) for t, c, srid, kind in columns}
    assert found == {
        ("areas", "geom"): (4326, "MULTIPOLYGON"),
        ("grids", "geom"): (4326, "MULTIPOLYGON"),
        ("plan_grids", "geom"): (4326, "MULTIPOLYGON"),
        ("buildings", "footprint"): (4326, "POLYGON"),
        ("buildings", "point"): (4326, "POINT"),
        ("stations", "geom"): (4326, "POINT"),
        ("roads", "geom"): (4326, "LINESTRING"),
    }
    assert set(found) <= gist


def test_models_match_the_migrated_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []
