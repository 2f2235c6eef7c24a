"""Reports: coverage and workload per grid and community as CSV and Excel, with names,
subtotals and the total, checked against SQL written here; worker names for staff only;
formula-like names stay text.

The coverage figures are straight-line coverage (method=euclidean) of the demo town,
whose UTM zone (48N, EPSG:32648) is the frame gridmap measures in, so SQL measuring
in it finds every building's nearest station independently.
"""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pytest
from sqlalchemy import text

from gridmap.settings import CoverageRules
from tests.helpers import bearer, cli_env, run_cli

STREET = "510107015"
KIND = "service_post"
COVERAGE = f"/api/v1/coverage?area={STREET}&kind={KIND}&method=euclidean"
WORKLOAD_URL = f"/api/v1/reports/workload?area={STREET}"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FIGURES = ["住宅楼栋数", "覆盖楼栋数", "户数", "覆盖户数", "人口", "覆盖人口"]
WORKLOAD = ["楼栋数", "户数", "其中估算户数", "常住人口", "服务站点数"]

#: Per residential building (households > 0): its general or dedicated grid, its
#: community, and whether a service post is within 500 m x detour by straight line.
COVERAGE_SQL = """
WITH homes AS (
  SELECT b.id, b.households, b.population,
    (SELECT min(g.code) FROM grids g WHERE g.active AND g.kind IN ('general', 'dedicated')
       AND ST_Intersects(g.geom, b.point)) AS grid,
    (SELECT min(a.code) FROM areas a WHERE a.level = 'community'
       AND ST_Intersects(a.geom, b.point)) AS community,
    (SELECT min(ST_Distance(ST_Transform(b.point, 32648), ST_Transform(s.geom, 32648)))
       FROM stations s WHERE s.kind = :kind) * :detour <= :reach AS covered
  FROM buildings b WHERE b.households > 0 AND ST_Intersects(b.point,
    (SELECT geom FROM areas WHERE code = :street))
)
SELECT {key} AS key, count(*), count(*) FILTER (WHERE covered),
  sum(households), coalesce(sum(households) FILTER (WHERE covered), 0),
  sum(population), coalesce(sum(population) FILTER (WHERE covered), 0)
FROM homes GROUP BY 1
"""


def coverage_by(engine, key: str) -> dict[str | None, list[int]]:
    """The six coverage figures grouped by ``grid``, ``community`` or ``'all'``."""
    rules = CoverageRules()
    with engine.connect() as conn:
        rows = conn.execute(
            text(COVERAGE_SQL.format(key=key)),
            {
                "kind": KIND,
                "street": STREET,
                "detour": rules.detour_factor,
                "reach": rules.circle_metres(10),
            },
        ).all()
    return {r[0]: [int(v) for v in r[1:]] for r in rows}


def names(engine) -> tuple[dict[str, tuple[str, str, str | None]], dict[str, str]]:
    """Grid code -> (grid name, community code, worker name); community code -> name."""
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT g.code, g.name, a.code, w.name FROM grids g "
                "JOIN areas a ON a.id = g.community_id LEFT JOIN workers w ON w.id = g.worker_id "
                "WHERE g.active AND g.kind IN ('general', 'dedicated')"
            )
        ).all()
        communities = conn.execute(
            text("SELECT code, name FROM areas WHERE level = 'community'")
        ).all()
    return {g: (n, c, w) for g, n, c, w in grids}, dict(communities)


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark, for Excel
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))


def read_xlsx(response) -> tuple[list[dict], openpyxl.worksheet.worksheet.Worksheet]:
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == XLSX
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]], sheet


