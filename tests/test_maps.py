"""Map pages and embeds: local assets only, the viewer rule, frame policies, bad
parameters; and in a real headless Chromium (Debian's, driven by Playwright) with
every request that leaves the machine refused, as a browser set to Chinese (pages in
English are tested in ``tests/test_pages_i18n.py``)."""

from __future__ import annotations

import html
import json
import os
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from tests.conftest import serving
from tests.helpers import bearer, cli_env, free_port, offline_page, run_cli, wait_for

STREET = "510107015"
ASSET = re.compile(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"')


def count(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def chinese(browser):
    """A browser context that asks for Chinese pages (``Accept-Language: zh-CN``)."""
    return browser.new_context(locale="zh-CN")


def mentions(page: str, value: str) -> bool:
    """Whether the page holds ``value``, as text or JSON-escaped."""
    return value in page or json.dumps(value)[1:-1] in page


@pytest.mark.parametrize(
    "path",
    [
        f"/maps/grids?area={STREET}",
        f"/maps/coverage?area={STREET}&kind=canteen",
        f"/editor?area={STREET}",
        f"/embed/grids?area={STREET}",
    ],
)
def test_every_page_loads_only_its_own_assets(demo_client, path):
    response = demo_client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    if not path.startswith("/embed"):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert policy.endswith("frame-ancestors 'none'")
    page = response.get_data(as_text=True)
    assets = ASSET.findall(page)
    assert assets, "the page loads Leaflet from somewhere"
    for url in assets:
        assert url.startswith(("/maps/static/", "data:")), url
        if url.startswith("/maps/static/"):
            assert demo_client.get(url).status_code == 200, url
    assert not re.search(r'(?:src|href)="https?://', page)


def test_the_editor_needs_an_area(demo_client):
    assert demo_client.get("/editor").status_code == 400
    assert demo_client.get("/editor?area=999").status_code == 404
    assert demo_client.get(f"/editor?area={STREET}&base=osm").status_code == 400


def test_worker_names_are_for_staff_and_never_in_an_embed(demo_client, demo_tokens, demo_engine):
    with demo_engine.connect() as conn:
        name = conn.execute(
            text("SELECT w.name FROM workers w JOIN grids g ON g.worker_id = w.id LIMIT 1")
        ).scalar()
    staff = bearer(demo_tokens["staff"])
    assert mentions(
        demo_client.get(f"/maps/grids?area={STREET}", headers=staff).get_data(True), name
    )
    assert not mentions(demo_client.get(f"/maps/grids?area={STREET}").get_data(True), name)
    embed = demo_client.get(f"/embed/grids?area={STREET}", headers=staff).get_data(True)
    assert not mentions(embed, name)
    assert "worker" not in embed


def test_an_embed_may_be_framed_by_the_allowed_origins_only(demo_db_url):
    from api import create_app

    app = create_app(
        {"TESTING": True, "DATABASE_URL": demo_db_url, "EMBED_ORIGINS": "https://portal.example"}
    )
    response = app.test_client().get(f"/embed/grids?area={STREET}&layers=grids")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"].endswith(
        "; frame-ancestors 'self' https://portal.example"
    )
    assert "X-Frame-Options" not in response.headers
    page = response.get_data(as_text=True)
    assert "leaflet-measure" not in page and "Control.FullScreen" not in page  # no tools


def test_the_snippet_page_gives_the_iframe(demo_client):
    page = demo_client.get(f"/embed?area={STREET}&layers=grids,stations").get_data(True)
    snippet = html.unescape(re.search(r"<textarea[^>]*>(.*)</textarea>", page).group(1))
    source = html.unescape(re.search(r'<iframe src="([^"]+)"', snippet).group(1))
    assert source == f"http://localhost/embed/grids?area={STREET}&layers=grids%2Cstations"
    assert demo_client.get(source.removeprefix("http://localhost")).status_code == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        (f"area={STREET}&zoom=3", 400),
        (f"area={STREET}&layers=grids,heatmap", 400),
        (f"area={STREET}&base=http://evil.example/{{z}}", 400),
        (f"area={STREET}&colour=rainbow", 400),
        ("area=999", 404),
    ],
)
def test_bad_map_parameters(demo_client, query, status):
    for path in ("/maps/grids", "/embed/grids"):
        response = demo_client.get(f"{path}?{query}")
        assert response.status_code == status, path
        assert response.mimetype == "text/html"  # a page in words, not the API's JSON


