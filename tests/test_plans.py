"""Redraw plans on the demo town through the API and the command: drafts, diff,
apply, discard, roles and stale plans; every figure checked against PostGIS."""

from __future__ import annotations

import pytest
from shapely import union_all
from shapely.geometry import mapping, shape
from sqlalchemy import text

from tests.helpers import bearer, cli_env, run_cli

COMMUNITIES = [f"510107015{n:03d}" for n in range(1, 7)]
TOP = "('general', 'dedicated')"


def draw(client, token: str, area: str, **rules) -> dict:
    response = client.post("/api/v1/plans", headers=bearer(token), json={"area": area, **rules})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def live_grids(engine, area: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT g.id, g.code, g.kind, g.version FROM grids g JOIN areas a "
                "ON a.id = g.community_id WHERE a.code = :area AND g.active ORDER BY g.id"
            ),
            {"area": area},
        ).all()


def households_by_key(engine, pid: int) -> dict[str, int]:
    """Households of the buildings whose point each planned grid holds, counted in SQL."""
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT g.key, coalesce(sum(b.households), 0) FROM plan_grids g "
                    "LEFT JOIN buildings b ON ST_Intersects(g.geom, b.point) "
                    "WHERE g.plan_id = :pid GROUP BY g.key"
                ),
                {"pid": pid},
            ).all()
        )


def tiling_error_m2(engine, pid: int) -> float:
    """Area (m²) where the plan's general and dedicated grids and its community differ."""
    return scalar(
        engine,
        "SELECT ST_Area(ST_SymDifference(a.geom, (SELECT ST_Union(g.geom) FROM plan_grids g "
        f"WHERE g.plan_id = p.id AND g.kind IN {TOP}))::geography) "
        "FROM plans p JOIN areas a ON a.id = p.community_id WHERE p.id = :pid",
        pid=pid,
    )


def plan_geometries(engine, pid: int) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT key, ST_AsText(geom) FROM plan_grids WHERE plan_id = :p ORDER BY key"),
            {"p": pid},
        ).all()


@pytest.mark.parametrize("area", COMMUNITIES)
def test_every_demo_community_gets_a_clean_plan_that_tiles_it(
    demo_client, demo_tokens, demo_engine, area
):
    plan = draw(demo_client, demo_tokens["planner"], area)
    metrics = plan["metrics"]
    assert metrics["validation"]["valid"], metrics["validation"]
    assert metrics["general_households"]["in_range"] >= 0.9
    assert metrics["contiguous_share"] == 1.0
    pid = plan["id"]
    # The general and dedicated grids cover the community with no gap or overlap.
    gap = tiling_error_m2(demo_engine, pid)
    assert gap < 1.0
    overlap = scalar(
        demo_engine,
        "SELECT coalesce(sum(ST_Area(ST_Intersection(x.geom, y.geom)::geography)), 0) "
        f"FROM plan_grids x JOIN plan_grids y ON x.plan_id = y.plan_id AND x.id < y.id "
        f"AND ST_Intersects(x.geom, y.geom) WHERE x.plan_id = :pid AND x.kind IN {TOP} "
        f"AND y.kind IN {TOP}",
        pid=pid,
    )
    assert overlap < 1.0
    # No footprint is split between grids.
    split = scalar(
        demo_engine,
        "SELECT count(*) FROM (SELECT b.id FROM buildings b JOIN plan_grids g "
        "ON ST_Intersects(g.geom, b.footprint) WHERE g.plan_id = :pid "
        f"AND g.kind IN {TOP} AND ST_Area(ST_Intersection(g.geom, b.footprint)::geography) > 0.05 "
        "GROUP BY b.id HAVING count(*) > 1) s",
        pid=pid,
    )
    assert split == 0
    # Each planned grid's households are those of the buildings whose point it holds.
    grids = demo_client.get(f"/api/v1/plans/{pid}").get_json()["features"]
    counted = households_by_key(demo_engine, pid)
    assert {f["properties"]["key"]: f["properties"]["households"] for f in grids} == counted
    total = scalar(
        demo_engine,
        "SELECT sum(b.households) FROM buildings b JOIN areas a "
        "ON ST_Intersects(a.geom, b.point) WHERE a.code = :area",
        area=area,
    )
    assert metrics["households"] == total