def check_coverage_rows(rows: list[dict], engine, workers: bool) -> None:
    """Every row of a coverage report against the SQL above, by kind of row."""
    by_grid, by_community, total = (
        coverage_by(engine, "grid"),
        coverage_by(engine, "community"),
        coverage_by(engine, "'all'")["all"],
    )
    grids, communities = names(engine)

    def figures(row):
        return [int(row[c]) for c in FIGURES]

    seen_grids, seen_communities = set(), set()
    for row in rows[:-1]:
        community = row["社区编码"]
        assert row["社区名称"] == communities[community]
        if row["网格名称"] == "小计":
            assert figures(row) == by_community[community]
            seen_communities.add(community)
            continue
        if row["网格名称"] == "未划入网格":
            continue
        grid = row["网格编码"]
        name, grid_community, worker = grids[grid]
        assert (row["网格名称"], community) == (name, grid_community)
        assert figures(row) == by_grid[grid]
        households, covered = by_grid[grid][2], by_grid[grid][3]
        assert float(row["户数覆盖率(%)"]) == pytest.approx(round(100 * covered / households, 1))
        if workers:
            assert (row["网格员"] or None) == worker
        else:
            assert "网格员" not in row
        seen_grids.add(grid)
    assert seen_grids == {g for g in by_grid if g is not None}
    assert seen_communities == {c for c in by_community if c is not None}
    last = rows[-1]
    assert (last["社区编码"], last["网格名称"]) == (STREET, "合计")
    assert figures(last) == total
    # Grids and the loose buildings of a community add up to its subtotal.
    for community in seen_communities:
        parts = [
            figures(r) for r in rows[:-1] if r["社区编码"] == community and r["网格名称"] != "小计"
        ]
        assert [sum(c) for c in zip(*parts, strict=True)] == by_community[community]


def test_coverage_csv_per_grid_with_names_subtotals_and_total(
    demo_client, demo_tokens, demo_engine
):
    response = demo_client.get(COVERAGE + "&format=csv", headers=bearer(demo_tokens["staff"]))
    rows = read_csv(response)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"coverage-{STREET}-{KIND}-10min.csv" in disposition
    assert list(rows[0])[:5] == ["社区编码", "社区名称", "网格编码", "网格名称", "网格员"]
    check_coverage_rows(rows, demo_engine, workers=True)


def test_coverage_xlsx_has_numbers_and_the_same_figures(demo_client, demo_tokens, demo_engine):
    response = demo_client.get(COVERAGE, headers={**bearer(demo_tokens["staff"]), "Accept": XLSX})
    rows, sheet = read_xlsx(response)
    assert '.xlsx"; filename*=UTF-8' in response.headers["Content-Disposition"]
    assert all(isinstance(r["户数"], int) for r in rows)
    check_coverage_rows(rows, demo_engine, workers=True)
    assert [c.value for c in sheet[1]][:4] == ["社区编码", "社区名称", "网格编码", "网格名称"]
    assert sheet.freeze_panes == "A2"


def test_accept_text_csv_gets_csv_and_json_stays_the_default(demo_client):
    assert read_csv(demo_client.get(COVERAGE, headers={"Accept": "text/csv"}))
    plain = demo_client.get(COVERAGE)
    assert plain.mimetype == "application/json" and "grids" in plain.get_json()
    asked = demo_client.get(COVERAGE + "&format=json", headers={"Accept": "text/csv"})
    assert asked.mimetype == "application/json"


def test_viewers_get_no_worker_names(demo_client, demo_tokens, demo_engine):
    grids, _ = names(demo_engine)
    workers = {w for _, _, w in grids.values() if w}
    assert workers
    for headers in ({}, bearer(demo_tokens["viewer"])):
        for url in (COVERAGE + "&format=csv", f"{WORKLOAD_URL}&format=csv"):
            response = demo_client.get(url, headers=headers)
            rows = read_csv(response)
            assert "网格员" not in rows[0]
            body = response.data.decode("utf-8-sig")
            assert not [w for w in workers if w in body]
        for url in (COVERAGE + "&format=xlsx", f"{WORKLOAD_URL}&format=xlsx"):
            rows, sheet = read_xlsx(demo_client.get(url, headers=headers))
            cells = {str(c) for row in sheet.iter_rows(values_only=True) for c in row}
            assert "网格员" not in cells and not cells & workers
    check_coverage_rows(read_csv(demo_client.get(COVERAGE + "&format=csv")), demo_engine, False)