# -- in a browser -------------------------------------------------------------------


class _Portal(BaseHTTPRequestHandler):
    """Another site on another local origin that frames a gridmap embed."""

    embed_url = ""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = (
            f'<!doctype html><title>portal</title><iframe src="{self.embed_url}" '
            'width="600" height="400"></iframe>'
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


def _portal(port: int, embed_url: str) -> ThreadingHTTPServer:
    handler = type("Portal", (_Portal,), {"embed_url": embed_url})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_grids_page_in_a_browser_shows_every_grid_and_station(
    browser, demo_db_url, demo_engine
):
    grids = count(demo_engine, "SELECT count(*) FROM grids WHERE active")
    stations = count(demo_engine, "SELECT count(*) FROM stations")
    with serving(demo_db_url) as base:
        page, problems = offline_page(browser, base, chinese(browser))
        page.goto(f"{base}/maps/grids?area={STREET}", wait_until="networkidle")
        # Grid polygons and station markers are Leaflet's interactive paths; roads are not.
        assert page.locator("path.leaflet-interactive").count() == grids + stations
        assert page.locator(".gridmap-legend").count() == 2
        assert (
            page.locator(".leaflet-control-zoom-fullscreen, .leaflet-control-measure").count() == 2
        )
        # The measuring tool: three clicks give a length and an area.
        page.click(".gridmap-measure-toggle")
        for x, y in ((300, 300), (500, 300), (500, 500)):
            page.mouse.click(x, y)
        readout = page.inner_text(".gridmap-measure-readout")
        assert "长度" in readout and "面积" in readout
        if os.environ.get("GRIDMAP_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["GRIDMAP_SCREENSHOTS"], "measure.png"))
        page.click(".gridmap-measure-toggle")
        assert page.locator(".gridmap-measure-readout").is_hidden()
        assert problems == []


def test_an_embed_loads_in_an_allowed_portal_and_is_refused_in_another(browser, demo_db_url):
    allowed_port, other_port = free_port(), free_port()
    with serving(demo_db_url, GRIDMAP_EMBED_ORIGINS=f"http://127.0.0.1:{allowed_port}") as base:
        embed = f"{base}/embed/grids?area={STREET}&layers=grids"
        portals = [_portal(allowed_port, embed), _portal(other_port, embed)]
        try:
            page, problems = offline_page(browser, base)
            page.goto(f"http://127.0.0.1:{allowed_port}/", wait_until="networkidle")
            frame = page.frames[1]
            frame.wait_for_selector(".leaflet-container")
            assert frame.locator("path.leaflet-interactive").count() > 0
            assert problems == []

            refused, _ = offline_page(browser, base)
            refused.goto(f"http://127.0.0.1:{other_port}/", wait_until="networkidle")
            assert refused.frames[1].locator(".leaflet-container").count() == 0
        finally:
            for portal in portals:
                portal.shutdown()


def test_render_writes_a_map_that_needs_no_server(demo_db_url, demo_engine, tmp_path):
    out = tmp_path / "map.html"
    run_cli(
        "render",
        "510107015002",
        "--layer",
        "grids-by-place",
        "-o",
        str(out),
        env=cli_env(demo_db_url),
    )
    page = out.read_text(encoding="utf-8")
    assets = ASSET.findall(page)
    assert assets and all(url.startswith("data:") for url in assets)
    with demo_engine.connect() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT g.code FROM grids g JOIN areas a ON a.id = g.community_id "
                    "WHERE a.code = '510107015002' AND g.active"
                )
            )
            .scalars()
            .all()
        )
    assert codes and all(f'"{code}"' in page for code in codes)


