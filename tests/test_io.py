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


# -- real files: broken features, policies, mappings, estimates, speed of checks ------

TWO_POINT_RING = {"type": "Polygon", "coordinates": [[[104.001, 30.001], [104.002, 30.002]]]}
BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [
            [104.003, 30.003],
            [104.004, 30.004],
            [104.004, 30.003],
            [104.003, 30.004],
            [104.003, 30.003],
        ]
    ],
}


def broken_buildings(path: Path) -> Path:
    """Five good footprints and every kind of bad one, with households where needed."""
    good = [
        (
            polygon(box_ring(104.0 + i / 1000, 30.0, 104.0002 + i / 1000, 30.0002)),
            {"code": f"G{i}", "use": "residential", "households": 10},
        )
        for i in range(5)
    ]
    bad = [
        (TWO_POINT_RING, {"code": "B0", "use": "residential", "households": 1}),
        (BOW_TIE, {"code": "B1", "use": "residential", "households": 2}),
        (
            {"type": "Polygon", "coordinates": []},
            {"code": "B2", "use": "residential", "households": 1},
        ),
        (
            {"type": "LineString", "coordinates": [[104.0, 30.0], [104.1, 30.1]]},
            {"code": "B3", "use": "school"},
        ),
        (polygon(box_ring(104.01, 30.01, 104.011, 30.011)), {"code": "B4", "use": "castle"}),
        (polygon(box_ring(104.02, 30.02, 104.021, 30.021)), {"code": "G0", "use": "school"}),
    ]
    # GeoJSON written by hand (GDAL reads the 2-point ring and the empty polygon as drawn).
    return geojson(path, good + bad)


def test_refuse_lists_every_broken_feature_and_writes_nothing(engine, tmp_path):
    path = broken_buildings(tmp_path / "broken.geojson")
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path, "buildings")
    by_index = {p["index"]: p["reason"] for p in caught.value.problems}
    assert sorted(by_index) == [5, 6, 7, 8, 9, 10]
    assert by_index[5].startswith("unreadable geometry: ")
    assert "Self-intersection" in by_index[6]
    assert "castle" in by_index[9] and "also at feature 0" in by_index[10]
    assert count(engine, "buildings") == 0