def test_names_that_look_like_formulas_stay_text(demo_client, demo_tokens, demo_engine):
    planted = {
        "grid": '=HYPERLINK("http://example.com","点我")',
        "community": "+1+1",
        "worker": "@SUM(A1:A9)",
        "grid2": "-2+3",
    }
    with demo_engine.begin() as conn:
        for code, name in (("510107015001001", "grid"), ("510107015001002", "grid2")):
            conn.execute(
                text("UPDATE grids SET name = :n WHERE code = :c"), {"n": planted[name], "c": code}
            )
        conn.execute(
            text("UPDATE areas SET name = :n WHERE code = '510107015001'"),
            {"n": planted["community"]},
        )
        conn.execute(
            text("UPDATE workers SET name = :n WHERE code = 'W001'"), {"n": planted["worker"]}
        )
    staff = bearer(demo_tokens["staff"])
    for url in (COVERAGE, WORKLOAD_URL):
        rows = read_csv(demo_client.get(url + "&format=csv", headers=staff))
        cells = {v for row in rows for v in row.values()}
        for value in planted.values():
            assert value not in cells  # never bare at the start of a cell
            assert "'" + value in cells  # the apostrophe makes it text
        response = demo_client.get(url + "&format=xlsx", headers=staff)
        _, sheet = read_xlsx(response)
        values = {c.value: c for row in sheet.iter_rows() for c in row}
        for value in planted.values():
            assert values[value].data_type == "s"  # shown as written, as text
        with zipfile.ZipFile(io.BytesIO(response.data)) as book:
            for name in book.namelist():
                if name.startswith("xl/worksheets/"):
                    assert b"<f>" not in book.read(name) and b"<f " not in book.read(name)


#: Per active general and dedicated grid: buildings, households, estimated households,
#: known residents (NULL when none) and stations standing in it.
WORKLOAD_SQL = """
SELECT g.code,
  (SELECT count(*) FROM buildings b WHERE ST_Intersects(g.geom, b.point)),
  (SELECT coalesce(sum(households), 0) FROM buildings b WHERE ST_Intersects(g.geom, b.point)),
  (SELECT coalesce(sum(households), 0) FROM buildings b
     WHERE ST_Intersects(g.geom, b.point) AND b.households_estimated),
  (SELECT sum(population) FROM buildings b
     WHERE ST_Intersects(g.geom, b.point) AND b.population > 0),
  (SELECT count(*) FROM stations s WHERE ST_Intersects(g.geom, s.geom))
FROM grids g WHERE g.active AND g.kind IN ('general', 'dedicated')
"""


def test_workload_report_against_sql(demo_client, demo_tokens, demo_engine):
    # Some estimated households, and a grid whose residents nobody counted.
    with demo_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE buildings SET households_estimated = true WHERE id % 7 = 0 "
                "AND households > 0"
            )
        )
        conn.execute(
            text(
                "UPDATE buildings b SET population = 0 FROM grids g "
                "WHERE g.code = '510107015002003' AND ST_Intersects(g.geom, b.point)"
            )
        )
        expected = {r[0]: list(r[1:]) for r in conn.execute(text(WORKLOAD_SQL)).all()}
    assert expected["510107015002003"][3] is None
    grids, communities = names(demo_engine)
    url = f"/api/v1/reports/workload?area={STREET}"
    response = demo_client.get(url + "&format=csv", headers=bearer(demo_tokens["staff"]))
    assert f'filename="workload-{STREET}.csv"' in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert list(rows[0]) == ["社区编码", "社区名称", "网格编码", "网格名称", "网格员", *WORKLOAD]

    def figures(row):
        return [int(row[c]) if row[c] != "" else None for c in WORKLOAD]

    by_community: dict[str, list] = {}
    for row in rows[:-1]:
        community = row["社区编码"]
        assert row["社区名称"] == communities[community]
        if row["网格名称"] == "小计":
            by_community[community] = figures(row)
            continue
        grid = row["网格编码"]
        assert (row["网格名称"], community, row["网格员"] or None) == grids[grid]
        assert figures(row) == expected[grid]
    for community in communities:
        members = [v for g, v in expected.items() if grids[g][1] == community]
        sums = [
            sum(v[k] for v in members if v[k] is not None)
            if any(v[k] is not None for v in members)
            else None
            for k in range(5)
        ]
        assert by_community[community] == sums
    assert rows[-1]["网格名称"] == "合计"
    assert figures(rows[-1])[:3] == [sum(v[k] for v in expected.values()) for k in range(3)]
    assert sum(v[2] for v in expected.values()) > 0  # estimates were counted

    body = demo_client.get(url, headers=bearer(demo_tokens["staff"])).get_json()
    assert body["columns"] == list(rows[0]) and len(body["rows"]) == len(rows)
    assert body["kinds"][-1] == "total" and body["kinds"].count("subtotal") == len(communities)
    rows_x, _ = read_xlsx(demo_client.get(url + "&format=xlsx"))  # anonymous: no workers
    assert [r["户数"] for r in rows_x] == [int(r["户数"]) for r in rows]
    assert demo_client.get("/api/v1/reports/workload?area=nowhere").status_code == 404