def test_coverage_embed_and_bad_coverage_parameters(demo_client):
    embed = demo_client.get(f"/embed/coverage?area={STREET}&kind=canteen&minutes=15")
    assert embed.status_code == 200
    assert embed.headers["Content-Security-Policy"].endswith("; frame-ancestors 'self'")
    page = embed.get_data(as_text=True)
    assert '"households"' not in page  # aggregates in the summary only, nothing per building
    for query in (
        "",
        f"area={STREET}",
        f"area={STREET}&kind=spa",
        f"area={STREET}&kind=canteen&minutes=abc",
        f"area={STREET}&kind=canteen&minutes=0",
        f"area={STREET}&kind=canteen&method=bus",
        f"area={STREET}&kind=canteen&layers=grids",
    ):
        response = demo_client.get(f"/maps/coverage?{query}")
        assert response.status_code == 400, query
    assert demo_client.get("/maps/coverage?area=999&kind=canteen").status_code == 404
    assert demo_client.get("/maps/plans/999").status_code == 404


def test_the_coverage_and_plan_pages_in_a_browser(browser, demo_db_url, demo_engine, demo_tokens):
    residential = count(
        demo_engine,
        "SELECT count(*) FROM buildings b JOIN areas a ON ST_Intersects(a.geom, b.point) "
        f"WHERE a.code = '{STREET}' AND b.households > 0",
    )
    canteens = count(demo_engine, "SELECT count(*) FROM stations WHERE kind = 'canteen'")
    with serving(demo_db_url) as base:
        page, problems = offline_page(browser, base, chinese(browser))
        page.goto(f"{base}/maps/coverage?area={STREET}&kind=canteen", wait_until="networkidle")
        # Buildings and stations are interactive; gap and service areas are not.
        assert page.locator("path.leaflet-interactive").count() == residential + canteens
        summary = page.locator(".gridmap-summary").inner_text()
        assert "社区食堂 10 分钟服务圈" in summary and "：24," in summary and "户中覆盖" in summary
        assert problems == []

        request = urllib.request.Request(
            f"{base}/api/v1/plans",
            data=json.dumps({"area": "510107015002"}).encode(),
            headers={**bearer(demo_tokens["planner"]), "Content-Type": "application/json"},
        )
        plan = json.load(urllib.request.urlopen(request))
        moves = json.load(urllib.request.urlopen(f"{base}/api/v1/plans/{plan['id']}/diff"))
        planned = sum(plan["metrics"]["grids"].values())
        page.goto(f"{base}/maps/plans/{plan['id']}", wait_until="networkidle")
        # Today's grids start hidden; the plan's grids and the moved buildings are drawn.
        assert page.locator("path.leaflet-interactive").count() == planned + len(moves["moves"])
        page.get_by_label("现状网格").check()
        today = count(
            demo_engine,
            "SELECT count(*) FROM grids g JOIN areas a ON a.id = g.community_id "
            "WHERE a.code = '510107015002' AND g.active AND g.kind <> 'master'",
        )
        assert (
            page.locator("path.leaflet-interactive").count()
            == planned + len(moves["moves"]) + today
        )
        assert "校验通过" in page.locator(".gridmap-summary").inner_text()
        assert problems == []


def _open_editor(page, url: str, token: str) -> None:
    """Open the editor, sign in with the planner token from its link, and wait for the
    grids."""
    page.goto(url, wait_until="networkidle")
    page.click("#gm-signin")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(url)
    wait_for(page, "window.gridmapEditorLayers.grids.getLayers().length > 0")
    assert "已登录" in page.inner_text("#gm-who")


SHRINK = """([id, factor]) => {
    const layer = window.gridmapEditorLayers.grids.getLayers().find(l => l.gridId === id);
    const c = layer.getBounds().getCenter();
    const move = x => Array.isArray(x) ? x.map(move)
        : L.latLng(c.lat + (x.lat - c.lat) * factor, c.lng + (x.lng - c.lng) * factor);
    layer.setLatLngs(move(layer.getLatLngs()));
    layer.fire("pm:edit");
}"""