@pytest.mark.parametrize(("policy", "imported", "repaired"), [("skip", 5, []), ("repair", 6, [6])])
def test_skip_and_repair_take_the_good_and_list_the_rest(
    engine, tmp_path, policy, imported, repaired
):
    from gridmap.io.importer import ImportOptions, import_path

    path = broken_buildings(tmp_path / "broken.geojson")
    report = import_path(engine, path, ImportOptions(layer="buildings", on_invalid=policy))
    assert report.imported == imported == count(engine, "buildings")
    assert [r["index"] for r in report.repaired] == repaired
    skipped = sorted({p["index"] for p in report.skipped})
    assert skipped == [i for i in [5, 6, 7, 8, 9, 10] if i not in repaired]
    if policy == "repair":
        # The bow-tie's two triangles: make_valid's polygonal part, the larger kept.
        assert (
            "kept the largest of 2 pieces (50.0% of the area dropped)"
            in (report.repaired[0]["reason"])
        )
        with engine.connect() as conn:
            area = conn.execute(
                text("SELECT ST_Area(footprint) FROM buildings WHERE code = 'B1'")
            ).scalar()
        assert area == pytest.approx(0.001 * 0.001 / 4)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("garbage.geojson", b"\x00\xff\xfe not json at all \x89PNG", "cannot read"),
        ("empty.geojson", b"", "cannot read"),
        ("half.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Fea', "cannot"),
        ("garbage.gpkg", b"SQLite format 3\x00" + b"\x01" * 200, "cannot read"),
        ("garbage.osm.pbf", b"\x00\x00\x00\x0dOSMHeader" + b"\x07" * 100, "cannot read"),
    ],
)
def test_garbage_files_are_a_clear_message_never_a_traceback(
    db_url, tmp_path, name, content, expected
):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli(
        "import",
        str(path),
        "--layer",
        "buildings",
        "--on-invalid",
        "repair",
        env=cli_env(db_url),
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert expected in result.stderr


def test_unknown_crs_and_points_far_outside_theirs(db_url, tmp_path):
    path = geojson(
        tmp_path / "s.geojson", [({"type": "Point", "coordinates": [5e6, 3e6]}, {"name": "x"})]
    )
    env = cli_env(db_url)
    unknown = run_cli(
        "import", str(path), "--layer", "stations", "--crs", "EPSG:999999", env=env, check=False
    )
    assert unknown.returncode == 1 and "unknown CRS" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    # 5,000 km east in Web Mercator is no place in China: named, not stored.
    far = run_cli(
        "import",
        str(path),
        "--layer",
        "stations",
        "--crs",
        "EPSG:4547",
        "--set",
        "kind=canteen",
        env=env,
        check=False,
    )
    assert far.returncode == 1 and "feature 0 geometry" in far.stderr
    assert "Traceback" not in far.stderr


def test_set_and_values_map_fields_in_the_cli(engine, db_url, tmp_path):
    path = geojson(
        tmp_path / "poi.geojson",
        [
            (
                {"type": "Point", "coordinates": [104.001, 30.001]},
                {"名称": "幸福食堂", "type": "食堂"},
            ),
            (
                {"type": "Point", "coordinates": [104.002, 30.001]},
                {"名称": "卫生站", "type": "卫生"},
            ),
        ],
    )
    values = tmp_path / "kinds.yaml"
    values.write_text(
        "kind:\n  source: type\n  values: {食堂: canteen, 卫生: health_station}\n",
        encoding="utf-8",
    )
    run_cli(
        "import",
        str(path),
        "--layer",
        "stations",
        "--map",
        "name=名称",
        "--values",
        str(values),
        "--set",
        "opening_hours=Mo-Su 07:00-19:00",
        env=cli_env(db_url),
    )
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, kind, opening_hours FROM stations ORDER BY name")
        ).all()
    assert rows == [
        ("卫生站", "health_station", "Mo-Su 07:00-19:00"),
        ("幸福食堂", "canteen", "Mo-Su 07:00-19:00"),
    ]


def test_households_are_estimated_and_marked_never_zero(engine, tmp_path):
    from gridmap.io.importer import ImportOptions, import_path

    # 20 m x 30 m at 30° N: WGS 84 has 96,486 m per degree east and 110,852 m north
    # there (pyproj.Geod.inv gives 20.00 m and 30.00 m for these sides).
    dx, dy = 20 / 96_486.0, 30 / 110_852.0
    path = geojson(
        tmp_path / "b.geojson",
        [
            (
                polygon(box_ring(104.0, 30.0, 104.0 + dx, 30.0 + dy)),
                {"code": "R6", "use": "residential", "floors": 6},
            ),
            (
                polygon(box_ring(104.001, 30.0, 104.001 + dx, 30.0 + dy)),
                {"code": "R?", "use": "residential"},
            ),
            (
                polygon(box_ring(104.002, 30.0, 104.002 + dx, 30.0 + dy)),
                {"code": "S", "use": "school"},
            ),
            (
                polygon(box_ring(104.003, 30.0, 104.003 + dx, 30.0 + dy)),
                {"code": "K", "use": "residential", "households": 12},
            ),
        ],
    )
    report = import_path(engine, path, ImportOptions(layer="buildings", place_type="suburban"))
    with engine.connect() as conn:
        rows = dict(
            (code, (hh, pop, est))
            for code, hh, pop, est in conn.execute(
                text("SELECT code, households, population, households_estimated FROM buildings")
            )
        )
    # 600 m² x 6 floors / 110.8 m² (suburban) = 32.5 → 32 (and 32 x 2.62 = 83.8 persons);
    # no floors: the suburban 3 assumed, 600 x 3 / 110.8 = 16.2 → 16.
    assert rows["R6"] == (32, 84, True)
    assert rows["R?"] == (16, 42, True)
    assert rows["S"] == (0, 0, False)
    assert rows["K"] == (12, 0, False)
    assert report.estimated_households == 2
    assert {w["kind"] for w in report.warnings} == {"households_estimated", "floors_assumed"}


