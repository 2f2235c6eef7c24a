"""A city above its streets: areas of every level, coverage of a whole city in one call,
and the roads prefilter that lets the GiST index answer.

The city is the benchmark's generator (``scripts/bench_city.py``) at a small size: one
city, one district, two streets of two communities, four general grids each.
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import closing

import numpy as np
import pytest
import shapely
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridmap.coverage.store import within_metres
from gridmap.models import Area, Road
from gridmap.settings import PROJECT_ROOT
from tests.helpers import bearer, cli_env, run_cli


def _bench_city():
    spec = importlib.util.spec_from_file_location(
        "bench_city", PROJECT_ROOT / "scripts" / "bench_city.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_city", module)
    spec.loader.exec_module(module)
    return module


bench_city = _bench_city()
STREETS = ("C01S01", "C01S02")


@pytest.fixture
def city(engine):
    """The small city, with roads scattered around it at 0-1.5 km too (some within
    reach of its edge, some not)."""
    made = bench_city.make_city(
        streets=2, communities=2, buildings=1500, districts=1, stations_per_km2=2.0, seed=7
    )
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.union_all(made.roads).bounds
    starts = np.column_stack(
        [rng.uniform(minx - 0.02, maxx + 0.02, 400), rng.uniform(miny - 0.02, maxy + 0.02, 400)]
    )
    stray = shapely.linestrings(np.stack([starts, starts + rng.normal(0, 0.001, (400, 2))], 1))
    made.roads = np.concatenate([made.roads, stray])
    with closing(engine.raw_connection()) as connection:
        bench_city.load_city(connection, made)
    return made


def _households(engine, code: str) -> int:
    """Households in homes inside the area, counted in SQL."""
    with engine.connect() as con:
        return con.scalar(
            text(
                "SELECT coalesce(sum(b.households), 0) FROM buildings b JOIN areas a "
                "ON ST_Intersects(a.geom, b.point) WHERE a.code = :code AND b.households > 0"
            ),
            {"code": code},
        )


@pytest.mark.parametrize("method", ["euclidean", "network"])
def test_coverage_of_the_city_is_the_sum_of_its_streets(client, engine, city, method):
    def coverage(code: str) -> dict:
        response = client.get(f"/api/v1/coverage?area={code}&kind=service_post&method={method}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["method"] == method
        return body

    whole, district = coverage("C"), coverage("C01")
    streets = [coverage(code) for code in STREETS]
    total = whole["summary"]
    assert total["households"] == _households(engine, "C") > 0
    assert [s["summary"]["households"] for s in streets] == [
        _households(engine, code) for code in STREETS
    ]
    for key in ("buildings", "households", "households_covered", "population_covered"):
        assert total[key] == sum(s["summary"][key] for s in streets), key
    assert 0 < total["households_covered"] < total["households"]
    # The one district is the whole city; communities and grids are the streets' own.
    assert district["summary"] == total
    assert whole["communities"] == [c for s in streets for c in s["communities"]]
    assert whole["grids"] == [g for s in streets for g in s["grids"]]
    assert len(whole["grids"]) == 16 and len(whole["communities"]) == 4


@pytest.mark.parametrize("metres", [30.0, 500.0, 1200.0])
def test_the_roads_prefilter_finds_exactly_the_roads_within_reach(engine, city, metres):
    with Session(engine) as session:
        areas = session.execute(select(Area.code, func.ST_AsBinary(Area.geom))).all()
        assert {a[0][:1] for a in areas} == {"C"}
        for code, wkb in areas:
            area = select(Area.geom).where(Area.code == code).scalar_subquery()
            bounds = shapely.from_wkb(bytes(wkb)).bounds
            fast = set(
                session.scalars(
                    select(Road.id).where(within_metres(Road.geom, area, metres, bounds))
                )
            )
            exact = set(
                session.scalars(
                    select(Road.id).where(
                        func.ST_DWithin(func.Geography(Road.geom), func.Geography(area), metres)
                    )
                )
            )
            assert fast == exact and exact, code
            # Some roads lie just beyond the reach: the test is not vacuous.
            assert session.scalar(select(func.count(Road.id))) > len(exact)
        # The index answers the prefilter (the geography test alone cannot use it).
        session.execute(text("SET LOCAL enable_seqscan = off"))
        area = select(Area.geom).where(Area.code == "C01S01").scalar_subquery()
        bounds = shapely.from_wkb(bytes(dict(areas)["C01S01"])).bounds
        query = select(Road.id).where(within_metres(Road.geom, area, metres, bounds))
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(session.scalars(text(f"EXPLAIN {compiled}")))
        assert "ix_roads_geom" in plan, plan


def test_a_district_or_city_code_is_taken_by_the_api_and_the_command(client, engine, city, db_url):
    command = run_cli(
        "coverage", "C", "--kind", "service_post", "--method", "euclidean", env=cli_env(db_url)
    )
    total = next(line.split() for line in command.stdout.splitlines() if line.startswith("total"))
    api = client.get("/api/v1/coverage?area=C01&kind=service_post&method=euclidean").get_json()
    assert int(total[3]) == api["summary"]["households"] == _households(engine, "C")
    assert int(total[4]) == api["summary"]["households_covered"]
    # Lists take an area of any level and hold everything below it.
    areas = client.get("/api/v1/areas?area=C&limit=100").get_json()
    assert areas["numberMatched"] == 1 + 1 + 2 + 4
    grids = client.get("/api/v1/grids?area=C01&limit=100").get_json()
    assert grids["numberMatched"] == 16
    street_grids = client.get("/api/v1/grids?area=C01S02&limit=100").get_json()
    assert {f["properties"]["community"][:6] for f in street_grids["features"]} == {"C01S02"}
    assert street_grids["numberMatched"] == 8
    districts = client.get("/api/v1/areas?level=district").get_json()
    assert [f["properties"]["code"] for f in districts["features"]] == ["C01"]
    buildings = client.get("/api/v1/buildings?area=C&limit=1").get_json()
    assert buildings["numberMatched"] == len(city.households)
    # Validation of a city checks every community below it.
    report = client.get("/api/v1/validate?area=C").get_json()
    assert {f["community"] for f in report["findings"]} <= {
        a[0] for a in city.areas if a[2] == "community"
    }


def test_an_unknown_area_level_is_refused(client, tokens):
    planner = bearer(tokens["planner"])
    square = [[[104.0, 30.5], [104.01, 30.5], [104.01, 30.51], [104.0, 30.51], [104.0, 30.5]]]

    def post(level: str, code: str, parent: str | None = None):
        properties = {"code": code, "name": code, "level": level}
        if parent:
            properties["parent"] = parent
        return client.post(
            "/api/v1/areas",
            headers=planner,
            json={
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": square},
                "properties": properties,
            },
        )

    refused = post("province", "P1")
    assert 400 <= refused.status_code < 500 and refused.status_code in (400, 422)
    assert client.get("/api/v1/areas?level=province").status_code == 400
    assert post("city", "X").status_code == 201
    assert post("district", "X01", "X").status_code == 201
    assert client.get("/api/v1/areas?area=X").get_json()["numberMatched"] == 2
    assert client.get("/api/v1/areas?area=P1").status_code == 404


@pytest.mark.parametrize("latitude", [-45.0, 0.0, 69.5])
def test_the_prefilter_box_is_wide_enough_far_from_the_equator(engine, latitude):
    """Where a degree of longitude is short, the box grows wider in degrees."""
    rng = np.random.default_rng(11)
    area = shapely.box(25.0, latitude, 25.01, latitude + 0.005)
    starts = np.column_stack(
        [rng.uniform(24.97, 25.04, 600), rng.uniform(latitude - 0.01, latitude + 0.015, 600)]
    )
    roads = shapely.linestrings(np.stack([starts, starts + rng.normal(0, 0.0005, (600, 2))], 1))
    with Session(engine) as session:
        session.execute(
            text(
                "INSERT INTO areas (code, name, level, geom) VALUES "
                "('A', 'a', 'community', ST_Multi(ST_GeomFromText(:wkt, 4326)))"
            ),
            {"wkt": area.wkt},
        )
        session.execute(
            text("INSERT INTO roads (class, geom) VALUES ('path', ST_GeomFromText(:wkt, 4326))"),
            [{"wkt": r.wkt} for r in roads],
        )
        geom = select(Area.geom).where(Area.code == "A").scalar_subquery()
        fast = set(
            session.scalars(select(Road.id).where(within_metres(Road.geom, geom, 500, area.bounds)))
        )
        exact = set(
            session.scalars(
                select(Road.id).where(
                    func.ST_DWithin(func.Geography(Road.geom), func.Geography(geom), 500)
                )
            )
        )
        assert fast == exact and 0 < len(exact) < len(roads)


def test_a_summary_without_footprints_is_the_same_summary(engine, city):
    from gridmap.coverage import analyse

    with Session(engine) as session:
        full = analyse(session, "C", "service_post", method="network")
        lean = analyse(session, "C", "service_post", method="network", shapes=False)
    assert lean.summary() == full.summary()
    assert lean.by(lean.data.buildings.grid) == full.by(full.data.buildings.grid)
    assert len(full.data.buildings.shapes_m) == len(full.data.buildings.ids)
    assert full.gaps()
    with pytest.raises(ValueError):
        _ = lean.data.buildings.shapes_m