def test_the_editor_refuses_a_gap_and_saves_with_the_neighbours(
    browser, demo_db_url, demo_engine, demo_tokens
):
    area = "510107015002"
    grid_id, version, area_m2 = (
        demo_engine.connect()
        .execute(
            text(
                "SELECT g.id, g.version, ST_Area(g.geom::geography) FROM grids g JOIN areas a "
                "ON a.id = g.community_id WHERE a.code = :a AND g.active AND g.kind = 'general' "
                "ORDER BY g.code LIMIT 1"
            ),
            {"a": area},
        )
        .one()
    )
    with serving(demo_db_url) as base:
        page, problems = offline_page(browser, base, chinese(browser))
        _open_editor(page, f"{base}/editor?area={area}", demo_tokens["planner"])

        page.evaluate(SHRINK, [grid_id, 0.9])
        page.wait_for_selector("#gm-status.gm-bad")
        assert "被拒绝 (409)" in page.inner_text("#gm-status")
        assert "is in no grid" in page.inner_text("#gm-status")
        # The gap is drawn where it is.
        assert page.evaluate("window.gridmapEditorLayers.findings.getLayers().length") > 0
        with demo_engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT version FROM grids WHERE id = :i"), {"i": grid_id}
                ).scalar()
                == version
            )

        page.check("#gm-adjust")
        wait_for(page, "window.gridmapEditorLayers.grids.getLayers().length > 0")
        page.evaluate(SHRINK, [grid_id, 0.9])
        page.wait_for_selector("#gm-status.gm-good")
        assert "已保存" in page.inner_text("#gm-status")
        with demo_engine.connect() as conn:
            now, now_m2 = conn.execute(
                text("SELECT version, ST_Area(geom::geography) FROM grids WHERE id = :i"),
                {"i": grid_id},
            ).one()
        assert now == version + 1
        assert now_m2 == pytest.approx(area_m2 * 0.81, rel=0.02)
        # 409 answers are expected above; nothing else may fail.
        assert [p for p in problems if "409" not in p] == []


def test_findings_and_proposed_sites_are_drawn(demo_client, demo_tokens):
    report = demo_client.get(f"/api/v1/validate?area={STREET}").get_json()
    page = demo_client.get(f"/maps/grids?area={STREET}&layers=grids,findings").get_data(True)
    drawn = [f for f in report["findings"] if f["geometry"] is not None]
    assert drawn
    # Each drawn where it is, its kind named in Chinese (gap → 缺口), its detail as given.
    from layers.grids import FINDING_NAMES
    from layers.i18n import gettext

    name = json.dumps(gettext(FINDING_NAMES[drawn[0]["kind"]]) + "：")[1:-1]
    assert page.count(name) == sum(f["kind"] == drawn[0]["kind"] for f in drawn)
    assert mentions(page, drawn[0]["detail"])

    area = "510107015003"
    proposal = demo_client.post(
        "/api/v1/planning/sites",
        headers=bearer(demo_tokens["planner"]),
        json={"area": area, "kind": "elderly_care", "k": 2, "spacing_m": 100},
    ).get_json()
    page = demo_client.get(f"/maps/coverage?area={area}&kind=elderly_care&sites=2").get_data(True)
    for site in proposal["sites"]:
        assert mentions(page, f"建议站点 {site['rank']}：新增覆盖 {site['gain_households']} 户")
    assert (
        demo_client.get(f"/maps/coverage?area={area}&kind=elderly_care&sites=99").status_code == 400
    )


