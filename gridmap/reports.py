"""Reports to take away: coverage and workload per grid and community, as tables.

Pure: the tables are built from figures already computed (a coverage's per-grid
and per-community totals, per-grid workload figures) and the names of the area's
communities, grids and workers (:mod:`gridmap.report_store` loads them), and
written as CSV or Excel (``.xlsx``, openpyxl) bytes. Headers are Chinese, since
the readers are street and community staff.

Every table lists each community's grids, then the community's subtotal, and ends
with the area's total. Cells are text and numbers, never formulas: a name that
begins like a formula (``=``, ``+``, ``-``, ``@``) is written so that a spreadsheet
shows it as the text it is (CSV: a leading apostrophe; Excel: a text cell with
the quote prefix).

Example
-------
>>> table = coverage_table(grid_rows, community_rows, total, [], names, workers=False)
>>> path.write_bytes(to_csv(table))
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: What a row of a report is: a grid, buildings in no grid, a community's subtotal,
#: the area's total.
ROW_KINDS = ("grid", "no_grid", "subtotal", "total")
#: Characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection
#: list; tab and carriage return hide one after whitespace).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Media types of the two formats.
CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": CSV_TYPE, "xlsx": XLSX_TYPE}
#: Station kinds in Chinese, for a report's notes.
STATION_KIND_NAMES = {
    "party_service_center": "党群服务中心",
    "service_post": "便民服务站",
    "canteen": "社区食堂",
    "elderly_care": "养老服务站",
    "health_station": "卫生服务站",
    "other": "其他站点",
}
METHOD_NAMES = {"network": "沿路网步行距离", "euclidean": "直线距离乘绕行系数"}


@dataclass(frozen=True)
class GridInfo:
    """A grid as a report names it."""

    code: str
    name: str
    community: str  # community code
    worker: str | None = None  # the worker's name (personal data: staff only)


@dataclass(frozen=True)
class AreaNames:
    """Names of an area (street or community), its communities and their grids."""

    code: str
    name: str
    communities: dict[str, str]  # community code -> name
    grids: dict[str, GridInfo]  # grid code -> grid (general and dedicated grids)


@dataclass
class Table:
    """A report: a header, rows of text and numbers, what each row is, and notes.

    ``notes`` (label, value) describe the question (the station kind, the circle,
    the date); Excel shows them on a sheet of their own, CSV leaves them out so
    that the file is one table.
    """

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, row: list[Any]) -> None:
        """Append a row of ``kind`` (one of :data:`ROW_KINDS`)."""
        self.rows.append(row)
        self.kinds.append(kind)


COVERAGE_FIGURES = (
    ("buildings", "住宅楼栋数"),
    ("buildings_covered", "覆盖楼栋数"),
    ("households", "户数"),
    ("households_covered", "覆盖户数"),
    ("population", "人口"),
    ("population_covered", "覆盖人口"),
)
WORKLOAD_FIGURES = (
    ("buildings", "楼栋数"),
    ("households", "户数"),
    ("households_estimated", "其中估算户数"),
    ("population", "常住人口"),
    ("stations", "服务站点数"),
)
NAME_COLUMNS = ["社区编码", "社区名称", "网格编码", "网格名称"]
WORKER_COLUMN = "网格员"
SHARE_COLUMN = "户数覆盖率(%)"


def _share(households_covered: int, households: int) -> float | None:
    """Households covered as a percentage with one decimal (None without households)."""
    return round(100 * households_covered / households, 1) if households else None


def _name_cells(
    names: AreaNames,
    community: str | None,
    grid: str,
    label: str,
    worker: str | None,
    workers: bool,
) -> list[Any]:
    cells: list[Any] = [community or "", names.communities.get(community or "", ""), grid, label]
    if workers:
        cells.append(worker or "")
    return cells


def _communities(names: AreaNames, *coded: Sequence[dict[str, Any]]) -> list[str]:
    """Community codes in code order: the area's, and any a row names."""
    found = set(names.communities)
    for rows in coded:
        found |= {r["community"] for r in rows if r.get("community")}
    return sorted(found)