def test_a_residential_point_without_households_is_a_problem(engine, tmp_path):
    path = geojson(
        tmp_path / "p.geojson",
        [({"type": "Point", "coordinates": [104.0, 30.0]}, {"code": "P", "use": "residential"})],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path, "buildings")
    assert caught.value.problems[0]["field"] == "households"


def test_nested_and_overlapping_footprints_are_reported_in_pairs(engine, tmp_path):
    from gridmap.io.importer import ImportOptions, import_path

    big = box_ring(104.0, 30.0, 104.001, 30.001)
    path = geojson(
        tmp_path / "n.geojson",
        [
            (polygon(big), {"code": "A", "use": "school"}),
            (
                polygon(box_ring(104.0002, 30.0002, 104.0004, 30.0004)),
                {"code": "B", "use": "school"},
            ),
            (polygon(box_ring(104.0009, 30.0, 104.0019, 30.001)), {"code": "C", "use": "school"}),
            # shares A's east edge with C only along a line: not an overlap
            (polygon(box_ring(104.002, 30.0, 104.003, 30.001)), {"code": "D", "use": "school"}),
            (polygon(box_ring(104.0019, 30.0, 104.002, 30.001)), {"code": "E", "use": "school"}),
        ],
    )
    report = import_path(engine, path, ImportOptions(layer="buildings"))
    (warning,) = report.warnings
    pairs = sorted((p["kind"], tuple(p["codes"])) for p in warning["pairs"])
    assert pairs == [("nested", ("A", "B")), ("overlap", ("A", "C"))]


def test_an_empty_import_is_refused_with_a_reason(engine, tmp_path, client, tokens):
    path = geojson(tmp_path / "empty.geojson", [])
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path, "buildings")
    assert caught.value.problems == [
        {"index": None, "field": None, "reason": "there are no features to import"}
    ]
    answer = client.post(
        "/api/v1/buildings/import",
        headers={"Authorization": f"Bearer {tokens['planner']}"},
        json={"type": "FeatureCollection", "features": []},
    )
    assert answer.status_code == 422
    assert "there are no features to import" in answer.get_json()["detail"]