def test_render_coverage_and_plan_maps(demo_db_url, demo_client, demo_tokens, tmp_path):
    env = cli_env(demo_db_url)
    coverage = tmp_path / "coverage.html"
    run_cli(
        "render", STREET, "--layer", "coverage", "--kind", "canteen", "-o", str(coverage), env=env
    )
    assert "gridmap-summary" in coverage.read_text(encoding="utf-8")
    assert (
        run_cli(
            "render", STREET, "--layer", "coverage", "-o", str(coverage), env=env, check=False
        ).returncode
        == 2
    )
    plan = demo_client.post(
        "/api/v1/plans", headers=bearer(demo_tokens["planner"]), json={"area": "510107015002"}
    ).get_json()
    out = tmp_path / "plan.html"
    run_cli(
        "render",
        "510107015002",
        "--layer",
        "plan",
        "--plan",
        str(plan["id"]),
        "-o",
        str(out),
        env=env,
    )
    page = out.read_text(encoding="utf-8")
    assert all(url.startswith("data:") for url in ASSET.findall(page))
    assert f"方案 {plan['id']}（草案）" in page  # gridmap render writes Chinese
    wrong = run_cli(
        "render",
        "510107015001",
        "--layer",
        "plan",
        "--plan",
        str(plan["id"]),
        "-o",
        str(out),
        env=env,
        check=False,
    )
    assert wrong.returncode == 2 and "not a plan of" in wrong.stderr


def test_the_base_map_is_a_setting(demo_db_url):
    from api import create_app

    intranet = "http://tiles.intranet.example/{z}/{x}/{y}.png"
    app = create_app({"TESTING": True, "DATABASE_URL": demo_db_url, "MAP_TILE_URL": intranet})
    client = app.test_client()
    plain = client.get(f"/maps/grids?area={STREET}&layers=grids").get_data(True)
    assert "L.tileLayer" not in plain
    assert intranet in client.get(f"/maps/grids?area={STREET}&base=intranet").get_data(True)
    assert "tile.openstreetmap.org" in client.get(f"/maps/grids?area={STREET}&base=osm").get_data(
        True
    )


SELECT = """id => {
    const layer = window.gridmapEditorLayers.grids.getLayers().find(l => l.gridId === id);
    layer.fire("click", {originalEvent: {shiftKey: true}});
}"""
SPLIT = """id => {
    const editor = window.gridmapEditorLayers;
    const layer = editor.grids.getLayers().find(l => l.gridId === id);
    const b = layer.getBounds(), lat = (b.getNorth() + b.getSouth()) / 2;
    const pad = (b.getEast() - b.getWest()) * 0.2;
    const line = L.polyline([[lat, b.getWest() - pad], [lat, b.getEast() + pad]]).addTo(editor.map);
    editor.map.fire("pm:create", {shape: "Line", layer: line});
}"""


def test_the_editor_splits_and_merges(browser, demo_db_url, demo_engine, demo_tokens):
    area = "510107015002"

    def active() -> list[tuple]:
        with demo_engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT g.id, g.version FROM grids g JOIN areas a ON a.id = g.community_id "
                    "WHERE a.code = :a AND g.active AND g.kind = 'general' ORDER BY g.code"
                ),
                {"a": area},
            ).all()

    before = active()
    with serving(demo_db_url) as base:
        page, problems = offline_page(browser, base, chinese(browser))
        _open_editor(page, f"{base}/editor?area={area}", demo_tokens["planner"])
        page.evaluate(SELECT, before[0][0])
        page.evaluate(SPLIT, before[0][0])
        page.wait_for_selector("#gm-status.gm-good")
        assert "已拆分" in page.inner_text("#gm-status")
        after_split = active()
        assert len(after_split) == len(before) + 1
        new = sorted({i for i, _ in after_split} - {i for i, _ in before})
        assert len(new) == 2  # the old grid retired, two new ones

        wait_for(
            page, f"window.gridmapEditorLayers.grids.getLayers().some(l => l.gridId === {new[1]})"
        )
        for grid_id in new:
            page.evaluate(SELECT, grid_id)
        page.click("#gm-merge")
        wait_for(page, "document.querySelector('#gm-status').textContent.includes('已合并')")
        assert len(active()) == len(before)
        assert problems == []