def coverage_table(
    grids: Sequence[dict[str, Any]],
    communities: Sequence[dict[str, Any]],
    total: dict[str, Any],
    no_grid: Sequence[dict[str, Any]],
    names: AreaNames,
    workers: bool,
    notes: Sequence[tuple[str, str]] = (),
) -> Table:
    """Coverage per grid with names, community subtotals and the area's total.

    Parameters
    ----------
    grids
        Totals per grid (``code`` and the figures of :data:`COVERAGE_FIGURES`), as
        :meth:`gridmap.coverage.Coverage.by` gives them for the buildings' grids.
    communities
        The same per community (``code``: the community code).
    total
        The same for the whole area (``Coverage.summary``).
    no_grid
        The same for each community's buildings in no grid (``code``: the community).
    names
        Names of the area, its communities, grids and workers.
    workers
        Whether to name each grid's worker (personal data: staff only).
    notes
        The question the table answers, as (label, value).

    Returns
    -------
    Table
        Buildings, households and residents inside the circle, and the share of
        households (per cent, one decimal), per grid, community and area (a
        community's own report has no subtotal beside its total).
    """
    columns = [*NAME_COLUMNS, *([WORKER_COLUMN] if workers else [])]
    table = Table(
        f"{names.name}服务圈覆盖",
        [*columns, *(label for _, label in COVERAGE_FIGURES), SHARE_COLUMN],
        notes=list(notes),
    )

    def figures(row: dict[str, Any]) -> list[Any]:
        values = [int(row[key]) for key, _ in COVERAGE_FIGURES]
        return [*values, _share(row["households_covered"], row["households"])]

    by_grid = {r["code"]: r for r in grids}
    grid_community = {
        code: names.grids[code].community if code in names.grids else None for code in by_grid
    }
    subtotals = {r["code"]: r for r in communities}
    loose = {r["code"]: r for r in no_grid}
    for community in _communities(names, [{"community": c} for c in subtotals]):
        for code in sorted(c for c in by_grid if grid_community[c] == community):
            info = names.grids.get(code)
            cells = _name_cells(
                names, community, code, info.name if info else "", info and info.worker, workers
            )
            table.add("grid", cells + figures(by_grid[code]))
        if community in loose:
            cells = _name_cells(names, community, "", "未划入网格", None, workers)
            table.add("no_grid", cells + figures(loose[community]))
        if community in subtotals and community != names.code:
            cells = _name_cells(names, community, "", "小计", None, workers)
            table.add("subtotal", cells + figures(subtotals[community]))
    for code in sorted(c for c in by_grid if grid_community[c] is None):  # a grid of no community
        cells = _name_cells(names, None, code, "", None, workers)
        table.add("grid", cells + figures(by_grid[code]))
    total_cells = [names.code, names.name, "", "合计"] + ([""] if workers else [])
    table.add("total", total_cells + figures(total))
    return table


def workload_table(
    grids: Sequence[dict[str, Any]],
    names: AreaNames,
    workers: bool,
    notes: Sequence[tuple[str, str]] = (),
) -> Table:
    """Workload per grid with names, community subtotals and the area's total.

    Parameters
    ----------
    grids
        Per grid: ``code`` and the figures of :data:`WORKLOAD_FIGURES` (buildings,
        households, of which estimated, residents or None where no building of the
        grid has a figure, stations standing in it).
    names
        Names of the area, its communities, grids and workers.
    workers
        Whether to name each grid's worker (personal data: staff only).

    Returns
    -------
    Table
        One row per grid, a subtotal per community and the total; residents sum
        the known figures (empty where none is known).
    """
    columns = [*NAME_COLUMNS, *([WORKER_COLUMN] if workers else [])]
    table = Table(
        f"{names.name}网格工作量",
        [*columns, *(label for _, label in WORKLOAD_FIGURES)],
        notes=list(notes),
    )
    keys = [key for key, _ in WORKLOAD_FIGURES]

    def add_up(rows: Sequence[dict[str, Any]]) -> list[Any]:
        sums: list[Any] = []
        for key in keys:
            known = [r[key] for r in rows if r[key] is not None]
            sums.append(int(sum(known)) if known else None)
        return sums

    infos = [(r, names.grids.get(r["code"])) for r in grids]
    for community in _communities(
        names, [{"community": info.community} for _, info in infos if info]
    ):
        rows = sorted(
            (r for r, info in infos if info and info.community == community),
            key=lambda r: r["code"],
        )
        for row in rows:
            info = names.grids[row["code"]]
            cells = _name_cells(names, community, row["code"], info.name, info.worker, workers)
            table.add("grid", cells + add_up([row]))
        if rows and community != names.code:  # a community's report: its total says it
            cells = _name_cells(names, community, "", "小计", None, workers)
            table.add("subtotal", cells + add_up(rows))
    for row, info in infos:
        if info is None:
            cells = _name_cells(names, None, row["code"], "", None, workers)
            table.add("grid", cells + add_up([row]))
    total_cells = [names.code, names.name, "", "合计"] + ([""] if workers else [])
    table.add("total", total_cells + add_up(grids))
    return table


