"""Pages in Chinese first (issue 14): every page has a title and Chinese words by
default and English ones with ``lang=en`` or an English browser; ``/`` lists the
streets and communities with their figures (checked against counts made here in SQL);
a map's errors are HTML pages in Chinese with their status; phones may pinch-zoom.

Set ``GRIDMAP_SCREENSHOTS`` to a folder to keep the PNGs of the home page, a grid map
and a coverage map at 1400x900 and 390x844 (``docs/screenshots/`` holds them).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from gridmap.models import STATION_KINDS
from tests.conftest import serving
from tests.helpers import bearer, offline_page, wait_for

STREET = "510107015"
COMMUNITY = "510107015002"
HAN = re.compile(r"[\u4e00-\u9fff]")
#: English words of gridmap's own labels that must not be seen on a Chinese page.
ENGLISH_LABELS = (
    "households",
    "buildings",
    "general",
    "micro",
    "dedicated",
    "covered",
    "gap area",
    "walking minutes",
    "stations",
    "grids",
    "within",
    "elderly_care",
    "canteen",
    "proposed site",
    "validator",
    "sign in",
    "merge selected",
    "Grid map",
    "Not found",
)
#: Chinese labels that must not be seen on an English page (the data's names may be
#: Chinese; gridmap's words may not).
CHINESE_LABELS = ("户数", "一般网格", "微网格", "服务站点", "服务盲区", "覆盖", "网格图", "首页")


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _plan(base: str, token: str, area: str = COMMUNITY) -> int:
    request = urllib.request.Request(
        f"{base}/api/v1/plans",
        data=json.dumps({"area": area}).encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    return json.load(urllib.request.urlopen(request))["id"]


# -- the catalogue -------------------------------------------------------------------


def _messages() -> set[str]:
    """Every message the pages write: ``_("...")`` in the code and its templates, and
    the tables of names translated where they are used."""
    from babel.messages.extract import extract_from_file
    from jinja2 import Environment

    from api import auth, maps
    from layers import coverage, editor, grids, pages, plan, site, stations

    root = Path(__file__).resolve().parent.parent
    found = set()
    for path in [*(root / "layers").glob("*.py"), root / "api/maps.py", root / "api/home.py"]:
        for _line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"_": None}
        ):
            # _(message, name=value) is read as a tuple: the message, then nothing.
            found.add(message[0] if isinstance(message, tuple) else message)
    jinja = Environment(extensions=["jinja2.ext.i18n"])
    for source in (site._LAYOUT, site._HOME, site._ERROR, editor.PANEL, auth._PAGE):
        for _line, _function, message in jinja.extract_translations(source):
            found.add(message[0] if isinstance(message, tuple) else message)
    found.update(grids.KIND_NAMES.values(), grids.PLACE_NAMES.values())
    found.update(grids.FINDING_NAMES.values())
    found.update(stations.KIND_NAMES.values(), editor.MESSAGES.values())
    found.update(label for _upper, _colour, label in coverage.BANDS)
    found.update(pages.METHOD_NAMES.values(), pages.NETWORK_NOTES, (maps.PASTE_HERE,))
    found.update(plan.STATUS_NAMES.values())
    return found - {None}  # _(name) of a variable: its messages are in the tables above


def test_every_message_has_its_chinese():
    from babel.messages.mofile import read_mo

    from layers.i18n import TRANSLATIONS_DIR

    with open(TRANSLATIONS_DIR / "zh/LC_MESSAGES/messages.mo", "rb") as compiled:
        catalogue = {m.id: m.string for m in read_mo(compiled) if m.id}
    messages = _messages()
    assert len(messages) > 100
    missing = sorted(m for m in messages if not catalogue.get(m))
    assert missing == []
    for message in messages:  # a translation keeps the message's placeholders
        assert sorted(re.findall(r"%\(\w+\)s", catalogue[message])) == sorted(
            re.findall(r"%\(\w+\)s", message)
        ), message


# -- the home page ---------------------------------------------------------------------


def test_the_home_page_lists_every_community_with_its_figures(
    demo_client, demo_engine, demo_tokens
):
    plan = demo_client.post(
        "/api/v1/plans", headers=bearer(demo_tokens["planner"]), json={"area": COMMUNITY}
    ).get_json()
    response = demo_client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<title>gridmap 网格地图：街道和社区</title>" in page
    assert "锦华街道" in page
    rows = dict(re.findall(r'<tr class="community" data-code="(\d+)">(.*?)</tr>', page, flags=re.S))
    with demo_engine.connect() as conn:
        communities = conn.execute(
            text(
                "SELECT c.code, c.name FROM areas c JOIN areas s ON s.id = c.parent_id "
                "WHERE s.code = :s ORDER BY c.code"
            ),
            {"s": STREET},
        ).all()
    assert sorted(rows) == [code for code, _ in communities] and len(rows) >= 2
    for code, name in communities:
        row = rows[code]
        figures = {
            key: int(value)
            for key, value in re.findall(r'data-figure="([\w-]+)">\s*(\d+)\s*<', row)
        }
        # Counted here another way: a building or station is the community's when its
        # point is covered by the community's boundary.
        inside = "ST_Covers((SELECT geom FROM areas WHERE code = :c), {})"
        expected = {
            "buildings": _count(
                demo_engine,
                f"SELECT count(*) FROM buildings WHERE {inside.format('point')}",
                c=code,
            ),
            "households": _count(
                demo_engine,
                f"SELECT coalesce(sum(households), 0) FROM buildings "
                f"WHERE {inside.format('point')}",
                c=code,
            ),
            "stations": _count(
                demo_engine, f"SELECT count(*) FROM stations WHERE {inside.format('geom')}", c=code
            ),
        }
        for kind in ("general", "micro", "dedicated"):
            expected[f"grids-{kind}"] = _count(
                demo_engine,
                "SELECT count(*) FROM grids WHERE active AND kind = :k AND community_id = "
                "(SELECT id FROM areas WHERE code = :c)",
                k=kind,
                c=code,
            )
        assert figures == expected, code
        assert sum(expected.values()) > 0
        assert name in row
        for link in (f"/maps/grids?area={code}", f"/editor?area={code}"):
            assert f'href="{link}"' in row
    for kind in STATION_KINDS:
        assert f'href="/maps/coverage?area={STREET}&amp;kind={kind}"' in page
    assert f'href="/maps/plans/{plan["id"]}"' in rows[COMMUNITY]
    assert f'href="/embed?area={STREET}"' in page and 'href="/api/v1/docs"' in page
    # The reports to take away: workload per grid, and coverage per grid of each kind.
    assert f'href="/api/v1/reports/workload?area={STREET}&amp;format=xlsx"' in page
    for kind in STATION_KINDS:
        for fmt in ("csv", "xlsx"):
            assert f'href="/api/v1/coverage?area={STREET}&amp;kind={kind}&amp;format={fmt}"' in page
    # Every link of the page answers (one coverage of each form: each takes a while).
    links = {link.replace("&amp;", "&") for link in re.findall(r'href="(/[^"]*)"', page)}
    for path in sorted(links):
        if "coverage" in path and "kind=canteen" not in path or "/plans/" in path:
            continue  # the other coverage maps and the plan are drawn in the browser test
        response = demo_client.get(path)
        assert response.status_code == 200, path
        if "format=csv" in path:
            assert response.mimetype == "text/csv", path


def test_the_home_page_in_english_and_names_as_text(demo_client, demo_engine):
    with demo_engine.begin() as conn:
        conn.execute(
            text("UPDATE areas SET name = :n WHERE code = :c"),
            {"n": "<img src=x onerror=alert(1)>", "c": COMMUNITY},
        )
    page = demo_client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(True)
    assert "<title>gridmap: streets and communities</title>" in page
    assert ">households<" in page and "户数" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    page = demo_client.get("/?lang=zh", headers={"Accept-Language": "en"}).get_data(True)
    assert "户数" in page
    # A map error quotes what it was given, as text.
    error = demo_client.get("/maps/grids?area=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert error.status_code == 404
    assert "&lt;img src=x onerror=alert(1)&gt;" in error.get_data(True)
    assert "<img src=x" not in error.get_data(True)


# -- map errors are pages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/maps/grids?area=999", 404, "没有编码为 999 的街道或社区"),
        ("/embed/grids?area=999", 404, "没有编码为 999 的街道或社区"),
        ("/editor?area=999", 404, "没有编码为 999 的街道或社区"),
        ("/maps/coverage?area=999&kind=canteen", 404, "没有编码为 999 的街道或社区"),
        ("/maps/plans/999", 404, "没有编号为 999 的方案"),
        ("/maps/grids", 400, "缺少 area"),
        (f"/maps/grids?area={STREET}&colour=rainbow", 400, "colour（着色）"),
        (f"/maps/grids?area={STREET}&zoom=3", 400, "未知的查询参数：zoom"),
        (f"/embed/coverage?area={STREET}&kind=spa", 400, "缺少 kind"),
        (f"/maps/coverage?area={STREET}&kind=canteen&minutes=0", 400, "1 到 60"),
        (f"/editor?area={STREET}&base=osm", 400, "未知的查询参数：base"),
        (f"/maps/grids?area={STREET}&lang=fr", 400, "lang 只能是 zh 或 en"),
    ],
)
def test_map_errors_are_pages_in_chinese(demo_client, path, status, words):
    response = demo_client.get(path)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert words in page
    assert re.search(r"<title>[^<]*[\u4e00-\u9fff][^<]*</title>", page)
    assert "script-src 'nonce-" in response.headers["Content-Security-Policy"]
    if "lang=" in path:
        return
    english = demo_client.get(path + ("&" if "?" in path else "?") + "lang=en")
    assert english.status_code == status
    assert not HAN.search(english.get_data(as_text=True).replace("中文", ""))


def test_the_api_keeps_problem_json(demo_client):
    response = demo_client.get("/api/v1/grids?area=999")
    assert response.mimetype == "application/problem+json"
    response = demo_client.get("/api/v1/coverage?area=999&kind=canteen")
    assert response.mimetype == "application/problem+json"


def test_the_sign_in_page_speaks_the_page_language(demo_client):
    page = demo_client.get("/signin").get_data(as_text=True)
    assert "<title>gridmap 登录</title>" in page and "令牌" in page
    refused = demo_client.post("/signin", data={"token": "nothing"})
    assert refused.status_code == 401 and "未知或已撤销的令牌" in refused.get_data(True)
    page = demo_client.get("/signin?lang=en").get_data(as_text=True)
    assert "<title>gridmap: sign in</title>" in page and not HAN.search(page)


def test_pages_say_their_language_and_vary_by_the_browsers(demo_client):
    for path in ("/", f"/maps/grids?area={STREET}&layers=grids", "/maps/plans/999"):
        chinese = demo_client.get(path)
        assert chinese.headers["Content-Language"] == "zh-CN", path
        assert "Accept-Language" in chinese.headers["Vary"], path
        english = demo_client.get(path, headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert english.headers["Content-Language"] == "en", path
    api = demo_client.get("/api/v1/grids?limit=1")
    assert "Content-Language" not in api.headers  # codes, not words


def test_pages_let_a_phone_zoom(demo_client):
    for path in (f"/maps/grids?area={STREET}", f"/editor?area={STREET}", "/"):
        page = demo_client.get(path).get_data(as_text=True)
        assert 'name="viewport"' in page, path
        assert "user-scalable=no" not in page and "maximum-scale" not in page, path


# -- in a browser ---------------------------------------------------------------------

#: The visible text of the page, and the text of every tooltip once opened.
READ = """() => {
    const seen = new Set();
    document.querySelectorAll("path.leaflet-interactive, .leaflet-marker-icon").forEach(el => {
        const box = el.getBoundingClientRect();
        el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true,
            clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));
        document.querySelectorAll(".leaflet-tooltip").forEach(t => seen.add(t.innerText));
        el.dispatchEvent(new MouseEvent("mouseout", {bubbles: true}));
    });
    return {title: document.title, body: document.body.innerText,
            tooltips: Array.from(seen), lang: document.documentElement.lang};
}"""


def _pages(plan_id: int) -> list[tuple[str, str]]:
    """(path, selector to wait for) of every page."""
    return [
        ("/", "table"),
        (f"/maps/grids?area={STREET}", ".leaflet-container"),
        (f"/maps/grids?area={COMMUNITY}&colour=place", ".leaflet-container"),
        (f"/maps/coverage?area={STREET}&kind=elderly_care&sites=2", ".gridmap-summary"),
        (f"/maps/plans/{plan_id}", ".gridmap-summary"),
        (f"/editor?area={COMMUNITY}", "#gm-panel"),
        (f"/embed/grids?area={STREET}", ".leaflet-container"),
        (f"/embed/coverage?area={STREET}&kind=canteen", ".gridmap-summary"),
        (f"/embed?area={STREET}", "textarea"),
        ("/signin", "form"),
        ("/maps/grids?area=999", ".error"),
        ("/maps/plans/999", ".error"),
    ]


def _read(page, url: str, ready: str) -> dict:
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector(ready)
    if "/editor" in url:
        wait_for(page, "window.gridmapEditorLayers.grids.getLayers().length > 0")
    return page.evaluate(READ)


def _words(seen: dict) -> str:
    return "\n".join([seen["title"], seen["body"], *seen["tooltips"]])


def test_every_page_is_chinese_by_default_and_english_on_request(browser, demo_db_url, demo_tokens):
    with serving(demo_db_url) as base:
        plan_id = _plan(base, demo_tokens["planner"])
        chinese = browser.new_context(locale="zh-CN")
        english = browser.new_context(locale="en-US")
        zh_page, zh_problems = offline_page(browser, base, chinese)
        en_page, en_problems = offline_page(browser, base, english)
        for path, ready in _pages(plan_id):
            seen = _read(zh_page, base + path, ready)
            assert seen["title"].strip() and HAN.search(seen["title"]), path
            assert seen["lang"] == "zh-CN", path
            words = _words(seen)
            assert HAN.search(seen["body"]), path
            for label in ENGLISH_LABELS:
                assert label not in words, (path, label)

            for url in (base + path, base + path + ("&" if "?" in path else "?") + "lang=en"):
                if url.endswith("lang=en"):
                    seen = _read(zh_page, url, ready)  # asked in the address
                else:
                    seen = _read(en_page, url, ready)  # asked by the browser
                assert seen["title"].strip() and seen["lang"] == "en", url
                for label in CHINESE_LABELS:
                    assert label not in _words(seen), (url, label)
        # Tooltip values are words too: 覆盖 是/否, the kinds by name.
        seen = _read(
            zh_page, f"{base}/maps/coverage?area={STREET}&kind=canteen", ".gridmap-summary"
        )
        tips = "\n".join(seen["tooltips"])
        assert "覆盖\t是" in tips or "覆盖\t否" in tips, tips[:300]
        assert "true" not in tips and "false" not in tips
        assert "社区食堂 10 分钟服务圈" in seen["body"] and "户中覆盖" in seen["body"]
        seen = _read(zh_page, f"{base}/maps/grids?area={STREET}", ".gridmap-legend")
        tips = "\n".join(seen["tooltips"])
        assert "类型\t一般网格" in tips and "general" not in tips
        assert "养老服务站" in seen["body"]  # the stations' legend
        # Map errors answer 404, which the pages above record; nothing else failed.
        unexpected = [p for p in zh_problems + en_problems if "404" not in p]
        assert unexpected == []


def test_screenshots_of_the_home_page_and_maps(browser, demo_db_url, tmp_path):
    folder = Path(os.environ.get("GRIDMAP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with serving(demo_db_url) as base:
        for width, height in ((1400, 900), (390, 844)):
            context = browser.new_context(
                locale="zh-CN", viewport={"width": width, "height": height}
            )
            page, problems = offline_page(browser, base, context)
            for name, path, ready in (
                ("home", "/", "table"),
                ("grids", f"/maps/grids?area={STREET}", "path.leaflet-interactive"),
                (
                    "coverage",
                    f"/maps/coverage?area={STREET}&kind=elderly_care",
                    ".gridmap-summary",
                ),
            ):
                page.goto(base + path, wait_until="networkidle")
                page.wait_for_selector(ready)
                shot = folder / f"{name}-{width}x{height}.png"
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 10_000, shot
            assert problems == []
            context.close()
