"""Database constraints refuse bad rows, whatever writes them."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

SQUARE = "MULTIPOLYGON(((104 30, 104.01 30, 104.01 30.01, 104 30.01, 104 30)))"
BOWTIE = "MULTIPOLYGON(((104 30, 104.01 30.01, 104.01 30, 104 30.01, 104 30)))"
OUT_OF_RANGE = "MULTIPOLYGON(((190 30, 191 30, 191 31, 190 31, 190 30)))"


@pytest.fixture
def conn(engine):
    with engine.connect() as connection:
        area_id = connection.execute(
            text(
                "INSERT INTO areas (code, name, level, geom) VALUES "
                "('510107015001', 'c', 'community', ST_GeomFromText(:g, 4326)) RETURNING id"
            ),
            {"g": SQUARE},
        ).scalar()
        assert area_id == 1  # the rows below name it
        connection.execute(
            text(
                "INSERT INTO grids (code, name, kind, community_id, geom) VALUES "
                "('510107015001001', 'g', 'general', 1, ST_GeomFromText(:g, 4326))"
            ),
            {"g": SQUARE},
        )
        connection.commit()
        yield connection


def _grid(conn, **overrides):
    row = {
        "code": "510107015001002",
        "name": "g2",
        "kind": "general",
        "place_type": None,
        "dedicated_category": None,
        "parent_id": None,
        "wkt": SQUARE,
        "srid": 4326,
        "active": True,
        "version": 1,
    }
    row.update(overrides)
    conn.execute(
        text(
            "INSERT INTO grids (code, name, kind, place_type, dedicated_category, community_id, "
            "parent_id, geom, active, version) VALUES (:code, :name, :kind, :place_type, "
            ":dedicated_category, 1, :parent_id, ST_GeomFromText(:wkt, :srid), :active, :version)"
        ),
        row,
    )


def _building(conn, **overrides):
    row = {
        "code": "B1",
        "use": "residential",
        "households": 10,
        "population": 25,
        "floors": 6,
        "point": "POINT(104.005 30.005)",
    }
    row.update(overrides)
    conn.execute(
        text(
            "INSERT INTO buildings (code, use, households, population, floors, point) VALUES "
            "(:code, :use, :households, :population, :floors, ST_GeomFromText(:point, 4326))"
        ),
        row,
    )


def test_a_good_grid_and_building_are_taken(conn):
    _grid(conn)
    _building(conn)
    assert conn.execute(text("SELECT count(*) FROM grids")).scalar() == 2
    assert conn.execute(text("SELECT count(*) FROM buildings")).scalar() == 1


@pytest.mark.parametrize(
    "overrides, constraint",
    [
        ({"kind": "giant"}, "ck_grids_kind"),
        ({"wkt": BOWTIE}, "ck_grids_geom"),
        ({"wkt": OUT_OF_RANGE}, "ck_grids_geom"),
        ({"wkt": "MULTIPOLYGON EMPTY"}, "ck_grids_geom"),
        ({"place_type": "new_build", "kind": "dedicated"}, "ck_grids_place_type"),
        ({"place_type": "castle"}, "ck_grids_place_type"),
        ({"dedicated_category": "school"}, "ck_grids_dedicated_category"),
        ({"kind": "micro"}, "ck_grids_micro_parent"),
        ({"version": 0}, "ck_grids_version"),
        ({"code": "510107015001001"}, "ux_grids_active_code"),
    ],
)
def test_bad_grids_are_refused(conn, overrides, constraint):
    with pytest.raises(DBAPIError, match=constraint):
        _grid(conn, **overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"srid": 3857}, "SRID"),
        ({"wkt": "POINT(104 30)"}, "Geometry type"),
    ],
)
def test_wrong_srid_or_type_is_refused(conn, overrides, message):
    with pytest.raises(DBAPIError, match=message):
        _grid(conn, **overrides)


def test_a_retired_grid_frees_its_code(conn):
    conn.execute(text("UPDATE grids SET active = false WHERE id = 1"))
    _grid(conn, code="510107015001001")
    assert (
        conn.execute(text("SELECT count(*) FROM grids WHERE code = '510107015001001'")).scalar()
        == 2
    )


@pytest.mark.parametrize(
    "overrides, constraint",
    [
        ({"use": "castle"}, "ck_buildings_use"),
        ({"households": -1}, "ck_buildings_households"),
        ({"population": -5}, "ck_buildings_population"),
        ({"floors": 0}, "ck_buildings_floors"),
        ({"point": "POINT(104 95)"}, "ck_buildings_point"),
        ({"households": None}, "not-null"),
    ],
)
def test_bad_buildings_are_refused(conn, overrides, constraint):
    with pytest.raises(DBAPIError, match=constraint):
        _building(conn, **overrides)


def test_duplicate_building_code_is_refused(conn):
    _building(conn)
    with pytest.raises(DBAPIError, match="buildings_code_key"):
        _building(conn)


@pytest.mark.parametrize(
    "sql, constraint",
    [
        (
            "INSERT INTO stations (name, kind, geom) VALUES ('s', 'spaceport', "
            "ST_GeomFromText('POINT(104 30)', 4326))",
            "ck_stations_kind",
        ),
        (
            "INSERT INTO stations (name, kind, capacity, geom) VALUES ('s', 'canteen', -1, "
            "ST_GeomFromText('POINT(104 30)', 4326))",
            "ck_stations_capacity",
        ),
        (
            "INSERT INTO roads (class, geom) VALUES ('footway', "
            "ST_GeomFromText('LINESTRING(104 30, 104 30)', 4326))",
            "ck_roads_geom",
        ),
        (
            "INSERT INTO areas (code, name, level, geom) VALUES ('x', 'x', 'province', "
            f"ST_GeomFromText('{SQUARE}', 4326))",
            "ck_areas_level",
        ),
        (
            "INSERT INTO grid_revisions (grid_id, version, action, author) VALUES "
            "(1, 1, 'explode', 'me')",
            "ck_grid_revisions_action",
        ),
        (
            "INSERT INTO grids (code, name, kind, community_id, geom) VALUES ('z', 'z', 'general', "
            f"99, ST_GeomFromText('{SQUARE}', 4326))",
            "grids_community_id_fkey",
        ),
    ],
)
def test_other_tables_refuse_bad_rows(conn, sql, constraint):
    with pytest.raises(DBAPIError, match=constraint):
        conn.execute(text(sql))