def safe_text(value: Any) -> Any:
    """A cell's value for CSV: text that a spreadsheet would read as a formula gets a
    leading apostrophe (shown as text, apostrophe hidden); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(table: Table) -> bytes:
    """The table as CSV in UTF-8 with a byte order mark, so that Excel on a Chinese
    Windows reads it as UTF-8 (without the mark it reads GBK and garbles the names).

    Empty cells (no figure) are empty fields; formula-like text is neutralised
    (:func:`safe_text`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_text(c) for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if v is None else safe_text(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(table: Table) -> bytes:
    """The table as an Excel workbook: a sheet with the header (bold, frozen), the rows
    (subtotals and the total in bold) and a sheet of notes.

    Every text cell is stored as text with Excel's quote prefix, so a name like
    ``=1+1`` is shown as written and never calculated.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(table.title)
    bold = Font(bold=True)

    def put(row: int, column: int, value: Any, strong: bool = False) -> None:
        cell = sheet.cell(row=row, column=column)
        if isinstance(value, str):
            cell.value = value
            cell.data_type = "s"  # openpyxl would take "=..." as a formula
            cell.quotePrefix = True
        else:
            cell.value = value
        if strong:
            cell.font = bold

    for c, name in enumerate(table.columns, start=1):
        put(1, c, name, strong=True)
    for r, (row, kind) in enumerate(zip(table.rows, table.kinds, strict=True), start=2):
        for c, value in enumerate(row, start=1):
            put(r, c, value, strong=kind in ("subtotal", "total"))
    sheet.freeze_panes = "A2"
    for c, name in enumerate(table.columns, start=1):
        width = max([len(str(name))] + [len(str(row[c - 1] or "")) for row in table.rows])
        sheet.column_dimensions[get_column_letter(c)].width = min(40, 2 * width + 2)
    if table.notes:
        notes = book.create_sheet("说明")
        for r, (label, value) in enumerate(table.notes, start=1):
            for c, text in enumerate((label, value), start=1):
                cell = notes.cell(row=r, column=c, value=text)
                cell.data_type = "s"
                cell.quotePrefix = True
        notes.column_dimensions["A"].width = 16
        notes.column_dimensions["B"].width = 60
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    """A worksheet name Excel accepts: at most 31 characters, none of ``[]:*?/\\``."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return cleaned[:31] or "report"


def write(table: Table, fmt: str) -> bytes:
    """The table in ``fmt`` (``csv`` or ``xlsx``)."""
    if fmt == "csv":
        return to_csv(table)
    if fmt == "xlsx":
        return to_xlsx(table)
    raise ValueError(f"unknown report format {fmt!r}")


def coverage_notes(
    area: AreaNames, kind: str, minutes: float, distance_m: float, method: str, warnings: list[str]
) -> list[tuple[str, str]]:
    """The question a coverage report answers, as (label, value) notes."""
    return [
        ("区域", f"{area.name}（{area.code}）"),
        ("站点类型", f"{STATION_KIND_NAMES.get(kind, kind)}（{kind}）"),
        ("步行时间", f"{minutes:g} 分钟（{distance_m:g} 米）"),
        ("测算方式", METHOD_NAMES.get(method, method)),
        *(("提示", w) for w in warnings),
    ]


def file_name(kind: str, area: str, fmt: str, detail: str | None = None) -> str:
    """A download's file name, e.g. ``coverage-510107015-service_post.csv`` (ASCII, so
    every browser and mail client keeps it)."""
    parts = [kind, area, *([detail] if detail else [])]
    return "-".join(parts) + f".{fmt}"