def test_twenty_thousand_duplicate_codes_are_all_listed(engine, tmp_path):
    from gridmap.db.engine import session_scope
    from gridmap.geometry import parse_crs
    from gridmap.io.files import SourceData
    from gridmap.io.importer import ImportOptions, check_source, store_checked

    n = 20_000
    points = [
        shapely.Point(104.0 + (i % 200) / 10_000, 30.0 + (i // 200) / 10_000) for i in range(n)
    ]
    records = [{"code": f"B{i:05d}", "use": "school"} for i in range(n)]
    options = ImportOptions(layer="buildings")
    source = SourceData(points, records, parse_crs(None))
    with session_scope(engine) as session:
        store_checked(session, check_source(source, options), options, "test")
    # The same 20,000 again, and 20,000 repeats of them inside the file.
    doubled = SourceData(points + points, records + records, parse_crs(None))
    with pytest.raises(ImportRejected) as caught:
        check_source(doubled, options)
    listed = caught.value.problems
    assert len(listed) == n
    assert [p["index"] for p in listed] == list(range(n, 2 * n))
    assert listed[7]["reason"] == "code 'B00007' also at feature 7"
    checked = check_source(source, options)
    with pytest.raises(ImportRejected) as caught, session_scope(engine) as session:
        store_checked(session, checked, options, "test")
    listed = caught.value.problems
    assert [p["index"] for p in listed] == list(range(n))
    assert {p["reason"] for p in listed[:2]} == {
        "code 'B00000' already exists",
        "code 'B00001' already exists",
    }
    assert count(engine, "buildings") == n


def _features(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def test_api_import_skips_repairs_and_lists_in_full(client, tokens, engine, tmp_path):
    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    body = {
        "type": "FeatureCollection",
        "features": _features(broken_buildings(tmp_path / "b.geojson")),
    }
    refused = client.post("/api/v1/buildings/import", headers=planner, json=body)
    assert refused.status_code == 422
    assert sorted({e["index"] for e in refused.get_json()["errors"]}) == [5, 6, 7, 8, 9, 10]
    assert count(engine, "buildings") == 0

    done = client.post("/api/v1/buildings/import?on_invalid=repair", headers=planner, json=body)
    assert done.status_code == 201
    answer = done.get_json()
    assert answer["imported"] == 6 and len(answer["ids"]) == 6
    assert [r["index"] for r in answer["repaired"]] == [6]
    assert sorted({s["index"] for s in answer["skipped"]}) == [5, 7, 8, 9, 10]
    assert count(engine, "buildings") == 6


def test_api_import_maps_fields_with_map_set_and_values(client, tokens, engine):
    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    body = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [104.001, 30.001]},
                "properties": {"title": "幸福食堂", "category": "食堂"},
            }
        ],
    }
    values = {"kind": {"source": "category", "values": {"食堂": "canteen"}}}
    mapped = {**body, "map": {"name": "title"}, "set": {"capacity": 80}, "values": values}
    done = client.post("/api/v1/stations/import", headers=planner, json=mapped)
    assert done.status_code == 201, done.get_json()
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, kind, capacity FROM stations")).one()
    assert tuple(row) == ("幸福食堂", "canteen", 80)
    bad = client.post(
        "/api/v1/stations/import", headers=planner, json={**body, "set": {"colour": "red"}}
    )
    assert bad.status_code == 422 and "colour" in bad.get_json()["detail"]
    odd = client.post(
        "/api/v1/stations/import", headers=planner, json={**body, "values": {"kind": 5}}
    )
    assert odd.status_code == 422
    # The same mapping beside an uploaded file, as form fields of JSON.
    import io

    form = {
        "file": (io.BytesIO(json.dumps(body).encode()), "poi.geojson"),
        "map": json.dumps({"name": "title"}),
        "values": json.dumps(values),
    }
    uploaded = client.post(
        "/api/v1/stations/import", headers=planner, data=form, content_type="multipart/form-data"
    )
    assert uploaded.status_code == 201, uploaded.get_json()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.geojson", b"\x00\xff\xfe not json \x89PNG"),
        ("garbage.gpkg", b"SQLite format 3\x00" + b"\x01" * 200),
        ("garbage.osm.pbf", b"\x00\x00\x00\x0dOSMHeader" + b"\x07" * 100),
        ("broken.geojson", None),
    ],
)
def test_api_upload_of_broken_files_is_4xx(client, tokens, tmp_path, name, content):
    import io

    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    if content is None:
        content = broken_buildings(tmp_path / "b.geojson").read_bytes()
    for policy in ("refuse", "skip", "repair"):
        answer = client.post(
            f"/api/v1/buildings/import?on_invalid={policy}",
            headers=planner,
            data={"file": (io.BytesIO(content), name)},
            content_type="multipart/form-data",
        )
        assert 400 <= answer.status_code < 500 or (
            content is not None and name == "broken.geojson" and answer.status_code == 201
        ), (policy, answer.status_code, answer.get_data(as_text=True))