def test_plan_diff_accounts_for_every_household(demo_client, demo_tokens):
    plan = draw(demo_client, demo_tokens["planner"], COMMUNITIES[0])
    staff = demo_client.get(
        f"/api/v1/plans/{plan['id']}/diff", headers=bearer(demo_tokens["staff"])
    )
    assert staff.status_code == 200
    answer = staff.get_json()
    features = demo_client.get(f"/api/v1/plans/{plan['id']}").get_json()["features"]
    planned = {
        f["properties"]["key"]: f["properties"]["households"]
        for f in features
        if f["properties"]["kind"] in ("general", "dedicated")
    }
    assert {g["key"]: sum(s["households"] for s in g["from"]) for g in answer["grids"]} == planned
    moved = sum(m["households"] for m in answer["moves"] if m["from"] is not None)
    assert answer["households_moved"] == moved == plan["metrics"]["households_moved"]
    for move in answer["moves"]:
        grid = next(g for g in answer["grids"] if g["key"] == move["to"])
        assert move["from"] != grid["continues"]
    # Viewers see who moves, not how many households each building has.
    viewer = demo_client.get(f"/api/v1/plans/{plan['id']}/diff").get_json()
    assert viewer["moves"] and all("households" not in m for m in viewer["moves"])


def test_applying_a_plan_replaces_the_grids_with_revisions(demo_client, demo_tokens, demo_engine):
    area = COMMUNITIES[2]
    before = live_grids(demo_engine, area)
    plan = draw(demo_client, demo_tokens["planner"], area)
    counts = plan["metrics"]["grids"]
    applied = demo_client.post(
        f"/api/v1/plans/{plan['id']}/apply", headers=bearer(demo_tokens["planner"])
    )
    assert applied.status_code == 200, applied.get_json()
    after = live_grids(demo_engine, area)
    kinds = {}
    for _, _, kind, _ in after:
        kinds[kind] = kinds.get(kind, 0) + 1
    masters = sum(1 for g in before if g[2] == "master")
    assert kinds == {**counts, **({"master": masters} if masters else {})}
    retired = {g[0] for g in before if g[2] != "master"}
    assert not retired & {g[0] for g in after}
    assert scalar(
        demo_engine,
        "SELECT count(*) FROM grid_revisions WHERE action = 'retire' AND grid_id = ANY(:ids)",
        ids=list(retired),
    ) == len(retired)
    # Codes follow the convention: community + 3 digits, micro grids 3 more.
    for _, code, kind, _ in after:
        assert code.startswith(area) and code.isdigit()
        assert len(code) == {"micro": 18}.get(kind, 15)
    validation = demo_client.get(f"/api/v1/validate?area={area}").get_json()
    assert validation["errors"] == 0, validation["findings"][:3]
    # The old workers carry on in the grids that continue theirs.
    workers = scalar(
        demo_engine,
        "SELECT count(DISTINCT g.worker_id) FROM grids g JOIN areas a ON a.id = g.community_id "
        "WHERE a.code = :area AND g.active AND g.kind = 'general'",
        area=area,
    )
    assert workers == sum(1 for g in before if g[2] == "general")
    listed = demo_client.get(f"/api/v1/plans?area={area}").get_json()
    assert [(p["id"], p["status"]) for p in listed] == [(plan["id"], "applied")]
    again = demo_client.post(
        f"/api/v1/plans/{plan['id']}/apply", headers=bearer(demo_tokens["planner"])
    )
    assert again.status_code == 409
    deleted = demo_client.delete(
        f"/api/v1/plans/{plan['id']}", headers=bearer(demo_tokens["planner"])
    )
    assert deleted.status_code == 409


