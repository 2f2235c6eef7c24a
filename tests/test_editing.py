"""Grid edits through the API: reshape, neighbours, snapping, split, merge, recode, workers.

The community is 0.004° x 0.002° near Chengdu, cut into vertical strips; the
numbers can be checked on paper in degrees (every edge is a meridian or a parallel).
"""

from __future__ import annotations

import threading

import pytest
import shapely
from shapely.geometry import shape

from tests.helpers import bearer
from tests.test_api_write import snapshot

COMMUNITY = "510107015001"
X0, Y0, Y1 = 104.0, 30.0, 30.002


def strip(x0: float, x1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, Y0], [x1, Y0], [x1, Y1], [x0, Y1], [x0, Y0]]]}


@pytest.fixture
def planner(tokens):
    return bearer(tokens["planner"])


@pytest.fixture
def layout(client, planner, tokens):
    """Grids A | B | C at x 0-1, 1-2, 2-4 thousandths of a degree; workers W1-W3;
    buildings with households at known points."""

    def post(layer, geometry, **properties):
        response = client.post(
            f"/api/v1/{layer}",
            headers=planner,
            json={"type": "Feature", "geometry": geometry, "properties": properties},
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    post("areas", strip(X0, X0 + 0.004), code=COMMUNITY, name="社区", level="community")
    for n in (1, 2, 3):
        post("workers", None, code=f"W{n}", name=f"网格员{n}")
    ids = {}
    for code, (a, b), worker in (("A", (0, 1), "W1"), ("B", (1, 2), "W2"), ("C", (2, 4), "W3")):
        ids[code] = post(
            "grids",
            strip(X0 + a / 1000, X0 + b / 1000),
            code=f"{COMMUNITY}00{'ABC'.index(code) + 1}",
            name=code,
            kind="general",
            community=COMMUNITY,
            worker=worker,
        )["id"]
    points = {
        "a1": (0.0003, 100),
        "a2": (0.0007, 50),
        "b1": (0.0012, 40),
        "b2": (0.0018, 300),
        "c1": (0.0025, 200),
        "c2": (0.0035, 150),
    }
    for code, (dx, households) in points.items():
        post(
            "buildings",
            {"type": "Point", "coordinates": [X0 + dx, 30.001]},
            code=code,
            use="residential",
            households=households,
        )
    return ids


def grid(client, id_):
    return client.get(f"/api/v1/grids/{id_}").get_json()


def x_range(feature):
    minx, _, maxx, _ = shape(feature["geometry"]).bounds
    return round((minx - X0) * 1000, 6), round((maxx - X0) * 1000, 6)


def patch(client, planner, id_, geometry, adjust=False, version=1):
    query = "?adjust_neighbours=true" if adjust else ""
    return client.patch(
        f"/api/v1/grids/{id_}{query}",
        headers={**planner, "If-Match": f'"{version}"'},
        json={"geometry": geometry},
    )


def test_reshape_that_overlaps_a_neighbour_is_refused(client, planner, layout, engine):
    before = snapshot(engine)
    response = patch(client, planner, layout["A"], strip(X0, X0 + 0.0012))
    assert response.status_code == 409
    errors = response.get_json()["errors"]
    # b1 at 1.2 now lies in both grids too.
    assert sorted(e["kind"] for e in errors) == ["building_in_several", "overlap"]
    finding = next(e for e in errors if e["kind"] == "overlap")
    assert sorted(finding["grids"]) == [f"{COMMUNITY}001", f"{COMMUNITY}002"]
    assert shape(finding["geometry"]).bounds == pytest.approx((X0 + 0.001, Y0, X0 + 0.0012, Y1))
    assert snapshot(engine) == before


def test_reshape_that_opens_a_gap_is_refused(client, planner, layout, engine):
    before = snapshot(engine)
    response = patch(client, planner, layout["A"], strip(X0, X0 + 0.0008))
    assert response.status_code == 409
    (finding,) = response.get_json()["errors"]
    assert finding["kind"] == "gap" and finding["grids"] == [f"{COMMUNITY}001", f"{COMMUNITY}002"]
    assert snapshot(engine) == before


def test_growing_with_neighbour_adjustment(client, planner, layout):
    response = patch(client, planner, layout["A"], strip(X0, X0 + 0.0015), adjust=True)
    assert response.status_code == 200
    a, b = grid(client, layout["A"]), grid(client, layout["B"])
    assert x_range(a) == (0, 1.5) and x_range(b) == (1.5, 2)
    assert (a["properties"]["version"], b["properties"]["version"]) == (2, 2)
    # b1 (households 40, at 1.2) moved from B to A.
    assert a["properties"]["households"] == 100 + 50 + 40
    assert b["properties"]["households"] == 300
    history = client.get(f"/api/v1/grids/{layout['B']}/history").get_json()
    assert history[-1]["action"] == "update"
    assert "adjusted by a change of" in history[-1]["reason"]
    assert client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()["errors"] == 0


def test_shrinking_gives_the_area_to_the_longest_shared_boundary(client, planner, layout):
    # B gives up its eastern half: the piece touches C along its whole height and A not
    # at all, so C takes it.
    response = patch(client, planner, layout["B"], strip(X0 + 0.001, X0 + 0.0015), adjust=True)
    assert response.status_code == 200
    assert x_range(grid(client, layout["C"])) == (1.5, 4)
    assert x_range(grid(client, layout["A"])) == (0, 1)
    assert grid(client, layout["A"])["properties"]["version"] == 1
    assert grid(client, layout["C"])["properties"]["households"] == 300 + 200 + 150


def test_vertices_near_a_neighbour_snap_onto_it(client, planner, layout):
    near = X0 + 0.0015 + 0.2 / 111_320  # 0.2 m east of the wanted boundary
    wanted = {
        "type": "Polygon",
        "coordinates": [[[X0, Y0], [near, Y0], [near, Y1], [X0, Y1], [X0, Y0]]],
    }
    # First move B's west edge to 1.5 with adjustment, then put A's east edge 0.2 m off it.
    assert (
        patch(client, planner, layout["B"], strip(X0 + 0.0015, X0 + 0.002), adjust=True).status_code
        == 200
    )
    version = grid(client, layout["A"])["properties"]["version"]
    response = patch(client, planner, layout["A"], wanted, version=version)
    assert response.status_code == 200
    assert x_range(response.get_json()) == (0, 1.5)  # exactly on B's edge, no sliver
    report = client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()
    assert report["errors"] == 0


def test_split_moves_buildings_and_keeps_the_busier_piece_coded(client, planner, layout, engine):
    url = f"/api/v1/grids/{layout['C']}/split"
    line = {
        "type": "LineString",
        "coordinates": [[X0 + 0.003, Y0 - 0.001], [X0 + 0.003, Y1 + 0.001]],
    }
    assert client.post(url, headers=planner, json={"line": line}).status_code == 428
    wrong = {
        "type": "LineString",
        "coordinates": [[X0 + 0.0025, Y0 + 0.0005], [X0 + 0.0026, Y0 + 0.0006]],
    }
    refused = client.post(url, headers={**planner, "If-Match": '"1"'}, json={"line": wrong})
    assert refused.status_code == 422 and "not 2" in refused.get_json()["detail"]
    done = client.post(
        url + "?reason=too%20big",
        headers={**planner, "If-Match": '"1"'},
        json={"line": line, "names": ["西", "东"]},
    )
    assert done.status_code == 201
    pieces = [grid(client, i) for i in done.get_json()["ids"]]
    by_name = {p["properties"]["name"]: p["properties"] for p in pieces}
    assert by_name["西"]["households"] == 200 and by_name["东"]["households"] == 150
    assert by_name["西"]["code"] == f"{COMMUNITY}003" and by_name["西"]["worker"] == "W3"
    assert by_name["东"]["code"] == f"{COMMUNITY}004" and by_name["东"]["worker"] is None
    assert grid(client, layout["C"])["properties"]["active"] is False
    report = client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()
    assert report["errors"] == 0
    assert {(f["kind"], tuple(f["grids"])) for f in report["findings"]} >= {
        ("no_worker", (f"{COMMUNITY}004",))
    }


def test_merge_takes_the_union_the_lowest_code_and_the_busiest_worker(client, planner, layout):
    body = {
        "grids": [{"id": layout["A"], "version": 1}, {"id": layout["B"], "version": 1}],
        "name": "甲",
    }
    stale = client.post(
        "/api/v1/grids/merge",
        headers=planner,
        json={"grids": [{"id": layout["A"], "version": 1}, {"id": layout["B"], "version": 3}]},
    )
    assert stale.status_code == 412
    done = client.post("/api/v1/grids/merge", headers=planner, json=body)
    assert done.status_code == 201
    (new_id,) = done.get_json()["ids"]
    merged = grid(client, new_id)
    assert x_range(merged) == (0, 2)
    assert merged["properties"]["code"] == f"{COMMUNITY}001"
    assert merged["properties"]["worker"] == "W2"  # B holds 340 households, A 150
    assert merged["properties"]["households"] == 490
    assert shape(merged["geometry"]).equals(shapely.box(X0, Y0, X0 + 0.002, Y1))
    apart = client.post(
        "/api/v1/grids/merge",
        headers=planner,
        json={"grids": [{"id": new_id, "version": 1}, {"id": layout["C"], "version": 1}]},
    )
    assert apart.status_code == 201  # they touch: fine
    assert client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()["errors"] == 0


def test_merging_grids_that_do_not_touch_is_refused(client, planner, layout, engine):
    before = snapshot(engine)
    response = client.post(
        "/api/v1/grids/merge",
        headers=planner,
        json={"grids": [{"id": layout["A"], "version": 1}, {"id": layout["C"], "version": 1}]},
    )
    assert response.status_code == 422
    assert "share a boundary" in response.get_json()["detail"]
    assert snapshot(engine) == before


def test_concurrent_edits_of_two_neighbours_never_overlap(db_url, planner, layout):
    from api import create_app

    results = {}
    barrier = threading.Barrier(2)

    def edit(name, geometry):
        client = create_app({"DATABASE_URL": db_url}).test_client()
        barrier.wait()
        results[name] = patch(client, planner, layout[name], geometry, adjust=True).status_code

    threads = [
        threading.Thread(target=edit, args=("A", strip(X0, X0 + 0.0016))),
        threading.Thread(target=edit, args=("B", strip(X0 + 0.0004, X0 + 0.002))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # One wins; the other finds its grid changed under it (412) or wins after it (200).
    assert sorted(results.values()) in ([200, 200], [200, 412])
    client = create_app({"DATABASE_URL": db_url}).test_client()
    report = client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()
    assert report["errors"] == 0


def test_recode_numbers_north_to_south_then_west_to_east(client, planner, layout):
    # Give the grids codes in the wrong order, then recode.
    for name, code in (("A", "903"), ("B", "901"), ("C", "902")):
        response = client.patch(
            f"/api/v1/grids/{layout[name]}",
            headers={**planner, "If-Match": '"1"'},
            json={"properties": {"code": COMMUNITY + code}},
        )
        assert response.status_code == 200
    done = client.post(f"/api/v1/grids/recode?area={COMMUNITY}", headers=planner)
    assert done.status_code == 200
    assert done.get_json()["changed"] == {
        COMMUNITY + "903": COMMUNITY + "001",
        COMMUNITY + "901": COMMUNITY + "002",
        COMMUNITY + "902": COMMUNITY + "003",
    }
    assert grid(client, layout["B"])["properties"]["code"] == COMMUNITY + "002"
    again = client.post(f"/api/v1/grids/recode?area={COMMUNITY}", headers=planner)
    assert again.get_json()["changed"] == {}


def test_workers_assign_and_workload(client, planner, tokens, layout):
    url = f"/api/v1/grids/workload?area={COMMUNITY}"
    assert client.get(url, headers=bearer(tokens["viewer"])).status_code == 403
    staff = bearer(tokens["staff"])
    load = client.get(url, headers=staff).get_json()
    assert [(w["worker"], w["grids"], w["households"]) for w in load["workers"]] == [
        ("W1", [f"{COMMUNITY}001"], 150),
        ("W2", [f"{COMMUNITY}002"], 340),
        ("W3", [f"{COMMUNITY}003"], 350),
    ]
    assert load["grids_without_worker"] == []
    # Unassign W3 and give C to W1: W1 now serves two grids.
    response = client.patch(
        f"/api/v1/grids/{layout['C']}",
        headers={**planner, "If-Match": '"1"'},
        json={"properties": {"worker": "W1"}},
    )
    assert response.status_code == 200
    load = client.get(url, headers=staff).get_json()
    w1 = next(w for w in load["workers"] if w["worker"] == "W1")
    assert w1["households"] == 500 and len(w1["grids"]) == 2
    findings = client.get(f"/api/v1/validate?area={COMMUNITY}").get_json()["findings"]
    assert any(f["kind"] == "worker_overloaded" for f in findings)
    client.patch(
        f"/api/v1/grids/{layout['C']}",
        headers={**planner, "If-Match": '"2"'},
        json={"properties": {"worker": None}},
    )
    load = client.get(url, headers=staff).get_json()
    assert load["grids_without_worker"] == [{"code": f"{COMMUNITY}003", "households": 350}]


def test_cli_edits_and_recode(db_url, layout, tmp_path):
    import json

    from tests.helpers import cli_env, run_cli

    env = cli_env(db_url)
    overlap = tmp_path / "a.geojson"
    overlap.write_text(json.dumps(strip(X0, X0 + 0.0015)))
    refused = run_cli("grid", "reshape", str(layout["A"]), str(overlap), env=env, check=False)
    assert refused.returncode == 1
    assert "overlap" in refused.stderr and "nothing was changed" in refused.stderr
    done = run_cli(
        "grid",
        "reshape",
        str(layout["A"]),
        str(overlap),
        "--adjust-neighbours",
        "--reason",
        "school catchment",
        env=env,
    )
    assert "is at version 2" in done.stdout
    merged = run_cli("grid", "merge", str(layout["B"]), str(layout["C"]), "--name", "东", env=env)
    assert merged.stdout.startswith("new grid: ")
    line = tmp_path / "line.geojson"
    line.write_text(
        json.dumps(
            {
                "type": "LineString",
                "coordinates": [[X0 + 0.003, Y0 - 0.001], [X0 + 0.003, Y1 + 0.001]],
            }
        )
    )
    new_id = merged.stdout.split(": ")[1].strip()
    assert "new grids: " in run_cli("grid", "split", new_id, str(line), env=env).stdout
    recoded = run_cli("recode", COMMUNITY, env=env)
    assert "grid code(s) changed" in recoded.stdout
    assert run_cli("validate", COMMUNITY, env=env).returncode == 0


def test_revert_that_would_open_a_gap_is_refused(client, planner, layout, engine):
    # B grows east into C (2-2.3 changes hands); putting B back to 1-2 alone would leave
    # 2-2.3 in no grid, so the revert is refused and nothing changes.
    grown = patch(client, planner, layout["B"], strip(X0 + 0.001, X0 + 0.0023), adjust=True)
    assert grown.status_code == 200, grown.get_json()
    first = client.get(f"/api/v1/grids/{layout['B']}/history").get_json()[0]["id"]
    before = snapshot(engine)
    response = client.post(
        f"/api/v1/grids/{layout['B']}/revert?revision={first}",
        headers={**planner, "If-Match": '"2"'},
    )
    assert response.status_code == 409
    assert {e["kind"] for e in response.get_json()["errors"]} == {"gap"}
    assert snapshot(engine) == before


def test_one_more_building_in_no_grid_is_a_new_error():
    from gridmap.grids import new_errors
    from gridmap.settings import LayoutRules
    from gridmap.topology.checks import Finding

    def unassigned(*codes):
        return Finding(
            "building_unassigned",
            [],
            f"{len(codes)} building(s) in no grid",
            None,
            buildings=list(codes),
        )

    rules = LayoutRules()
    assert new_errors([unassigned("b1", "b2")], [unassigned("b1")], rules) == []
    (fresh,) = new_errors([unassigned("b1")], [unassigned("b1", "b2")], rules)
    assert fresh.buildings == ["b1", "b2"]


def test_generated_names_follow_codes_through_split_merge_recode_and_code_changes(
    client, planner, layout
):
    """社区第N网格 is a generated name: its N follows the code; "A" is a planner's own."""

    def name_and_code(id_):
        p = grid(client, id_)["properties"]
        return p["name"], p["code"]

    def version(id_):
        return client.get(f"/api/v1/grids/{id_}").headers["ETag"]

    # B carries its generated name; C's has drifted from its code (as names did).
    for key, name in (("B", "社区第2网格"), ("C", "社区第9网格")):
        response = client.patch(
            f"/api/v1/grids/{layout[key]}",
            headers={**planner, "If-Match": '"1"'},
            json={"properties": {"name": name}},
        )
        assert response.status_code == 200
    line = {"type": "LineString", "coordinates": [[X0 + 0.003, Y0 - 1e-3], [X0 + 0.003, Y1 + 1e-3]]}
    split = client.post(
        f"/api/v1/grids/{layout['C']}/split",
        headers={**planner, "If-Match": version(layout["C"])},
        json={"line": line},
    )
    assert split.status_code == 201, split.get_json()
    west, east = split.get_json()["ids"]
    assert name_and_code(west) == ("社区第3网格", f"{COMMUNITY}003")  # mended
    assert name_and_code(east) == ("社区第4网格", f"{COMMUNITY}004")

    merged = client.post(
        "/api/v1/grids/merge",
        headers=planner,
        json={"grids": [{"id": layout["B"], "version": 2}, {"id": west, "version": 1}]},
    )
    assert merged.status_code == 201, merged.get_json()
    (bw,) = merged.get_json()["ids"]
    assert name_and_code(bw) == ("社区第2网格", f"{COMMUNITY}002")
    kept = client.post(
        "/api/v1/grids/merge",
        headers=planner,
        json={"grids": [{"id": layout["A"], "version": 1}, {"id": bw, "version": 1}]},
    )
    (abw,) = kept.get_json()["ids"]
    assert name_and_code(abw) == ("A", f"{COMMUNITY}001")  # a planner's own name stays

    # A code set by hand takes a generated name with it, not a planner's own.
    moved = client.patch(
        f"/api/v1/grids/{east}",
        headers={**planner, "If-Match": version(east)},
        json={"properties": {"code": f"{COMMUNITY}009"}},
    )
    assert moved.status_code == 200
    assert name_and_code(east) == ("社区第9网格", f"{COMMUNITY}009")

    recoded = client.post(f"/api/v1/grids/recode?area={COMMUNITY}", headers=planner)
    assert recoded.get_json()["changed"] == {f"{COMMUNITY}009": f"{COMMUNITY}002"}
    assert name_and_code(east) == ("社区第2网格", f"{COMMUNITY}002")
    assert name_and_code(abw) == ("A", f"{COMMUNITY}001")


def test_recode_mends_generated_names_that_drifted(client, planner, layout, engine):
    from sqlalchemy import text

    with engine.begin() as conn:  # as a split once left them: 社区第3网格甲 coded ...001
        conn.execute(
            text("UPDATE grids SET name = '社区第3网格甲' WHERE id = :i"), {"i": layout["A"]}
        )
        conn.execute(
            text("UPDATE grids SET name = '社区一般网格G07' WHERE id = :i"), {"i": layout["B"]}
        )
    done = client.post(f"/api/v1/grids/recode?area={COMMUNITY}", headers=planner)
    assert done.status_code == 200 and done.get_json()["changed"] == {}
    assert grid(client, layout["A"])["properties"]["name"] == "社区第1网格"
    assert grid(client, layout["B"])["properties"]["name"] == "社区第2网格"
    assert grid(client, layout["C"])["properties"]["name"] == "C"
