"""The layout validator on layouts drawn by hand in metres (check them on paper)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from gridmap.settings import LayoutRules
from gridmap.topology.checks import Buildings, GridShape, validate_layout
from tests.helpers import bearer, cli_env, run_cli

COMMUNITY = box(0, 0, 200, 100)  # 20,000 m², two general grids of 100 x 100
RULES = LayoutRules()


def grid(id_, code, geom, kind="general", parent=None, worker=None):
    return GridShape(id_, code, kind, geom, parent, worker if worker is not None else id_)


def buildings(*rows):
    """Rows of (code, x, y, households[, footprint])."""
    return Buildings(
        [r[0] for r in rows],
        np.array([Point(r[1], r[2]) for r in rows], dtype=object),
        np.array([r[4] if len(r) > 4 else None for r in rows], dtype=object),
        np.array([r[3] for r in rows], dtype=np.int64),
    )


TWO_GOOD = buildings(("b1", 50, 50, 400), ("b2", 150, 50, 350))


def kinds(findings):
    return sorted((f.kind, tuple(f.grids)) for f in findings)


def test_a_clean_layout_reports_nothing():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(100, 0, 200, 100))]
    assert validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES) == []


def test_overlap_is_found_with_its_area_and_place():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(90, 0, 200, 100))]
    (finding,) = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert (finding.kind, finding.grids, finding.severity) == ("overlap", ["A", "B"], "error")
    assert finding.area_m2 == pytest.approx(1000)
    assert finding.geometry.equals(box(90, 0, 100, 100))


def test_overlap_below_the_tolerance_is_noise():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(99.995, 0, 200, 100))]
    assert validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES) == []


def test_gap_is_found_beside_the_grids_around_it():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(110, 0, 200, 100))]
    (finding,) = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert finding.kind == "gap" and sorted(finding.grids) == ["A", "B"]
    assert finding.area_m2 == pytest.approx(1000)
    assert finding.geometry.equals(box(100, 0, 110, 100))


def test_part_outside_the_community():
    grids = [grid(1, "A", box(-10, 0, 100, 100)), grid(2, "B", box(100, 0, 200, 100))]
    (finding,) = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert (finding.kind, finding.grids) == ("outside_parent", ["A"])
    assert finding.area_m2 == pytest.approx(1000)


def test_grid_in_two_pieces():
    a = shapely.union_all([box(0, 0, 100, 40), box(0, 60, 100, 100)])
    b = shapely.union_all([box(100, 0, 200, 100), box(0, 40, 100, 60)])
    grids = [grid(1, "A", a), grid(2, "B", b)]
    found = validate_layout(
        COMMUNITY, "C", grids, buildings(("b1", 50, 20, 400), ("b2", 150, 50, 350)), RULES
    )
    assert kinds(found) == [("not_contiguous", ("A",))]


def test_invalid_geometry_is_reported_not_crashed_on():
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100), (0, 0)])
    grids = [grid(1, "A", bowtie), grid(2, "B", box(100, 0, 200, 100))]
    found = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert ("invalid_geometry", ("A",)) in kinds(found)
    invalid = next(f for f in found if f.kind == "invalid_geometry")
    assert "Self-intersection" in invalid.detail


def test_buildings_in_no_grid_in_two_or_split():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(110, 0, 200, 100))]
    rows = buildings(
        ("in-gap", 105, 50, 10),
        ("on-line", 100, 20, 10),  # on A's edge, in the gap's edge too: only A holds it
        ("split", 97, 80, 10, box(90, 75, 106, 85)),  # 16 m wide, 6 m of it outside A
        ("b1", 50, 50, 400),
        ("b2", 150, 50, 350),
    )
    found = validate_layout(COMMUNITY, "C", grids, rows, RULES)
    unassigned = next(f for f in found if f.kind == "building_unassigned")
    assert unassigned.buildings == ["in-gap"]
    split = next(f for f in found if f.kind == "building_split")
    assert split.buildings == ["split"] and split.grids == ["A"]
    assert "38%" in split.detail  # 6 of 16 metres
    assert not any(f.kind == "building_in_several" for f in found)


def test_building_on_a_shared_edge_is_in_two_grids():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(100, 0, 200, 100))]
    rows = buildings(("edge", 100, 50, 10), ("b1", 50, 50, 400), ("b2", 150, 50, 350))
    (finding,) = validate_layout(COMMUNITY, "C", grids, rows, RULES)
    assert (finding.kind, finding.grids, finding.buildings) == (
        "building_in_several",
        ["A", "B"],
        ["edge"],
    )


def test_household_ranges_and_community_overrides():
    grids = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(100, 0, 200, 100))]
    rows = buildings(("b1", 50, 50, 600), ("b2", 150, 50, 250))
    found = validate_layout(COMMUNITY, "C", grids, rows, RULES)
    assert kinds(found) == [
        ("households_out_of_range", ("A",)),
        ("households_out_of_range", ("B",)),
    ]
    assert all(f.severity == "warning" for f in found)
    loose = RULES.with_ranges({"general": [200, 700]})
    assert validate_layout(COMMUNITY, "C", grids, rows, loose) == []


def test_workers_one_per_general_grid():
    grids = [
        grid(1, "A", box(0, 0, 100, 100), worker=7),
        grid(2, "B", box(100, 0, 200, 100), worker=7),
    ]
    (finding,) = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert (finding.kind, finding.grids) == ("worker_overloaded", ["A", "B"])
    grids[1].worker_id = None
    (finding,) = validate_layout(COMMUNITY, "C", grids, TWO_GOOD, RULES)
    assert (finding.kind, finding.grids) == ("no_worker", ["B"])


def test_dedicated_grids_tile_with_general_ones():
    grids = [
        grid(1, "A", box(0, 0, 100, 100)),
        grid(2, "S", box(100, 0, 200, 100), kind="dedicated"),
    ]
    rows = buildings(("b1", 50, 50, 400), ("school", 150, 50, 0))
    assert validate_layout(COMMUNITY, "C", grids, rows, RULES) == []


def test_micro_grids_tile_their_general_grid():
    general = [grid(1, "A", box(0, 0, 100, 100)), grid(2, "B", box(100, 0, 200, 100))]
    micro = [
        grid(3, "A1", box(0, 0, 50, 100), "micro", parent=1),
        grid(4, "A2", box(50, 0, 90, 100), "micro", parent=1),
    ]
    rows = buildings(
        ("b1", 25, 50, 60), ("b2", 70, 50, 80), ("b3", 95, 50, 260), ("b4", 150, 50, 350)
    )
    found = validate_layout(COMMUNITY, "C", general + micro, rows, RULES)
    assert kinds(found) == [("gap", ("A2",))]
    gap = found[0]
    assert gap.area_m2 == pytest.approx(1000) and "of A is in no grid" in gap.detail
    micro[1].geom = box(50, 0, 100, 100)
    micro.append(grid(5, "A3", box(0, 90, 50, 100), "micro", parent=1))
    found = validate_layout(COMMUNITY, "C", general + micro, rows, RULES)
    assert ("overlap", ("A1", "A3")) in kinds(found)


def test_a_long_thin_sliver_is_noise_but_a_narrow_gap_is_not():
    # A 7 mm sliver along a 410 m edge is 2.9 m², over the 1 m² tolerance, yet no
    # overlap, gap or part outside a planner could see: it is thinner than 5 cm.
    community = box(0, 0, 410, 200)
    rows = buildings(("b1", 200, 50, 400), ("b2", 200, 150, 400))
    grids = [grid(1, "A", box(0, -0.007, 410, 100.007)), grid(2, "B", box(0, 100, 410, 200))]
    assert validate_layout(community, "C", grids, rows, RULES) == []
    # 10 cm along the same edge is a gap of 41 m².
    grids = [grid(1, "A", box(0, 0, 410, 99.9)), grid(2, "B", box(0, 100, 410, 200))]
    (gap,) = validate_layout(community, "C", grids, rows, RULES)
    assert (gap.kind, gap.grids, gap.area_m2) == ("gap", ["A", "B"], pytest.approx(41.0))


def test_buildings_with_no_grids_at_all_are_in_no_grid():
    # A community with buildings and no grids was "0 errors".
    (finding,) = validate_layout(COMMUNITY, "C", [], TWO_GOOD, RULES)
    assert (finding.kind, finding.severity) == ("building_unassigned", "error")
    assert finding.detail == "2 building(s) in no grid"
    master = [grid(1, "M", COMMUNITY, kind="master")]
    assert kinds(validate_layout(COMMUNITY, "C", master, TWO_GOOD, RULES)) == [
        ("building_unassigned", ())
    ]


def test_a_straight_lonlat_edge_stays_straight_in_metres():
    # At 60° N a straight 1 km edge in lon/lat bows by about 3.6 cm in UTM; divided
    # every 20 m before the change of frame it stays on its lon/lat line.
    from gridmap.geometry import MetricFrame
    from gridmap.topology.precision import metric

    lon, lat = 24.94, 60.17
    edge = shapely.LineString([(lon, lat), (lon + 0.0128, lat + 0.0064)])
    frame = MetricFrame(edge)
    middle = frame.to_metric(edge.interpolate(0.5, normalized=True))
    assert frame.to_metric(edge).distance(middle) > 0.02
    assert metric(frame, edge, None).distance(middle) < 1e-4


def test_demo_town_validates_without_errors(demo_client):
    body = demo_client.get("/api/v1/validate?area=510107015").get_json()
    assert body["valid"] is True and body["errors"] == 0
    # The old coarse grids are the reason to redraw: all far above 500 households
    # or, for the suburban corner, under 300.
    assert {f["kind"] for f in body["findings"]} == {"households_out_of_range"}


def test_api_and_cli_report_a_broken_layout(demo_client, demo_db_url, demo_tokens, demo_engine):
    from sqlalchemy import text

    strip = "ST_MakeEnvelope(104.0365, 30.62, 104.04, 30.64, 4326)"
    with demo_engine.begin() as conn:
        # Cut a strip off the east side of an old grid: a gap opens in the community.
        cut = conn.execute(
            text(
                f"SELECT ST_Area(ST_Intersection(geom, {strip})::geography) FROM grids "
                "WHERE code = '510107015001001'"
            )
        ).scalar()
        conn.execute(
            text(
                f"UPDATE grids SET geom = ST_Multi(ST_Difference(geom, {strip})) "
                "WHERE code = '510107015001001'"
            )
        )
    body = demo_client.get("/api/v1/validate?area=510107015001").get_json()
    gaps = [f for f in body["findings"] if f["kind"] == "gap"]
    assert body["valid"] is False and len(gaps) == 1
    # Between the cut grid and its neighbour across the strip.
    assert sorted(gaps[0]["grids"]) == ["510107015001001", "510107015001002"]
    assert gaps[0]["geometry"]["type"] == "Polygon"
    assert gaps[0]["area_m2"] == pytest.approx(cut, rel=2e-3)
    result = run_cli("validate", "510107015001", env=cli_env(demo_db_url), check=False)
    assert result.returncode == 1
    assert "gap" in result.stdout and f"{body['errors']} error(s)" in result.stdout
    assert (
        demo_client.get(
            "/api/v1/validate?area=nope", headers=bearer(demo_tokens["viewer"])
        ).status_code
        == 404
    )


def test_a_community_with_buildings_and_no_grids_is_invalid(demo_client, demo_engine):
    from sqlalchemy import text

    area = "510107015001"
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE grids SET active = false WHERE community_id = "
                "(SELECT id FROM areas WHERE code = :a)"
            ),
            {"a": area},
        )
        count = conn.execute(
            text(
                "SELECT count(*) FROM buildings b JOIN areas a ON ST_Intersects(a.geom, b.point) "
                "WHERE a.code = :a"
            ),
            {"a": area},
        ).scalar()
    body = demo_client.get(f"/api/v1/validate?area={area}").get_json()
    assert body["valid"] is False and body["errors"] == 1
    (finding,) = [f for f in body["findings"] if f["severity"] == "error"]
    assert count > 0 and finding["detail"] == f"{count} building(s) in no grid"