def test_a_plans_household_ranges_go_with_it_when_applied(demo_client, demo_tokens, demo_engine):
    # Drawn with general grids of 100-300 households and applied, the layout then
    # warned "general grids take 300-500".
    area = COMMUNITIES[3]
    plan = draw(demo_client, demo_tokens["planner"], area, general=[100, 300])
    applied = demo_client.post(
        f"/api/v1/plans/{plan['id']}/apply", headers=bearer(demo_tokens["planner"])
    )
    assert applied.status_code == 200, applied.get_json()
    ranges = {"general": [100, 300], "micro": [30, 100]}
    assert applied.get_json()["household_ranges"] == ranges
    stored = scalar(demo_engine, "SELECT household_ranges FROM areas WHERE code = :a", a=area)
    assert stored == ranges
    findings = demo_client.get(f"/api/v1/validate?area={area}").get_json()["findings"]
    assert not [f for f in findings if "300-500" in f["detail"]]
    # What is out of range is judged by the plan's range, counted here in SQL.
    out_of_range = scalar(
        demo_engine,
        "SELECT count(*) FROM (SELECT g.id FROM grids g JOIN areas a ON a.id = g.community_id "
        "LEFT JOIN buildings b ON ST_Intersects(g.geom, b.point) WHERE a.code = :a AND "
        "g.active AND g.kind = 'general' GROUP BY g.id "
        "HAVING coalesce(sum(b.households), 0) NOT BETWEEN 100 AND 300) t",
        a=area,
    )
    flagged = [f for f in findings if f["kind"] == "households_out_of_range"]
    assert len([f for f in flagged if "general grids take 100-300" in f["detail"]]) == out_of_range


def test_a_stale_plan_is_refused_and_changes_nothing(demo_client, demo_tokens, demo_engine):
    area = COMMUNITIES[1]
    plan = draw(demo_client, demo_tokens["planner"], area)
    grid_id, _, _, version = next(g for g in live_grids(demo_engine, area) if g[2] == "general")
    renamed = demo_client.patch(
        f"/api/v1/grids/{grid_id}",
        headers={**bearer(demo_tokens["planner"]), "If-Match": f'"{version}"'},
        json={"properties": {"name": "改过的网格"}},
    )
    assert renamed.status_code == 200
    before = live_grids(demo_engine, area)
    refused = demo_client.post(
        f"/api/v1/plans/{plan['id']}/apply", headers=bearer(demo_tokens["planner"])
    )
    assert refused.status_code == 409
    assert "changed since" in refused.get_json()["detail"]
    assert live_grids(demo_engine, area) == before


def test_a_draft_is_discarded(demo_client, demo_tokens, demo_engine):
    plan = draw(demo_client, demo_tokens["planner"], COMMUNITIES[5], general=[250, 450])
    assert plan["settings"]["general"] == [250, 450]
    url = f"/api/v1/plans/{plan['id']}"
    assert demo_client.delete(url, headers=bearer(demo_tokens["planner"])).status_code == 204
    assert demo_client.get(url).status_code == 404
    assert (
        scalar(demo_engine, "SELECT count(*) FROM plan_grids WHERE plan_id = :p", p=plan["id"]) == 0
    )