def test_cli_coverage_and_workload_files(demo_db_url, demo_engine, tmp_path):
    env = cli_env(demo_db_url)
    out_csv, out_xlsx = tmp_path / "coverage.csv", tmp_path / "coverage.xlsx"
    run_cli(
        "coverage", STREET, "--kind", KIND, "--method", "euclidean",
        "--csv", str(out_csv), "--xlsx", str(out_xlsx), env=env,
    )  # fmt: skip
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    check_coverage_rows(rows, demo_engine, workers=True)
    sheet = openpyxl.load_workbook(out_xlsx).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert [r[table[0].index("覆盖户数")] for r in table[1:]] == [int(r["覆盖户数"]) for r in rows]

    report = tmp_path / "workload.xlsx"
    run_cli("report", "workload", "510107015003", "-o", str(report), "--no-workers", env=env)
    sheet = openpyxl.load_workbook(report).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert "网格员" not in table[0]
    with demo_engine.connect() as conn:
        households = conn.execute(
            text(
                "SELECT coalesce(sum(households), 0) FROM buildings b JOIN grids g "
                "ON ST_Intersects(g.geom, b.point) JOIN areas a ON a.id = g.community_id "
                "WHERE a.code = '510107015003' AND g.active AND g.kind IN ('general', 'dedicated')"
            )
        ).scalar()
    assert table[-1][table[0].index("户数")] == households
    assert table[-1][3] == "合计"
    assert "小计" not in [r[3] for r in table]  # a community's report: its total is its subtotal
    wrong = run_cli(
        "report", "workload", STREET, "-o", str(tmp_path / "x.txt"), env=env, check=False
    )
    assert wrong.returncode != 0 and ".csv or .xlsx" in wrong.stderr


def test_buildings_in_no_grid_have_their_row_and_rows_add_up_to_the_subtotal():
    from gridmap.reports import AreaNames, GridInfo, coverage_table, safe_text, to_csv

    def totals(code, buildings, covered, households, households_covered):
        return {
            "code": code,
            "buildings": buildings,
            "buildings_covered": covered,
            "households": households,
            "households_covered": households_covered,
            "population": 3 * households,
            "population_covered": 3 * households_covered,
        }

    grids = {"G1": GridInfo("G1", "一网格", "C1", "张三")}
    names = AreaNames("S", "街道", {"C1": "一社区", "C2": "二社区"}, grids)
    table = coverage_table(
        [totals("G1", 4, 2, 100, 60)],
        [totals("C1", 5, 2, 130, 60), totals("C2", 1, 1, 0, 0)],
        totals(None, 6, 3, 130, 60),
        [totals("C1", 1, 0, 30, 0), totals("C2", 1, 1, 0, 0)],
        names,
        workers=False,
    )
    labels = [(row[0], row[3]) for row in table.rows]
    assert labels == [
        ("C1", "一网格"),
        ("C1", "未划入网格"),
        ("C1", "小计"),
        ("C2", "未划入网格"),
        ("C2", "小计"),
        ("S", "合计"),
    ]
    assert table.kinds == ["grid", "no_grid", "subtotal", "no_grid", "subtotal", "total"]
    assert table.rows[0][6] + table.rows[1][6] == table.rows[2][6] == 130  # households
    assert table.rows[4][-1] is None  # no households: no share, not 0 %
    assert to_csv(table).decode("utf-8-sig").splitlines()[5].endswith(",0,0,0,0,")
    assert [safe_text(v) for v in ("=1", "+1", "-1", "@A1", "\t=1", "一", 5, -5)] == [
        "'=1", "'+1", "'-1", "'@A1", "'\t=1", "一", 5, -5,
    ]  # fmt: skip
