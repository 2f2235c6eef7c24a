"""Import and export: each format, reprojection, field mapping, and all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from gridmap.io import ImportRejected, import_file
from gridmap.io.export import export_file
from tests.helpers import cli_env, run_cli

STREET = [[[104.0, 30.0], [104.02, 30.0], [104.02, 30.01], [104.0, 30.01], [104.0, 30.0]]]
COMMUNITY = [[[104.0, 30.0], [104.01, 30.0], [104.01, 30.01], [104.0, 30.01], [104.0, 30.0]]]


def geojson(path: Path, features: list[tuple[dict | None, dict]]) -> Path:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": geom, "properties": props} for geom, props in features
        ],
    }
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


def polygon(ring):
    return {"type": "Polygon", "coordinates": ring}


def box_ring(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


@pytest.fixture
def areas(engine, tmp_path):
    path = geojson(
        tmp_path / "areas.geojson",
        [
            # The community comes first and names a street later in the same file.
            (
                polygon(COMMUNITY),
                {
                    "code": "510107015001",
                    "name": "玉林社区",
                    "level": "community",
                    "parent": "510107015",
                },
            ),
            (polygon(STREET), {"code": "510107015", "name": "锦华街道", "level": "street"}),
        ],
    )
    assert import_file(engine, path, "areas") == 2
    return engine


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_areas_in_one_file_link_to_their_parent(areas):
    with areas.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT c.code, p.code FROM areas c LEFT JOIN areas p ON p.id = c.parent_id")
            ).all()
        )
        kind = conn.execute(text("SELECT GeometryType(geom) FROM areas LIMIT 1")).scalar()
    assert rows == {"510107015": None, "510107015001": "510107015"}
    assert kind == "MULTIPOLYGON"


def test_grids_get_an_insert_revision(areas, tmp_path):
    path = geojson(
        tmp_path / "grids.geojson",
        [
            (
                polygon(COMMUNITY),
                {
                    "code": "510107015001000",
                    "name": "总网格",
                    "kind": "master",
                    "community": "510107015001",
                },
            ),
            (
                polygon(box_ring(104.0, 30.0, 104.005, 30.01)),
                {
                    "code": "510107015001001",
                    "name": "一网格",
                    "kind": "general",
                    "place_type": "old_compound",
                    "community": "510107015001",
                    "parent": "510107015001000",
                },
            ),
        ],
    )
    assert import_file(areas, path, "grids", author="planner-li") == 2
    with areas.connect() as conn:
        revisions = conn.execute(
            text(
                "SELECT g.code, r.action, r.version, r.author, r.after->>'place_type', "
                "r.after->'geometry'->>'type' FROM grid_revisions r "
                "JOIN grids g ON g.id = r.grid_id ORDER BY g.code"
            )
        ).all()
    assert revisions == [
        ("510107015001000", "insert", 1, "planner-li", None, "MultiPolygon"),
        ("510107015001001", "insert", 1, "planner-li", "old_compound", "MultiPolygon"),
    ]


def test_buildings_keep_footprint_or_point(engine, tmp_path):
    path = geojson(
        tmp_path / "b.geojson",
        [
            (
                polygon(box_ring(104.001, 30.001, 104.0012, 30.0012)),
                {
                    "code": "B1",
                    "use": "residential",
                    "households": 24,
                    "population": 60,
                    "floors": 6,
                },
            ),
            ({"type": "Point", "coordinates": [104.003, 30.003]}, {"code": "B2", "use": "school"}),
        ],
    )
    assert import_file(engine, path, "buildings") == 2
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, footprint IS NULL, ST_Contains(footprint, point), ST_X(point), "
                "households, population FROM buildings ORDER BY code"
            )
        ).all()
    assert rows == [
        ("B1", False, True, pytest.approx(104.0011, abs=1e-4), 24, 60),
        ("B2", True, None, pytest.approx(104.003), 0, 0),
    ]


def test_geopackage_in_cgcs2000_is_taken_as_is(engine, tmp_path):
    path = tmp_path / "stations.gpkg"
    pyogrio.raw.write(
        path,
        np.array(shapely.to_wkb([shapely.Point(104.01, 30.02)]), dtype=object),
        [
            np.array(["便民服务站"], dtype=object),
            np.array(["service_post"], dtype=object),
            np.array([1500]),
        ],
        ["name", "kind", "capacity"],
        driver="GPKG",
        crs="EPSG:4490",
        geometry_type="Point",
    )
    assert import_file(engine, path, "stations") == 1
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT name, capacity, ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM stations")
        ).one()
    assert row == ("便民服务站", 1500, 104.01, 30.02, 4326)


def test_shapefile_in_utm_is_reprojected(engine, tmp_path):
    utm = [(407500.0, 3388400.0), (407900.0, 3388400.0)]
    path = tmp_path / "roads.shp"
    pyogrio.raw.write(
        path,
        np.array(shapely.to_wkb([shapely.LineString(utm)]), dtype=object),
        [np.array(["primary"], dtype=object), np.array([1], dtype=np.int32)],
        ["class", "barrier"],
        driver="ESRI Shapefile",
        crs="EPSG:32648",
        geometry_type="LineString",
    )
    assert import_file(engine, path, "roads") == 1
    expected = Transformer.from_crs(32648, 4326, always_xy=True).transform(*utm[1])
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT class, barrier, walkable, ST_X(ST_EndPoint(geom)), "
                "ST_Y(ST_EndPoint(geom)), ST_Length(geom::geography) FROM roads"
            )
        ).one()
    assert row[:3] == ("primary", True, True)
    assert row[3:5] == pytest.approx(expected, abs=1e-9)
    assert row[5] == pytest.approx(400.0, rel=2e-3)  # UTM scale factor near the zone's middle


def test_csv_workers_and_field_mapping(engine, tmp_path):
    path = tmp_path / "workers.csv"
    path.write_text("工号,姓名,电话\nW1,王芳,13800000000\nW2,李强,\n", encoding="utf-8")
    assert (
        import_file(
            engine, path, "workers", field_map={"code": "工号", "name": "姓名", "phone": "电话"}
        )
        == 2
    )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, name, phone FROM workers ORDER BY code")).all()
    assert rows == [("W1", "王芳", "13800000000"), ("W2", "李强", None)]


def test_one_bad_feature_and_nothing_is_written(engine, tmp_path):
    path = geojson(
        tmp_path / "bad.geojson",
        [
            (
                polygon(box_ring(104.001, 30.001, 104.002, 30.002)),
                {"code": "B1", "use": "residential"},
            ),
            # A bow tie: its edges cross at (104.0015, 30.0015).
            (
                polygon(
                    [
                        [
                            [104.001, 30.001],
                            [104.002, 30.002],
                            [104.002, 30.001],
                            [104.001, 30.002],
                            [104.001, 30.001],
                        ]
                    ]
                ),
                {"code": "B2", "use": "residential"},
            ),
            (polygon(box_ring(104.003, 30.003, 104.004, 30.004)), {"code": "B3"}),
            (polygon(box_ring(200.0, 30.0, 200.001, 30.001)), {"code": "B4", "use": "office"}),
            (
                polygon(box_ring(104.005, 30.005, 104.006, 30.006)),
                {"code": "B5", "use": "office", "households": 2.5},
            ),
            (polygon(box_ring(104.007, 30.007, 104.008, 30.008)), {"code": "B1", "use": "office"}),
            (
                {"type": "LineString", "coordinates": [[104, 30], [104.1, 30.1]]},
                {"code": "B7", "use": "office"},
            ),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path, "buildings")
    problems = {(p["index"], p["field"]): p for p in caught.value.problems}
    assert set(problems) == {
        (1, "geometry"),
        (2, "use"),
        (3, "geometry"),
        (4, "households"),
        (5, "code"),
        (6, "geometry"),
    }
    assert "Self-intersection" in problems[1, "geometry"]["reason"]
    assert problems[1, "geometry"]["location"] == pytest.approx([104.0015, 30.0015])
    assert "outside longitude" in problems[3, "geometry"]["reason"]
    assert problems[3, "geometry"]["location"] == [200.0, 30.0]
    assert "whole number" in problems[4, "households"]["reason"]
    assert "also at feature 0" in problems[5, "code"]["reason"]
    assert "LineString" in problems[6, "geometry"]["reason"]
    assert count(engine, "buildings") == 0


def test_unknown_reference_writes_nothing(areas, tmp_path):
    path = geojson(
        tmp_path / "grids.geojson",
        [
            (
                polygon(COMMUNITY),
                {"code": "G1", "name": "a", "kind": "master", "community": "510107015001"},
            ),
            (
                polygon(COMMUNITY),
                {"code": "G2", "name": "b", "kind": "master", "community": "999999999999"},
            ),
            (
                polygon(COMMUNITY),
                {"code": "G3", "name": "c", "kind": "micro", "community": "510107015001"},
            ),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(areas, path, "grids")
    reasons = {(p["index"], p["field"]): p["reason"] for p in caught.value.problems}
    assert reasons == {(2, "parent"): "a micro grid needs its general grid as parent"}
    # Fix the micro grid; the unknown community is found next, still all or nothing.
    data = json.loads(path.read_text())
    data["features"].pop()
    path.write_text(json.dumps(data))
    with pytest.raises(ImportRejected) as caught:
        import_file(areas, path, "grids")
    assert [(p["index"], p["field"]) for p in caught.value.problems] == [(1, "community")]
    assert "999999999999" in caught.value.problems[0]["reason"]
    assert count(areas, "grids") == 0
    assert count(areas, "grid_revisions") == 0


def test_existing_code_is_refused(areas, tmp_path):
    path = geojson(
        tmp_path / "again.geojson",
        [(polygon(COMMUNITY), {"code": "510107015001", "name": "again", "level": "community"})],
    )
    with pytest.raises(ImportRejected, match="1 problem"):
        import_file(areas, path, "areas")
    assert count(areas, "areas") == 2


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_export_round_trip(demo_engine, tmp_path, suffix):
    path = tmp_path / f"grids{suffix}"
    written = export_file(demo_engine, path, "grids", area="510107015001")
    meta, _, wkb, columns = pyogrio.raw.read(path)
    names = list(meta["fields"])
    codes = list(columns[names.index("code")])
    with demo_engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT g.code, ST_Area(g.geom::geography) FROM grids g JOIN areas a "
                "ON a.id = g.community_id WHERE a.code = '510107015001' ORDER BY g.id"
            )
        ).all()
    assert written == len(expected) == 5
    assert codes == [code for code, _ in expected]
    assert set(columns[names.index("community")]) == {"510107015001"}
    assert meta["crs"] == "EPSG:4326"
    # The geometry survives: the same areas in m² as PostGIS computes for the stored grids.
    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)
    areas_m2 = [
        shapely.transform(g, lambda c: np.column_stack(to_utm.transform(c[:, 0], c[:, 1]))).area
        for g in shapely.from_wkb(wkb)
    ]
    assert areas_m2 == pytest.approx([a for _, a in expected], rel=2e-3)


def test_cli_import_reports_problems_and_exit_code(db_url, tmp_path):
    path = geojson(
        tmp_path / "stations.geojson",
        [
            ({"type": "Point", "coordinates": [104.0, 30.0]}, {"name": "站", "kind": "canteen"}),
            ({"type": "Point", "coordinates": [104.0, 30.0]}, {"name": "站", "kind": "bar"}),
        ],
    )
    env = cli_env(db_url)
    bad = run_cli("import", str(path), "--layer", "stations", env=env, check=False)
    assert bad.returncode == 1
    assert "feature 1 kind: 'kind' must be one of" in bad.stderr
    assert "nothing was written" in bad.stderr
    data = json.loads(path.read_text())
    data["features"][1]["properties"]["kind"] = "elderly_care"
    path.write_text(json.dumps(data))
    good = run_cli("import", str(path), "--layer", "stations", env=env)
    assert "imported 2 stations" in good.stdout
    out = tmp_path / "out.geojson"
    assert (
        "exported 2 stations" in run_cli("export", str(out), "--layer", "stations", env=env).stdout
    )
    kinds = [f["properties"]["kind"] for f in json.loads(out.read_text())["features"]]
    assert kinds == ["canteen", "elderly_care"]