@pytest.mark.parametrize(
    ("token", "body", "status"),
    [
        (None, {"area": COMMUNITIES[0]}, 401),
        ("staff", {"area": COMMUNITIES[0]}, 403),
        ("planner", {"area": "999"}, 404),
        ("planner", {"area": "510107015"}, 404),  # a street is redrawn community by community
        ("planner", {"area": COMMUNITIES[0], "general": [500, 300]}, 422),
        ("planner", {"area": COMMUNITIES[0], "micro": [30]}, 422),
        ("planner", {"area": COMMUNITIES[0], "seed": "x"}, 422),
        ("planner", {"area": COMMUNITIES[0], "dedicated_uses": {"bakery": "market"}}, 422),
        ("planner", {"area": COMMUNITIES[0], "colour": "red"}, 422),
    ],
)
def test_bad_plan_requests_are_refused_and_store_nothing(
    demo_client, demo_tokens, demo_engine, token, body, status
):
    headers = bearer(demo_tokens[token]) if token else {}
    response = demo_client.post("/api/v1/plans", headers=headers, json=body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert scalar(demo_engine, "SELECT count(*) FROM plans") == 0


def test_unknown_plans_are_404(demo_client, demo_tokens):
    planner = bearer(demo_tokens["planner"])
    assert demo_client.get("/api/v1/plans/999").status_code == 404
    assert demo_client.get("/api/v1/plans/999/diff").status_code == 404
    assert demo_client.post("/api/v1/plans/999/apply", headers=planner).status_code == 404
    assert demo_client.delete("/api/v1/plans/999", headers=planner).status_code == 404


def test_redraw_command_prints_the_measures_and_applies(demo_db_url, demo_engine, tmp_path):
    env = cli_env(demo_db_url)
    bad = run_cli("redraw", COMMUNITIES[3], "--general", "500-300", env=env, check=False)
    assert bad.returncode == 2 and "MIN-MAX" in bad.stderr
    drawn = run_cli("redraw", COMMUNITIES[3], "--general", "300-500", "--micro", "30-100", env=env)
    assert "validator: clean" in drawn.stdout
    assert "general" in drawn.stdout and "in range" in drawn.stdout
    plan_id = scalar(demo_engine, "SELECT max(id) FROM plans")
    shown = run_cli("plan", "diff", str(plan_id), env=env)
    assert "change grid" in shown.stdout
    # G01 grown into its neighbours without handing area over: refused, nothing changed.
    overlap = tmp_path / "g01.geojson"
    overlap.write_text(
        scalar(
            demo_engine,
            "SELECT ST_AsGeoJSON(ST_Intersection(ST_Buffer(g.geom, 0.0002, 'join=mitre'), "
            "a.geom)) FROM plan_grids g JOIN plans p ON p.id = g.plan_id JOIN areas a "
            "ON a.id = p.community_id WHERE g.plan_id = :p AND g.key = 'G01'",
            p=plan_id,
        )
    )
    before = plan_geometries(demo_engine, plan_id)
    refused = run_cli("plan", "reshape", str(plan_id), "G01", str(overlap), env=env, check=False)
    assert refused.returncode == 1 and "overlap" in refused.stderr
    assert plan_geometries(demo_engine, plan_id) == before
    applied = run_cli("plan", "apply", str(plan_id), env=env)
    assert f"plan {plan_id} applied" in applied.stdout
    assert scalar(demo_engine, "SELECT status FROM plans WHERE id = :p", p=plan_id) == "applied"


def grown(client, pid: int, key: str, metres: float) -> dict:
    """The draft grid ``key`` grown by about ``metres`` (taken as degrees of latitude),
    inside its community."""
    features = client.get(f"/api/v1/plans/{pid}").get_json()["features"]
    geom = shape(next(f["geometry"] for f in features if f["properties"]["key"] == key))
    community = union_all(  # the draft's general and dedicated grids tile it
        [shape(f["geometry"]) for f in features if f["properties"]["kind"] != "micro"]
    )
    return mapping(geom.buffer(metres / 111_000, join_style="mitre").intersection(community))


def test_a_draft_grid_is_reshaped_like_a_live_one(demo_client, demo_tokens, demo_engine):
    planner = bearer(demo_tokens["planner"])
    plan = draw(demo_client, demo_tokens["planner"], COMMUNITIES[1])
    pid = plan["id"]
    bigger = grown(demo_client, pid, "G01", 25)
    before = plan_geometries(demo_engine, pid)
    refused = demo_client.patch(
        f"/api/v1/plans/{pid}/grids/G01", headers=planner, json={"geometry": bigger}
    )
    assert refused.status_code == 409
    assert {e["kind"] for e in refused.get_json()["errors"]} == {"overlap"}
    assert plan_geometries(demo_engine, pid) == before

    adjusted = demo_client.patch(
        f"/api/v1/plans/{pid}/grids/G01?adjust_neighbours=true",
        headers=planner,
        json={"geometry": bigger},
    )
    assert adjusted.status_code == 200, adjusted.get_json()
    body = adjusted.get_json()
    assert body["plan"]["metrics"]["validation"]["valid"]
    assert body["plan"]["metrics"]["edited"] is True
    assert plan_geometries(demo_engine, pid) != before
    assert tiling_error_m2(demo_engine, pid) < 1.0
    # Households are recounted from the new boundaries.
    counted = households_by_key(demo_engine, pid)
    assert {
        f["properties"]["key"]: f["properties"]["households"] for f in body["features"]
    } == counted
    # The micro grids of G01 were drawn again and tile it.
    micro_gap = scalar(
        demo_engine,
        "SELECT ST_Area(ST_SymDifference(p.geom, (SELECT ST_Union(m.geom) FROM plan_grids m "
        "WHERE m.plan_id = p.plan_id AND m.parent_key = p.key))::geography) "
        "FROM plan_grids p WHERE p.plan_id = :pid AND p.key = 'G01'",
        pid=pid,
    )
    assert micro_gap < 1.0


@pytest.mark.parametrize(
    ("path", "token", "geometry", "status"),
    [
        ("G01", None, None, 401),
        ("G99", "planner", "square", 404),
        (
            "G01",
            "planner",
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [104.04, 30.63],
                        [104.05, 30.64],
                        [104.05, 30.63],
                        [104.04, 30.64],
                        [104.04, 30.63],
                    ]
                ],
            },
            422,
        ),
        ("G01", "planner", {"type": "Point", "coordinates": [104.04, 30.63]}, 422),
        ("G01", "planner", None, 422),
    ],
)
def test_bad_draft_edits_are_refused(
    demo_client, demo_tokens, demo_engine, path, token, geometry, status
):
    plan = draw(demo_client, demo_tokens["planner"], COMMUNITIES[1])
    if geometry == "square":
        geometry = grown(demo_client, plan["id"], "G01", 0)
    before = plan_geometries(demo_engine, plan["id"])
    headers = bearer(demo_tokens[token]) if token else {}
    response = demo_client.patch(
        f"/api/v1/plans/{plan['id']}/grids/{path}", headers=headers, json={"geometry": geometry}
    )
    assert response.status_code == status
    assert plan_geometries(demo_engine, plan["id"]) == before


