"""The demo town: generated deterministically, loaded once, and a sound layout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from gridmap.demo import load_demo
from tests.helpers import DEMO_DIR, cli_env, run_cli

LAYER_FILES = ("areas", "grids", "buildings", "stations", "roads")


def _features(layer: str) -> list[dict]:
    return json.loads((DEMO_DIR / f"{layer}.geojson").read_text(encoding="utf-8"))["features"]


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, "scripts/make_demo.py", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=DEMO_DIR.parent.parent,
    )
    for name in [f"{layer}.geojson" for layer in LAYER_FILES] + ["workers.csv"]:
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name


def test_demo_town_is_a_plausible_street():
    buildings = [f["properties"] for f in _features("buildings")]
    residents = sum(b["population"] for b in buildings)
    assert 2000 <= len(buildings) <= 4000
    assert 10_000 <= residents < 100_000
    assert 2.0 <= residents / sum(b["households"] for b in buildings) <= 3.2
    assert {b["use"] for b in buildings} >= {
        "residential",
        "school",
        "hospital",
        "commercial",
        "industrial",
        "public",
        "office",
        "mixed",
    }
    levels = [f["properties"]["level"] for f in _features("areas")]
    assert levels.count("street") == 1 and levels.count("community") == 6
    assert 25 <= len(_features("stations")) <= 35
    general = [g for g in _features("grids") if g["properties"]["kind"] == "general"]
    assert 20 <= len(general) <= 40
    assert all(g["properties"]["worker"] for g in general)


def test_load_counts_every_feature_and_is_idempotent(engine):
    counts = load_demo(engine, DEMO_DIR)
    expected = {layer: len(_features(layer)) for layer in LAYER_FILES}
    expected["workers"] = len((DEMO_DIR / "workers.csv").read_text().splitlines()) - 1
    assert counts == expected
    assert load_demo(engine, DEMO_DIR) is None
    with engine.connect() as conn:
        stored = {
            layer: conn.execute(text(f"SELECT count(*) FROM {layer}")).scalar()
            for layer in expected
        }
    assert stored == expected


def test_cli_demo_loads_once(db_url):
    env = cli_env(db_url)
    assert "demo town loaded" in run_cli("demo", env=env).stdout
    assert "already loaded" in run_cli("demo", env=env).stdout


@pytest.fixture
def conn(demo_engine):
    with demo_engine.connect() as connection:
        yield connection


def test_old_general_grids_tile_each_community(conn):
    # Area of the union equals the community's; sum of areas equals it too (no overlap).
    rows = conn.execute(
        text("""
        SELECT a.code,
               ST_Area(a.geom::geography),
               ST_Area(ST_Union(g.geom)::geography),
               sum(ST_Area(g.geom::geography)),
               ST_Area(ST_SymDifference(a.geom, ST_Union(g.geom))::geography)
        FROM areas a JOIN grids g ON g.community_id = a.id AND g.kind = 'general'
        WHERE a.level = 'community' GROUP BY a.code, a.geom""")
    ).all()
    assert len(rows) == 6
    for code, community, union, total, difference in rows:
        assert union == pytest.approx(community, rel=1e-9), code
        assert total == pytest.approx(community, rel=1e-9), code
        assert difference < 1e-3, code  # m²


def test_every_building_is_in_exactly_one_general_grid(conn):
    counts = conn.execute(
        text("""
        SELECT b.code, count(g.id) FROM buildings b
        LEFT JOIN grids g ON g.kind = 'general' AND ST_Contains(g.geom, b.footprint)
        GROUP BY b.code""")
    ).all()
    assert len(counts) == len(_features("buildings"))
    assert {n for _, n in counts} == {1}


def test_roads_are_noded_and_buildings_stay_off_them(conn):
    # Each road feature is one edge: no two edges cross except at shared endpoints.
    crossings = conn.execute(
        text("""
        SELECT count(*) FROM roads r1 JOIN roads r2 ON r1.id < r2.id
        AND ST_Intersects(r1.geom, r2.geom)
        AND NOT ST_Touches(r1.geom, r2.geom)""")
    ).scalar()
    on_roads = conn.execute(
        text("""
        SELECT count(*) FROM buildings b JOIN roads r ON ST_Intersects(b.footprint, r.geom)
        """)
    ).scalar()
    assert crossings == 0
    assert on_roads == 0