def test_api_upload_of_an_osm_extract(client, tokens, engine):
    import io

    from gridmap.settings import PROJECT_ROOT

    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    data = (PROJECT_ROOT / "data" / "osm" / "test.osm.pbf").read_bytes()
    answer = client.post(
        "/api/v1/roads/import",
        headers=planner,
        data={"file": (io.BytesIO(data), "test.osm.pbf")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["imported"] == count(engine, "roads") > 0
    assert body["left_out"] > 0


def test_households_given_by_hand_are_no_longer_estimated(client, tokens, engine, tmp_path):
    from gridmap.io.importer import ImportOptions, import_path

    path = geojson(
        tmp_path / "b.geojson",
        [(polygon(box_ring(104.0, 30.0, 104.0002, 30.0002)), {"code": "R", "use": "residential"})],
    )
    (building_id,) = import_path(engine, path, ImportOptions(layer="buildings")).ids
    staff = {"Authorization": f"Bearer {tokens['planner']}"}
    shown = client.get(f"/api/v1/buildings/{building_id}", headers=staff).get_json()
    assert shown["properties"]["households_estimated"] is True
    changed = client.patch(
        f"/api/v1/buildings/{building_id}", headers=staff, json={"properties": {"households": 5}}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["properties"]["households"] == 5
    assert changed.get_json()["properties"]["households_estimated"] is False


def test_heights_odd_types_and_huge_numbers_are_handled_per_feature(engine, tmp_path):
    from gridmap.io.importer import ImportOptions, import_path

    point = {"type": "Point", "coordinates": [104.0, 30.0]}
    path = geojson(
        tmp_path / "odd.geojson",
        [
            (
                {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [104.0, 30.0, 5],
                            [104.001, 30.0, 5],
                            [104.001, 30.001, 5],
                            [104.0, 30.0, 5],
                        ]
                    ],
                },
                {"code": "Z", "use": "school"},
            ),
            ({"type": "GeometryCollection", "geometries": [point]}, {"code": "C", "use": "school"}),
            (point, {"code": "H", "use": "school", "households": "1e20"}),
            (point, {"code": "F", "use": "school", "floors": 1e300}),
            ({"type": "Point", "coordinates": [1e300, 30.0]}, {"code": "X", "use": "school"}),
            (None, {"code": "N", "use": "school"}),
            (point, None),
        ],
    )
    report = import_path(engine, path, ImportOptions(layer="buildings", on_invalid="skip"))
    assert report.imported == 1
    assert sorted({p["index"] for p in report.skipped}) == [1, 2, 3, 4, 5, 6]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT ST_NDims(footprint) FROM buildings")).scalar() == 2


def test_skip_leaves_out_rows_whose_parent_was_left_out(engine, tmp_path):
    from gridmap.io.importer import ImportOptions, import_path

    path = geojson(
        tmp_path / "areas.geojson",
        [
            (polygon(STREET), {"code": "S1", "name": "街道", "level": "province"}),
            (
                polygon(COMMUNITY),
                {"code": "C1", "name": "社区", "level": "community", "parent": "S1"},
            ),
            (polygon(COMMUNITY), {"code": "C2", "name": "社区二", "level": "community"}),
        ],
    )
    report = import_path(engine, path, ImportOptions(layer="areas", on_invalid="skip"))
    assert report.imported == 1
    assert [(p["index"], p["field"]) for p in report.skipped] == [(0, "level"), (1, "parent")]
    assert "no areas with code 'S1'" in report.skipped[1]["reason"]


def test_a_nan_coordinate_is_named_by_its_feature_index():
    from gridmap.geometry import parse_crs
    from gridmap.io.files import SourceData
    from gridmap.io.importer import ImportOptions, check_source

    points = [shapely.Point(104.0 + i / 1000, 30.0) for i in range(3)]
    points.append(shapely.Point(float("nan"), 30.0))
    records = [{"code": f"P{i}", "use": "school"} for i in range(4)]
    with pytest.raises(ImportRejected) as caught:
        check_source(SourceData(points, records, parse_crs(None)), ImportOptions("buildings"))
    (problem,) = caught.value.problems
    assert problem["index"] == 3 and "not a finite number" in problem["reason"]