def test_a_draft_grid_is_split_and_merged_back(demo_client, demo_tokens, demo_engine):
    planner = bearer(demo_tokens["planner"])
    plan = draw(demo_client, demo_tokens["planner"], COMMUNITIES[1])
    pid = plan["id"]
    features = demo_client.get(f"/api/v1/plans/{pid}").get_json()["features"]
    g01 = shape(next(f["geometry"] for f in features if f["properties"]["key"] == "G01"))
    minx, miny, maxx, maxy = g01.bounds
    middle = (miny + maxy) / 2
    line = {"type": "LineString", "coordinates": [[minx - 0.001, middle], [maxx + 0.001, middle]]}
    split = demo_client.post(
        f"/api/v1/plans/{pid}/grids/G01/split", headers=planner, json={"line": line}
    )
    assert split.status_code == 200, split.get_json()
    body = split.get_json()
    general = [f for f in body["features"] if f["properties"]["kind"] == "general"]
    assert len(general) == plan["metrics"]["grids"]["general"] + 1
    assert body["plan"]["metrics"]["validation"]["valid"]
    assert tiling_error_m2(demo_engine, pid) < 1.0
    new_key = f"G{len(general):02d}"
    pieces = {
        f["properties"]["key"]: shape(f["geometry"])
        for f in body["features"]
        if f["properties"]["key"] in ("G01", new_key)
    }
    assert union_all(list(pieces.values())).symmetric_difference(g01).area < 1e-10
    assert pieces["G01"].centroid.y > pieces[new_key].centroid.y  # G01 keeps the north

    merged = demo_client.post(
        f"/api/v1/plans/{pid}/merge", headers=planner, json={"keys": ["G01", new_key]}
    )
    assert merged.status_code == 200, merged.get_json()
    back = {f["properties"]["key"]: shape(f["geometry"]) for f in merged.get_json()["features"]}
    assert new_key not in back and not any(k.startswith(f"{new_key}-") for k in back)
    assert back["G01"].symmetric_difference(g01).area < 1e-10
    assert tiling_error_m2(demo_engine, pid) < 1.0

    before = plan_geometries(demo_engine, pid)
    apart = demo_client.post(
        f"/api/v1/plans/{pid}/merge", headers=planner, json={"keys": ["D01", "G01"]}
    )
    assert apart.status_code == 422
    miss = demo_client.post(
        f"/api/v1/plans/{pid}/grids/G01/split",
        headers=planner,
        json={
            "line": {
                "type": "LineString",
                "coordinates": [[minx - 0.01, miny - 0.01], [minx - 0.005, miny - 0.01]],
            }
        },
    )
    assert miss.status_code == 422
    assert plan_geometries(demo_engine, pid) == before


