"""Import of real OpenStreetMap extracts (data/osm, ODbL) with the documented commands.

Counts are checked against GDAL's own reading of the same file (pyogrio, tags read
here with a plain string search), never against gridmap's mapping.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pyogrio.raw
import pytest
from sqlalchemy import text

from gridmap.settings import PROJECT_ROOT
from tests.helpers import cli_env, run_cli

HELSINKI = PROJECT_ROOT / "data" / "osm" / "Helsinki.osm.pbf"
SMALL = PROJECT_ROOT / "data" / "osm" / "test.osm.pbf"


def gdal_layer(path: Path, layer: str) -> tuple[list, dict[str, list]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=layer)
    return list(wkb), dict(zip(meta["fields"], columns, strict=True))


def count(engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_osm_roads_buildings_and_stations_in_one_command_each(engine, db_url, tmp_path):
    env = cli_env(db_url)
    _, lines = gdal_layer(HELSINKI, "lines")
    highways = [h for h in lines["highway"] if h]
    tunnel_values = [
        re.search(r'"tunnel"=>"([^"]*)"', t or "")
        for h, t in zip(lines["highway"], lines["other_tags"], strict=True)
        if h
    ]
    tunnels = sum(1 for m in tunnel_values if m and m.group(1) != "no")

    roads = run_cli("import", str(HELSINKI), "--layer", "roads", env=env)
    assert f"imported {len(highways)} roads" in roads.stdout
    assert count(engine, "SELECT count(*) FROM roads") == len(highways)
    assert count(engine, "SELECT count(*) FROM roads WHERE tunnel") == tunnels
    assert count(engine, "SELECT count(*) FROM roads WHERE class = 'footway'") == sum(
        1 for h in highways if h == "footway"
    )
    assert count(engine, "SELECT count(*) FROM roads WHERE layer = -1") > 0

    # Buildings: the raw file refuses with every bad footprint named, by index.
    _, polygons = gdal_layer(HELSINKI, "multipolygons")
    outlines = [b for b in polygons["building"] if b and b != "no"]
    report = tmp_path / "refused.json"
    refused = run_cli(
        "import",
        str(HELSINKI),
        "--layer",
        "buildings",
        "--report",
        str(report),
        env=env,
        check=False,
    )
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    problems = json.loads(report.read_text())["refused"]
    assert len(problems) >= 20
    assert all(p["index"] is not None and "OSM" in p["reason"] for p in problems)
    assert count(engine, "SELECT count(*) FROM buildings") == 0

    report = tmp_path / "repaired.csv"
    repaired = run_cli(
        "import",
        str(HELSINKI),
        "--layer",
        "buildings",
        "--on-invalid",
        "repair",
        "--report",
        str(report),
        env=env,
    )
    assert "Traceback" not in repaired.stderr
    imported = count(engine, "SELECT count(*) FROM buildings")
    lines_of = report.read_text().splitlines()
    skipped = {int(line.split(",")[1]) for line in lines_of if line.startswith("skipped,")}
    fixed = {int(line.split(",")[1]) for line in lines_of if line.startswith("repaired,")}
    # Every outline is imported or listed as skipped: nothing disappears silently.
    assert imported + len(skipped) == len(outlines)
    assert len(fixed) >= 5 and not fixed & skipped
    assert f"imported {imported} buildings" in repaired.stdout
    # The 2-point rings GDAL reads are named (the ways the issue found).
    assert sum("found 2" in line for line in lines_of) >= 5
    # No household figures in OSM: every residential building estimated, none 0.
    assert "none of the" in repaired.stderr and "household figures" in repaired.stderr
    assert (
        count(
            engine,
            "SELECT count(*) FROM buildings WHERE use = 'residential' AND NOT households_estimated",
        )
        == 0
    )
    assert count(engine, "SELECT min(households) FROM buildings WHERE use = 'residential'") >= 1
    # Nested footprints are reported as pairs.
    assert "one inside the other" in repaired.stderr
    assert re.search(r"nested: features \d+ and \d+", repaired.stderr)

    stations = run_cli("import", str(HELSINKI), "--layer", "stations", env=env)
    _, points = gdal_layer(HELSINKI, "points")
    pharmacies = sum(1 for t in points["other_tags"] if t and '"amenity"=>"pharmacy"' in t)
    assert pharmacies >= 1
    assert count(engine, "SELECT count(*) FROM stations WHERE kind = 'health_station'") >= (
        pharmacies
    )
    assert "imported" in stations.stdout


def test_small_extract_with_skip_lists_every_skipped_feature(engine, db_url, tmp_path):
    env = cli_env(db_url)
    report = tmp_path / "report.json"
    result = run_cli(
        "import",
        str(SMALL),
        "--layer",
        "buildings",
        "--on-invalid",
        "skip",
        "--report",
        str(report),
        env=env,
    )
    body = json.loads(report.read_text())
    assert body["imported"] == count(engine, "SELECT count(*) FROM buildings")
    assert len(body["ids"]) == body["imported"]
    assert body["imported"] + len({p["index"] for p in body["skipped"]}) == body["read"]
    assert "imported" in result.stdout


@pytest.mark.parametrize("policy", ["refuse", "skip", "repair"])
def test_osm_derived_geojson_with_a_value_map(engine, tmp_path, policy):
    from gridmap.io.importer import ImportOptions, import_path
    from gridmap.io.mapping import build_mapping, parse_mapping

    # overpass turbo's export: tags as properties, ids as "way/123".
    ring = [[24.94, 60.17], [24.9402, 60.17], [24.9402, 60.1701], [24.94, 60.1701], [24.94, 60.17]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"@id": "way/1", "building": "yes", "building:levels": "4"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            },
            {
                "type": "Feature",
                "properties": {"@id": "node/2", "amenity": "cafe"},
                "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
            },
            {
                "type": "Feature",
                "properties": {"@id": "way/3", "building": "dormitory", "building:flats": "40"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[c[0] + 0.001, c[1]] for c in ring]],
                },
            },
        ],
    }
    path = tmp_path / "export.geojson"
    path.write_text(json.dumps(collection))
    mapping = build_mapping(
        parse_mapping({"use": {"source": "building", "values": {"yes": "office"}}}),
        constants={"compound": "Kamppi"},
    )
    options = ImportOptions(layer="buildings", osm=True, mapping=mapping, on_invalid=policy)
    report = import_path(engine, path, options)
    assert report.imported == 2 and report.left_out == 1
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, use, floors, households, households_estimated, compound "
                "FROM buildings ORDER BY code"
            )
        ).all()
    assert rows == [
        ("osm-w1", "office", 4, 0, False, "Kamppi"),
        ("osm-w3", "residential", None, 40, False, "Kamppi"),
    ]


def test_the_raw_extract_through_the_api_is_never_a_5xx(client, tokens, engine):
    import io

    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    data = HELSINKI.read_bytes()

    def upload(query: str):
        return client.post(
            f"/api/v1/buildings/import{query}",
            headers=planner,
            data={"file": (io.BytesIO(data), "Helsinki.osm.pbf")},
            content_type="multipart/form-data",
        )

    refused = upload("")
    assert refused.status_code == 422
    assert len(refused.get_json()["errors"]) >= 20
    repaired = upload("?on_invalid=repair")
    assert repaired.status_code == 201, repaired.get_json()
    body = repaired.get_json()
    skipped = {p["index"] for p in body["skipped"]}
    assert body["imported"] + len(skipped) == body["read"]
    assert body["imported"] == count(engine, "SELECT count(*) FROM buildings")
    assert {w["kind"] for w in body["warnings"]} >= {
        "overlapping_footprints",
        "no_household_figures",
    }
