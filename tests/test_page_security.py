"""Pages that cannot be turned against their users (issue 12).

Script payloads are planted in every text field of every layer (grid names and codes,
station, worker, area and building fields, plan notes, a token's name); every page is
opened in Chromium with a ``dialog`` listener and a listener for Content-Security-Policy
violations, its features hovered so their tooltips open; nothing may run, no payload
may become markup (an ``<img src=x>`` would ask for ``/x``), and the payloads must show
as literal text where names are shown. Every HTML answer carries the policy; the
browser's session cookie is HttpOnly and SameSite=Strict, a cookie write without the
CSRF token is refused, and no token is kept where page script can read it.

Set ``GRIDMAP_SCREENSHOTS`` to a folder to keep a PNG of every page opened.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from gridmap.db.engine import session_scope
from gridmap.tokens import create_token, revoke_token
from tests.conftest import serving
from tests.helpers import bearer, cli_env, offline_page, run_cli, wait_for

STREET = "510107015"
COMMUNITY = "510107015002"
#: What an attacker would name things: markup, a script element, a ``javascript:``
#: address, the end of a script element, and a JavaScript template literal.
PAYLOADS = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
    "</script><script>alert(1)</script>",
    "`${alert(1)}`\\",
)
#: A payload short enough for code columns (32 characters with the row's id).
CODE_PAYLOAD = "<svg/onload=alert(1)>"

#: Records what a page must never do: open a dialog, break its policy, load ``x``.
WATCH = """() => {
    window.gridmapViolations = [];
    document.addEventListener("securitypolicyviolation", e =>
        window.gridmapViolations.push(e.violatedDirective + " " + e.blockedURI));
}"""
#: Opens every tooltip of the page (a mouseover on each feature) and returns the text
#: of the tooltips, labels, summaries and the editor's panel.
HOVER = """() => {
    const seen = new Set();
    const read = () => document.querySelectorAll(".leaflet-tooltip")
        .forEach(t => seen.add(t.innerText));
    document.querySelectorAll("path.leaflet-interactive, .leaflet-marker-icon").forEach(el => {
        const box = el.getBoundingClientRect();
        el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true,
            clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));
        read();
    });
    const texts = sel => Array.from(document.querySelectorAll(sel)).map(e => e.innerText);
    return {tooltips: Array.from(seen), labels: texts(".gridmap-label"),
            summary: texts(".gridmap-summary"), panel: texts("#gm-panel"),
            body: document.body.innerText,
            javascriptLinks: document.querySelectorAll('[href^="javascript:"]').length,
            violations: window.gridmapViolations || []};
}"""


def _plant(engine) -> None:
    """Put a payload in every text field of every layer, cycling through them."""
    with engine.begin() as conn:
        for table, columns in {
            "grids": ("name",),
            "stations": ("name", "opening_hours"),
            "workers": ("name",),
            "areas": ("name",),
            "buildings": ("name",),
            "roads": ("name",),
        }.items():
            ids = conn.execute(text(f"SELECT id FROM {table} ORDER BY id")).scalars().all()
            for k, row in enumerate(ids):
                values = {c: PAYLOADS[(k + j) % len(PAYLOADS)] for j, c in enumerate(columns)}
                sets = ", ".join(f"{c} = :{c}" for c in columns)
                conn.execute(
                    text(f"UPDATE {table} SET {sets} WHERE id = :id"), {**values, "id": row}
                )
        # Codes keep their row's id, so they stay unique; compounds keep their own name
        # after the payload, so buildings stay grouped as they were.
        conn.execute(text("UPDATE grids SET code = :p || id"), {"p": CODE_PAYLOAD})
        conn.execute(text("UPDATE buildings SET code = :p || id"), {"p": CODE_PAYLOAD})
        conn.execute(
            text("UPDATE buildings SET compound = :p || compound WHERE compound IS NOT NULL"),
            {"p": PAYLOADS[1]},
        )


def _plan(engine, base: str, token: str) -> int:
    """A draft plan of the community, its notes and grid notes made payloads."""
    request = urllib.request.Request(
        f"{base}/api/v1/plans",
        data=json.dumps({"area": COMMUNITY}).encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    plan = json.load(urllib.request.urlopen(request))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE plans SET notes = CAST(:n AS jsonb) WHERE id = :i"),
            {"n": json.dumps(list(PAYLOADS)), "i": plan["id"]},
        )
        conn.execute(
            text("UPDATE plan_grids SET note = :p WHERE plan_id = :i"),
            {"p": PAYLOADS[0], "i": plan["id"]},
        )
    return plan["id"]


def _policy(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def _assert_policy(header: str | None, embed: bool = False) -> None:
    assert header, "no Content-Security-Policy"
    policy = _policy(header)
    script = policy["script-src"]
    assert [s for s in script if s.startswith("'nonce-")], script
    assert "'unsafe-inline'" not in script and "*" not in script
    assert not [s for s in script if s.startswith(("http", "data:"))], script
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    if embed:
        assert policy["frame-ancestors"][0] == "'self'"
    else:
        assert policy["frame-ancestors"] == ["'none'"]


def _watched(browser, base: str, context=None):
    """An offline page that also records dialogs, requests for ``x`` and HTML answers
    without the policy."""
    # A browser set to Chinese: the pages' own words below are the Chinese ones.
    page, problems = offline_page(browser, base, context or browser.new_context(locale="zh-CN"))
    page.add_init_script(f"({WATCH})()")

    def dialog(d):
        problems.append(f"dialog {d.message}")
        d.dismiss()

    def response(r):
        if r.headers.get("content-type", "").startswith("text/html"):
            try:
                _assert_policy(r.headers.get("content-security-policy"), embed="/embed/" in r.url)
            except AssertionError as exc:
                problems.append(f"policy of {r.url}: {exc}")

    page.on("dialog", dialog)
    page.on("response", response)
    page.on(
        "request",
        lambda r: (
            problems.append(f"markup ran: {r.url}")
            if urllib.parse.urlsplit(r.url).path.endswith("/x")
            else None
        ),
    )
    return page, problems


def _visit(
    page, url: str, name: str, ready: str = ".leaflet-container", loaded: str | None = None
) -> dict:
    """Open ``url``, wait for ``ready`` (and the ``loaded`` condition), hover every
    feature; what the page shows, after checking it broke no policy."""
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector(ready)
    if loaded:
        wait_for(page, loaded)
    folder = os.environ.get("GRIDMAP_SCREENSHOTS")
    if folder:  # the map as drawn, before every tooltip is opened over it
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
    seen = page.evaluate(HOVER)
    assert seen["violations"] == [], (url, seen["violations"])
    assert seen["javascriptLinks"] == 0, url
    return seen


def _sign_in(page, base: str, token: str, next_path: str) -> None:
    page.goto(f"{base}/signin?next={urllib.parse.quote(next_path)}")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def _literal(texts: list[str], payload: str) -> bool:
    return any(payload in t for t in texts)


def test_planted_payloads_never_run_on_any_page(browser, demo_db_url, demo_engine, demo_tokens):
    _plant(demo_engine)
    with session_scope(demo_engine) as session:
        planner = create_token(session, PAYLOADS[0], "planner")
        staff = create_token(session, PAYLOADS[3], "staff")
    with serving(demo_db_url) as base:
        plan_id = _plan(demo_engine, base, demo_tokens["planner"])
        page, problems = _watched(browser, base)

        grids = _visit(
            page,
            f"{base}/maps/grids?area={STREET}&layers=grids,labels,stations,roads,findings",
            "grids",
        )
        assert page.locator("path.leaflet-interactive").count() > 20  # the map draws
        for payload in PAYLOADS:
            assert _literal(grids["labels"], payload), payload  # grid names, as text
            assert _literal(grids["tooltips"], payload), payload  # grids and stations
        assert _literal(grids["tooltips"], CODE_PAYLOAD)
        assert not _literal(grids["tooltips"], "网格员")  # no worker names for viewers

        by_place = _visit(page, f"{base}/maps/grids?area={COMMUNITY}&colour=place", "by-place")
        assert _literal(by_place["labels"], PAYLOADS[0])

        embed = _visit(page, f"{base}/embed/grids?area={STREET}", "embed-grids")
        assert _literal(embed["labels"], PAYLOADS[0])

        coverage = _visit(
            page, f"{base}/maps/coverage?area={STREET}&kind=canteen&sites=2", "coverage"
        )
        assert _literal(coverage["tooltips"], CODE_PAYLOAD)  # building codes
        assert _literal(coverage["tooltips"], "建议站点")
        _visit(page, f"{base}/embed/coverage?area={STREET}&kind=elderly_care", "embed-coverage")

        plan = _visit(page, f"{base}/maps/plans/{plan_id}", "plan")
        assert _literal(plan["tooltips"], PAYLOADS[0])  # a planned grid's note
        for payload in PAYLOADS:
            assert _literal(plan["summary"], payload), payload  # the plan's notes

        home = _visit(page, f"{base}/", "home", ready="table")
        for payload in PAYLOADS:  # the street's and communities' names, as text
            assert payload in home["body"], payload
        _visit(page, f"{base}/embed?area={STREET}&layers=grids", "snippet", ready="textarea")
        assert CODE_PAYLOAD not in page.inner_text("textarea")
        _visit(page, f"{base}/api/v1/docs", "api-docs", ready=".opblock")
        _visit(page, f"{base}/signin", "signin", ready="form")

        # Staff see worker names, signed in with a token whose own name is a payload.
        _sign_in(page, base, staff, f"/maps/grids?area={STREET}")
        staffed = _visit(page, f"{base}/maps/grids?area={STREET}", "grids-staff")
        assert _literal(staffed["tooltips"], "网格员")
        for payload in PAYLOADS:
            assert _literal(staffed["tooltips"], payload), payload
        who = _visit(page, f"{base}/signin", "signin-staff", ready="form")
        assert PAYLOADS[3] in who["body"]
        page.context.clear_cookies()

        # The editor, signed in as a planner; hovering shows codes and names as text.
        _sign_in(page, base, planner, "/signin")
        editor = _visit(
            page,
            f"{base}/editor?area={COMMUNITY}",
            "editor",
            loaded="window.gridmapEditorLayers.grids.getLayers().length > 0",
        )
        assert PAYLOADS[0] in editor["panel"][0]  # who is signed in: the token's name
        with demo_engine.connect() as conn:
            shown = (
                conn.execute(
                    text(
                        "SELECT g.code || ' ' || g.name FROM grids g JOIN areas a "
                        "ON a.id = g.community_id WHERE a.code = :a AND g.active "
                        "AND g.kind <> 'master'"
                    ),
                    {"a": COMMUNITY},
                )
                .scalars()
                .all()
            )
        assert sorted(editor["tooltips"]) == sorted(shown)  # each grid's code and name, as text
        assert problems == []


def test_the_session_is_an_httponly_cookie_and_cookie_writes_need_the_csrf_token(
    browser, demo_db_url, demo_engine, demo_tokens
):
    grid_id, version = (
        demo_engine.connect()
        .execute(text("SELECT id, version FROM grids WHERE active AND kind = 'general' LIMIT 1"))
        .one()
    )
    patch = """async ([api, id, version, csrf]) => {
        const headers = {"Content-Type": "application/json", "If-Match": '"' + version + '"'};
        if (csrf !== null) { headers["X-CSRF-Token"] = csrf; }
        const r = await fetch(api + "/grids/" + id + "?reason=test", {method: "PATCH",
            headers: headers, body: JSON.stringify({properties: {name: "新名字 new name"}})});
        await r.text();  // read to the end: a body left unread is aborted when the page moves on
        return r.status;
    }"""
    token = demo_tokens["planner"]
    with serving(demo_db_url) as base:
        page, problems = _watched(browser, base)
        _sign_in(page, base, token, f"/editor?area={COMMUNITY}")
        wait_for(page, "window.gridmapEditorLayers.grids.getLayers().length > 0")
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "gridmap_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert token not in cookie["value"]
        assert "gridmap_session" not in page.evaluate("document.cookie")
        storage = page.evaluate(
            "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
        )
        assert storage == "[[],[]]"
        assert token not in page.content()

        api = f"{base}/api/v1"
        assert page.evaluate(patch, [api, grid_id, version, None]) == 403
        assert page.evaluate(patch, [api, grid_id, version, "forged"]) == 403
        with demo_engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT version FROM grids WHERE id = :i"), {"i": grid_id}
                ).scalar()
                == version
            )  # nothing written
        csrf = re.search(r'"csrf": "([^"]+)"', page.content()).group(1)
        assert page.evaluate(patch, [api, grid_id, version, csrf]) == 200

        # Signing out ends the session: the same CSRF token then writes nothing.
        page.click("#gm-signout")
        page.wait_for_selector("#gm-signin:not([hidden])")
        assert "未登录" in page.inner_text("#gm-who")
        assert page.evaluate(patch, [api, grid_id, version + 1, csrf]) == 401
        # The refusals are the test's own; nothing else may fail.
        assert [p for p in problems if not re.search(r"\b40[13]\b", p)] == []


def test_sign_in_and_out(demo_client, demo_engine, demo_tokens):
    token = demo_tokens["planner"]
    # A form posted from another site's page is refused; so is a wrong token.
    foreign = demo_client.post(
        "/signin", data={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert demo_client.get_cookie("gridmap_session") is None
    wrong = demo_client.post("/signin", data={"token": "nope"})
    assert wrong.status_code == 401 and "未知" in wrong.get_data(True)
    # Never sent to another site after signing in.
    answer = demo_client.post(
        "/signin",
        data={"token": token, "next": "//evil.example/"},
        headers={"Origin": "http://localhost"},
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/signin"
    # Browsers drop tabs and newlines from a URL: "/\t/evil.example" is "//evil.example".
    for sneaky in ("/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example/"):
        again = demo_client.post(
            "/signin",
            data={"token": token, "next": sneaky},
            headers={"Origin": "http://localhost"},
        )
        assert again.status_code == 303 and again.headers["Location"] == "/signin"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert token not in cookie

    grid_id, version = (
        demo_engine.connect()
        .execute(text("SELECT id, version FROM grids WHERE active AND kind = 'general' LIMIT 1"))
        .one()
    )
    body = {"properties": {"name": "新名字"}}
    url = f"/api/v1/grids/{grid_id}?reason=test"
    refused = demo_client.patch(url, json=body, headers={"If-Match": f'"{version}"'})
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json" and "CSRF" in refused.get_json()["detail"]
    # A bearer token needs no CSRF token, cookie or not.
    made = demo_client.patch(url, json=body, headers={"If-Match": f'"{version}"', **bearer(token)})
    assert made.status_code == 200

    # Revoking the token ends the session: the editor reads as anonymous again.
    with session_scope(demo_engine) as session:
        assert revoke_token(session, "test-planner")
    editor = demo_client.get(f"/editor?area={COMMUNITY}").get_data(True)
    assert '"who": null' in editor and '"csrf": null' in editor
    assert (
        demo_client.patch(url, json=body, headers={"If-Match": f'"{version + 1}"'}).status_code
        == 401
    )

    # The sign-in page's sign-out form is a write too: it needs the CSRF token.
    demo_client.post("/signin", data={"token": demo_tokens["admin"]})
    page = demo_client.get("/signin").get_data(True)
    assert "已登录" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert demo_client.post("/signout", data={"next": "/signin"}).status_code == 403
    out = demo_client.post("/signout", data={"csrf_token": csrf, "next": "/signin"})
    assert out.status_code == 303 and "已登录" not in demo_client.get("/signin").get_data(True)


@pytest.mark.parametrize(
    "path",
    [
        f"/maps/grids?area={STREET}",
        f"/maps/coverage?area={STREET}&kind=canteen",
        f"/editor?area={STREET}",
        f"/embed/grids?area={STREET}",
        f"/embed/coverage?area={STREET}&kind=canteen",
        f"/embed?area={STREET}",
        "/signin",
        "/api/v1/docs",
        "/api/v1/openapi.json",
        "/maps/grids?area=999",
        "/maps/static/editor.js",
    ],
)
def test_every_answer_sends_the_policy(demo_client, path):
    response = demo_client.get(path)
    _assert_policy(
        response.headers.get("Content-Security-Policy"), embed=path.startswith("/embed/")
    )
    if response.mimetype == "text/html":
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        page = response.get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert all(f'nonce="{nonce}"' in s for s in scripts), scripts
        assert not re.findall(r"<[a-z][^<>]*\son[a-z]+\s*=", page)  # no inline handler


def test_render_writes_text_and_a_policy_of_its_own(browser, demo_db_url, demo_engine, tmp_path):
    _plant(demo_engine)
    out = tmp_path / "grids.html"
    run_cli("render", COMMUNITY, "--staff", "-o", str(out), env=cli_env(demo_db_url))
    html = out.read_text(encoding="utf-8")
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    policy = _policy(meta.group(1).replace("&#39;", "'"))
    nonce = policy["script-src"][0]
    assert nonce.startswith("'nonce-") and "'unsafe-inline'" not in policy["script-src"]
    assert all(nonce[7:-1] in s for s in re.findall(r"<script\b[^>]*>", html))

    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(f"({WATCH})()")
    page.goto(out.as_uri(), wait_until="load")
    page.wait_for_selector(".gridmap-label")
    seen = page.evaluate(HOVER)
    assert dialogs == [] and seen["violations"] == []
    assert _literal(seen["labels"], PAYLOADS[0]) and _literal(seen["tooltips"], PAYLOADS[1])


def test_the_session_key_is_made_once_and_kept_private(tmp_path):
    from api.auth import secret_key

    path = tmp_path / "data" / "secret_key"
    first = secret_key(path)
    assert secret_key(path) == first and len(first) >= 64
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.iterdir()) == [path]  # no draft left behind


def test_an_area_code_that_ends_the_script_stays_text(browser, demo_db_url, demo_engine):
    # The editor writes its area's code into the page's script (as JSON): a code that
    # closes the script element must stay inside the string.
    code = "</script><svg onload=alert(1)>"
    with demo_engine.begin() as conn:
        conn.execute(
            text("UPDATE areas SET code = :c WHERE code = :a"), {"c": code, "a": COMMUNITY}
        )
    area = urllib.parse.quote(code)
    with serving(demo_db_url) as base:
        page, problems = _watched(browser, base)
        editor = _visit(page, f"{base}/editor?area={area}", "editor-area-code")
        assert page.evaluate("window.gridmapEditorLayers !== undefined")  # the script ran whole
        assert "未登录" in editor["panel"][0]
        _visit(page, f"{base}/embed?area={area}", "snippet-area-code", ready="textarea")
        # The iframe code to paste names the area as an escaped attribute.
        assert 'title="&lt;/script&gt;&lt;svg onload=alert(1)&gt; ' in page.input_value("textarea")
        _visit(page, f"{base}/maps/grids?area={area}", "grids-area-code")
        # The API may refuse such a code in its query (that is input checking, not this
        # test's business); what matters is that nothing ran.
        assert [p for p in problems if p.startswith(("dialog", "markup", "policy"))] == []