def generated_number(name: str, community: str, kind: str) -> list[int] | None:
    """The numbers of a generated grid name (None for a planner's own name)."""
    import re

    pattern = {
        "general": r"第(\d+)网格",
        "dedicated": r"第(\d+)专属网格",
        "micro": r"第(\d+)网格第(\d+)微网格",
        "master": r"总网格()",
    }[kind]
    found = re.fullmatch(re.escape(community) + pattern, name)
    return None if found is None else [int(n) for n in found.groups() if n]


def test_applied_grids_carry_names_that_follow_their_codes(demo_client, demo_tokens, demo_engine):
    area = COMMUNITIES[4]
    planner = bearer(demo_tokens["planner"])
    # One general grid has a planner's own name; it goes with the grid that continues it.
    grid_id, _, _, version = next(g for g in live_grids(demo_engine, area) if g[2] == "general")
    renamed = demo_client.patch(
        f"/api/v1/grids/{grid_id}",
        headers={**planner, "If-Match": f'"{version}"'},
        json={"properties": {"name": "双楠老院子"}},
    )
    assert renamed.status_code == 200
    worker = scalar(demo_engine, "SELECT worker_id FROM grids WHERE id = :i", i=grid_id)
    plan = draw(demo_client, demo_tokens["planner"], area)
    applied = demo_client.post(f"/api/v1/plans/{plan['id']}/apply", headers=planner)
    assert applied.status_code == 200, applied.get_json()
    community = scalar(demo_engine, "SELECT name FROM areas WHERE code = :a", a=area)
    with demo_engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT g.code, g.name, g.kind, g.worker_id FROM grids g JOIN areas a "
                "ON a.id = g.community_id WHERE a.code = :a AND g.active"
            ),
            {"a": area},
        ).all()
    own = [g for g in grids if g.name == "双楠老院子"]
    assert len(own) == 1 and own[0].worker_id == worker and own[0].kind == "general"
    kinds = set()
    for code, name, kind, _ in grids:
        if name == "双楠老院子":
            continue
        numbers = generated_number(name, community, kind)
        assert numbers is not None, (code, name)
        expected = {"micro": [int(code[-6:-3]), int(code[-3:])], "master": []}
        assert numbers == expected.get(kind, [int(code[-3:])]), (code, name)
        kinds.add(kind)
    assert {"general", "micro"} <= kinds
