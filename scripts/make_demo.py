#!/usr/bin/env python3
"""Write the demo town into ``data/demo/`` as GeoJSON (deterministic for a seed).

The town is one street (街道) of six communities in Chengdu's Wuhou district,
laid out on a lattice of blocks 200 m wide: main roads (barriers) between
communities, local roads (barriers) between compounds, lanes and alleys inside
them. Each block is one compound or one dedicated site:

=====  ==========================================================
code   block
=====  ==========================================================
NB     new-build estate (新建型): towers of 18-32 floors
OLD    old compound (老旧型): six-storey walk-ups
UV     urban village (城中村型): rows of small houses and alleys
WU     work-unit compound (单位型): four- to six-storey blocks
SUB    suburban (城郊型): scattered houses and sheds
SCH, HOS, MKT, ENT, PARK, GOV: school, hospital, market, enterprise, park,
       government compound (专属网格 sites; no households)
=====  ==========================================================

Today's grids are the old coarse layout: one master grid per community and a few
general grids per community of about a thousand households each, one worker each,
that the redraw is meant to replace. About thirty stations are placed unevenly,
so the urban village and the suburban edge have real coverage gaps.

Usage: ``python scripts/make_demo.py [--seed 20261123] [--out data/demo]``
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box, mapping

from gridmap.geometry import as_multipolygon

#: UTM zone 48N, the metric CRS of Chengdu, in which the town is drawn.
UTM_SRID = 32648
#: South-west corner of the street: Wuhou district, Chengdu (lon, lat).
ORIGIN_LONLAT = (104.035, 30.625)
BLOCK_W, BLOCK_H = 200.0, 700.0 / 3
COMMUNITY_COLS, COMMUNITY_ROWS = 4, 3  # blocks per community
DISTRICT_CODE, STREET_SEQ = "510107", "015"
STREET_NAME = "锦华街道"
#: Where buildings may stand: inside the block, clear of roads and the lane.
BUILDING_INSET = 18.0
LANE_INSET = 9.0
DIGITS = 7  # decimal places of lon/lat: about 1 cm

# Communities west to east, then north to south: name, blocks (north row first),
# and today's general grids as lists of block indices (0..11, row-major from NW).
COMMUNITIES = [
    (
        "玉林社区",
        ["NB", "NB", "OLD", "SCH", "NB", "MKT", "OLD", "NB", "OLD", "NB", "NB", "OLD"],
        [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]],
    ),
    (
        "芳草社区",
        ["OLD", "OLD", "WU", "OLD", "HOS", "OLD", "WU", "NB", "OLD", "GOV", "OLD", "OLD"],
        [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9], [10, 11]],
    ),
    (
        "黉门社区",
        ["UV", "UV", "UV", "NB", "UV", "UV", "ENT", "UV", "UV", "SCH", "UV", "SUB"],
        [[0, 1], [2, 3], [4, 5, 8, 9], [6, 10], [7, 11]],
    ),
    (
        "桐梓林社区",
        ["NB", "NB", "NB", "NB", "PARK", "NB", "NB", "SCH", "NB", "NB", "OLD", "NB"],
        [[0, 1, 4], [2, 3], [5, 6], [7, 11], [8, 9, 10]],
    ),
    (
        "双楠社区",
        ["WU", "WU", "OLD", "ENT", "WU", "OLD", "MKT", "OLD", "NB", "OLD", "WU", "OLD"],
        [[0, 4, 8], [1, 5, 9], [2, 3], [6, 7, 10, 11]],
    ),
    (
        "红牌楼社区",
        ["SUB", "SUB", "ENT", "SUB", "UV", "SUB", "ENT", "SUB", "UV", "UV", "SUB", "SUB"],
        [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 10, 11]],
    ),
]
# Stations: kind, community index, block index, capacity (households), hours.
STATIONS = [
    ("party_service_center", 0, 5, 6000, "Mo-Su 09:00-18:00"),
    ("party_service_center", 1, 9, 6000, "Mo-Su 09:00-18:00"),
    ("party_service_center", 2, 3, 6000, "Mo-Fr 09:00-17:30"),
    ("party_service_center", 3, 4, 6000, "Mo-Su 09:00-18:00"),
    ("party_service_center", 4, 6, 6000, "Mo-Su 09:00-18:00"),
    ("party_service_center", 5, 2, 6000, "Mo-Fr 09:00-17:30"),
    ("service_post", 0, 0, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 0, 10, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 1, 1, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 1, 7, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 2, 6, 1500, "Mo-Fr 09:00-17:00"),
    ("service_post", 3, 2, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 3, 9, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 4, 0, 1500, "Mo-Su 08:30-20:00"),
    ("service_post", 4, 8, 1500, "Mo-Su 08:30-20:00"),
    ("canteen", 0, 6, 800, "Mo-Su 10:30-13:00,17:00-19:00"),
    ("canteen", 1, 4, 800, "Mo-Su 10:30-13:00,17:00-19:00"),
    ("canteen", 2, 5, 600, "Mo-Fr 10:30-13:00"),
    ("canteen", 3, 6, 800, "Mo-Su 10:30-13:00,17:00-19:00"),
    ("canteen", 4, 9, 800, "Mo-Su 10:30-13:00,17:00-19:00"),
    ("elderly_care", 0, 8, 600, "Mo-Su 08:00-20:00"),
    ("elderly_care", 1, 2, 600, "Mo-Su 08:00-20:00"),
    ("elderly_care", 1, 10, 600, "Mo-Su 08:00-20:00"),
    ("elderly_care", 3, 11, 600, "Mo-Su 08:00-20:00"),
    ("elderly_care", 4, 4, 600, "Mo-Su 08:00-20:00"),
    ("health_station", 0, 1, 3000, "Mo-Su 08:00-21:00"),
    ("health_station", 1, 5, 3000, "Mo-Su 08:00-21:00"),
    ("health_station", 2, 10, 3000, "Mo-Sa 08:00-18:00"),
    ("health_station", 3, 7, 3000, "Mo-Su 08:00-21:00"),
    ("other", 5, 6, None, "Mo-Fr 09:00-17:00"),
]
STATION_NAMES = {
    "party_service_center": "{c}党群服务中心",
    "service_post": "{c}便民服务站{n}",
    "canteen": "{c}幸福食堂",
    "elderly_care": "{c}养老服务站{n}",
    "health_station": "{c}卫生服务站",
    "other": "{c}综合文化站",
}
PLACE_TYPE_OF_BLOCK = {
    "NB": "new_build",
    "OLD": "old_compound",
    "UV": "urban_village",
    "WU": "work_unit",
    "SUB": "suburban",
}
NB_NAMES = [
    "锦城华府",
    "天府名苑",
    "蓝光花园",
    "翡翠城",
    "南城都汇",
    "棕榈泉",
    "金桂苑",
    "紫荆花园",
    "星河湾",
    "清水河畔",
    "锦绣天府",
    "世纪城",
]
OLD_NAMES = [
    "纺织厂宿舍",
    "机床厂小区",
    "电力小区",
    "粮食局宿舍",
    "铁路新村",
    "建设小区",
    "红星小区",
    "邮电宿舍",
    "水利小区",
    "光华小区",
    "农机厂宿舍",
    "商业局小区",
    "跃进小区",
    "二轻小区",
    "交通小区",
    "文化宫小区",
]
WU_NAMES = [
    "西南设计院家属院",
    "川大家属院",
    "省建三公司宿舍",
    "勘察院家属区",
    "电子所家属院",
    "医药公司宿舍",
]
V_MAIN = ["锦华西路", "锦华中路", "锦华东路", "锦华环路"]
H_MAIN = ["武侯南街", "武侯中街", "武侯北街"]
UV_NAMES = ["簇桥村", "高攀村", "金花村", "机投村", "永丰村", "桂溪村"]
SUB_NAMES = ["苗圃组团", "菜园组团", "河湾组团", "林盘组团", "花木组团"]
SITE_NAMES = {
    "SCH": ["玉林小学", "黉门实验学校", "桐梓林中学"],
    "HOS": ["武侯区人民医院"],
    "MKT": ["玉林农贸市场", "双楠综合市场"],
    "ENT": ["锦华电子科技公司", "天府物流园", "西部制药厂", "蜀锦文创园"],
    "PARK": ["桐梓林公园"],
    "GOV": ["锦华街道办事处"],
}
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐")
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "建国",
    "志强",
    "桂英",
    "红梅",
    "海燕",
]


@dataclass
class Town:
    """Everything the generator makes, in lon/lat (features as GeoJSON dicts)."""

    areas: list[dict] = field(default_factory=list)
    grids: list[dict] = field(default_factory=list)
    buildings: list[dict] = field(default_factory=list)
    stations: list[dict] = field(default_factory=list)
    roads: list[dict] = field(default_factory=list)
    workers: list[dict] = field(default_factory=list)


class Projector:
    """UTM metres relative to the street's corner → rounded lon/lat."""

    def __init__(self) -> None:
        to_utm = Transformer.from_crs(4326, UTM_SRID, always_xy=True)
        self.x0, self.y0 = to_utm.transform(*ORIGIN_LONLAT)
        self.to_lonlat = Transformer.from_crs(UTM_SRID, 4326, always_xy=True)

    def __call__(self, geom: shapely.Geometry) -> shapely.Geometry:
        def project(coords: np.ndarray) -> np.ndarray:
            lon, lat = self.to_lonlat.transform(coords[:, 0] + self.x0, coords[:, 1] + self.y0)
            return np.round(np.column_stack([lon, lat]), DIGITS)

        return shapely.transform(geom, project)


def feature(geom: shapely.Geometry | None, **properties: object) -> dict:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": mapping(geom) if geom is not None else None,
    }


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.project = Projector()
        self.town = Town()
        self.building_seq = 0
        self.names: dict[str, list[str]] = {
            "NB": NB_NAMES,
            "OLD": OLD_NAMES,
            "WU": WU_NAMES,
            "UV": UV_NAMES,
            "SUB": SUB_NAMES,
            **SITE_NAMES,
        }
        self.name_use: dict[str, int] = {}
        n_cols = COMMUNITY_COLS * 3
        n_rows = COMMUNITY_ROWS * 2
        xs = np.arange(n_cols + 1) * BLOCK_W
        ys = np.arange(n_rows + 1) * BLOCK_H
        # Lattice corners projected once, so cells that share a corner share it exactly
        # in lon/lat too and every union of cells tiles without slivers.
        self.corner = {
            (i, j): self.project(Point(x, y)).coords[0]
            for i, x in enumerate(xs)
            for j, y in enumerate(ys)
        }
        self.n_cols, self.n_rows = n_cols, n_rows

    # -- lattice ----------------------------------------------------------------------

    def block_cell(self, col: int, row: int) -> Polygon:
        """The lon/lat quad of block (col, row); row 0 is the southernmost."""
        c = self.corner
        return Polygon([c[col, row], c[col + 1, row], c[col + 1, row + 1], c[col, row + 1]])

    def block_of(self, community: int, index: int) -> tuple[int, int]:
        """Global (col, row) of a community's block ``index`` (row-major from the NW)."""
        ccol, crow = community % 3, 1 - community // 3
        local_row = COMMUNITY_ROWS - 1 - index // COMMUNITY_COLS
        return ccol * COMMUNITY_COLS + index % COMMUNITY_COLS, crow * COMMUNITY_ROWS + local_row

    def block_box(self, col: int, row: int, inset: float = 0.0) -> Polygon:
        """The metric rectangle of a block, shrunk by ``inset`` metres."""
        x, y = col * BLOCK_W, row * BLOCK_H
        return box(x + inset, y + inset, x + BLOCK_W - inset, y + BLOCK_H - inset)

    # -- areas and grids --------------------------------------------------------------

    def make_areas_and_grids(self) -> None:
        street_code = DISTRICT_CODE + STREET_SEQ
        cells = {
            (c, r): self.block_cell(c, r) for c in range(self.n_cols) for r in range(self.n_rows)
        }
        street = shapely.union_all(list(cells.values()))
        self.town.areas.append(
            feature(
                as_multipolygon(street),
                code=street_code,
                name=STREET_NAME,
                level="street",
                parent=None,
            )
        )
        worker_seq = 0
        for ci, (name, blocks, old_grids) in enumerate(COMMUNITIES):
            code = f"{street_code}{ci + 1:03d}"
            community = shapely.union_all([cells[self.block_of(ci, b)] for b in range(12)])
            self.town.areas.append(
                feature(
                    as_multipolygon(community),
                    code=code,
                    name=name,
                    level="community",
                    parent=street_code,
                )
            )
            master_code = f"{code}000"
            self.town.grids.append(
                feature(
                    as_multipolygon(community),
                    code=master_code,
                    name=f"{name}总网格",
                    kind="master",
                    community=code,
                    parent=None,
                    worker=None,
                    place_type=None,
                    dedicated_category=None,
                )
            )
            for gi, members in enumerate(old_grids):
                worker_seq += 1
                worker_code = f"W{worker_seq:03d}"
                self.town.workers.append(
                    {
                        "code": worker_code,
                        "name": self.person_name(),
                        "phone": f"13{self.rng.integers(0, 10)}{self.rng.integers(10**7, 10**8)}",
                    }
                )
                geom = shapely.union_all([cells[self.block_of(ci, b)] for b in members])
                kinds = [blocks[b] for b in members if blocks[b] in PLACE_TYPE_OF_BLOCK]
                place = PLACE_TYPE_OF_BLOCK[Counter(kinds).most_common(1)[0][0]] if kinds else None
                self.town.grids.append(
                    feature(
                        as_multipolygon(geom),
                        code=f"{code}{gi + 1:03d}",
                        name=f"{name}第{gi + 1}网格",
                        kind="general",
                        community=code,
                        parent=master_code,
                        worker=worker_code,
                        place_type=place,
                        dedicated_category=None,
                    )
                )

    def person_name(self) -> str:
        return str(self.rng.choice(SURNAMES)) + str(self.rng.choice(GIVEN))

    # -- roads ------------------------------------------------------------------------

    def make_roads(self) -> None:
        """Main roads between communities and local roads between blocks (all barriers)."""
        width, height = self.n_cols * BLOCK_W, self.n_rows * BLOCK_H
        self.lines: list[tuple[LineString, dict]] = []
        for i in range(self.n_cols + 1):
            main = i % COMMUNITY_COLS == 0
            name = V_MAIN[i // COMMUNITY_COLS] if main else f"锦华{i}巷"
            self.lines.append(
                (
                    LineString([(i * BLOCK_W, 0), (i * BLOCK_W, height)]),
                    {"class": "primary" if main else "residential", "barrier": True, "name": name},
                )
            )
        for j in range(self.n_rows + 1):
            main = j % COMMUNITY_ROWS == 0
            name = H_MAIN[j // COMMUNITY_ROWS] if main else f"桐梓{j}街"
            self.lines.append(
                (
                    LineString([(0, j * BLOCK_H), (width, j * BLOCK_H)]),
                    {
                        "class": "secondary" if main else "residential",
                        "barrier": True,
                        "name": name,
                    },
                )
            )

    def add_lane(self, line: LineString, road_class: str = "service") -> None:
        self.lines.append((line, {"class": road_class, "barrier": False, "name": None}))

    def compound_lanes(self, col: int, row: int) -> None:
        """A loop lane inside a compound with a gate on its west and east sides."""
        loop = self.block_box(col, row, LANE_INSET).exterior
        self.add_lane(LineString(loop.coords))
        mid_y = row * BLOCK_H + BLOCK_H / 2
        x0, x1 = col * BLOCK_W, (col + 1) * BLOCK_W
        self.add_lane(LineString([(x0, mid_y), (x0 + LANE_INSET, mid_y)]))
        self.add_lane(LineString([(x1 - LANE_INSET, mid_y), (x1, mid_y)]))

    def finish_roads(self) -> None:
        """Node every line at its crossings so each road feature is one network edge."""
        geoms = [g for g, _ in self.lines]
        noded = shapely.get_parts(shapely.union_all(geoms))
        tree = shapely.STRtree(geoms)
        for piece in noded:
            midpoint = piece.interpolate(0.5, normalized=True)
            owner = min(
                tree.query(midpoint.buffer(0.01)), key=lambda k: geoms[k].distance(midpoint)
            )
            props = self.lines[owner][1]
            self.town.roads.append(
                feature(
                    self.project(piece),
                    name=props["name"],
                    **{"class": props["class"]},
                    walkable=True,
                    barrier=props["barrier"],
                )
            )

    # -- buildings --------------------------------------------------------------------

    def add_building(
        self,
        footprint: Polygon,
        *,
        households: int,
        floors: int,
        use: str,
        compound: str,
        name: str | None = None,
    ) -> None:
        self.building_seq += 1
        population = int(round(households * self.rng.uniform(2.3, 3.0)))
        self.town.buildings.append(
            feature(
                self.project(footprint),
                code=f"B{self.building_seq:05d}",
                name=name or f"{compound}{self.building_seq % 100 + 1}栋",
                households=households,
                population=population,
                floors=floors,
                use=use,
                compound=compound,
            )
        )

    def lattice_buildings(
        self, col: int, row: int, ncols: int, nrows: int, w: float, h: float, keep: float
    ) -> list[Polygon]:
        inner = self.block_box(col, row, BUILDING_INSET)
        minx, miny, maxx, maxy = inner.bounds
        dx = (maxx - minx) / ncols
        dy = (maxy - miny) / nrows
        out = []
        for i in range(ncols):
            for j in range(nrows):
                if self.rng.random() > keep:
                    continue
                cx = minx + (i + 0.5) * dx + self.rng.uniform(-1, 1) * (dx - w) / 4
                cy = miny + (j + 0.5) * dy + self.rng.uniform(-1, 1) * (dy - h) / 4
                out.append(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        return out

    def compound_name(self, kind: str) -> str:
        """The next unused name for a block of ``kind`` ("…二期" once the list runs out)."""
        names = self.names[kind]
        k = self.name_use[kind] = self.name_use.get(kind, -1) + 1
        phase = k // len(names)
        return names[k % len(names)] + (f"{'一二三四五'[phase]}期" if phase else "")

    def make_block(self, kind: str, col: int, row: int) -> str:
        """Fill one block with the buildings and lanes of its kind; return its name."""
        name = self.compound_name(kind)
        rng = self.rng
        if kind == "NB":
            self.compound_lanes(col, row)
            towers = self.lattice_buildings(col, row, 3, 3, 32, 18, keep=0.9)
            for k, fp in enumerate(towers):
                floors = int(rng.integers(18, 33))
                use = "mixed" if k == 0 else "residential"
                self.add_building(
                    fp,
                    households=floors * int(rng.integers(2, 4)),
                    floors=floors,
                    use=use,
                    compound=name,
                )
        elif kind in ("OLD", "WU"):
            self.compound_lanes(col, row)
            size = (52, 11) if kind == "OLD" else (40, 12)
            spots = self.lattice_buildings(col, row, 2, 7 if kind == "OLD" else 5, *size, keep=0.95)
            if kind == "WU":  # the work unit's own office stands in its first spot
                self.add_building(
                    spots.pop(0),
                    households=0,
                    floors=4,
                    use="office",
                    compound=name,
                    name=f"{name}办公楼",
                )
            for fp in spots:
                floors = int(rng.integers(5, 8)) if kind == "OLD" else int(rng.integers(4, 7))
                units = int(rng.integers(2, 4))
                self.add_building(
                    fp,
                    households=floors * units * 2,
                    floors=floors,
                    use="residential",
                    compound=name,
                )
        elif kind == "UV":
            self.urban_village(col, row, name)
        elif kind == "SUB":
            self.add_lane(
                LineString(
                    [
                        (col * BLOCK_W, row * BLOCK_H + BLOCK_H / 2),
                        ((col + 1) * BLOCK_W, row * BLOCK_H + BLOCK_H / 2),
                    ]
                ),
                "track",
            )
            for fp in self.lattice_buildings(col, row, 5, 6, 14, 11, keep=0.55):
                shed = rng.random() < 0.2
                floors = 1 if shed else int(rng.integers(2, 4))
                self.add_building(
                    fp,
                    households=0 if shed else int(rng.integers(1, 4)),
                    floors=floors,
                    use="other" if shed else "residential",
                    compound=name,
                )
        else:
            self.dedicated_site(kind, col, row, name)
        return name

    def urban_village(self, col: int, row: int, name: str) -> None:
        """Rows of small houses between east-west alleys that reach both side roads."""
        x0, y0 = col * BLOCK_W, row * BLOCK_H
        pitch = 15.0
        alleys = np.arange(y0 + 10.0, y0 + BLOCK_H - 5.0, pitch)
        for y in alleys:
            self.add_lane(LineString([(x0, y), (x0 + BLOCK_W, y)]), "footway")
        for y_low, y_high in zip(alleys[:-1], alleys[1:], strict=True):
            cy = (y_low + y_high) / 2
            x = x0 + 12.0
            while x < x0 + BLOCK_W - 22.0:
                w = float(self.rng.uniform(8, 12))
                if self.rng.random() < 0.85:
                    h = float(self.rng.uniform(7, 9.5))
                    floors = int(self.rng.integers(3, 6))
                    self.add_building(
                        box(x, cy - h / 2, x + w, cy + h / 2),
                        households=int(self.rng.integers(2, floors + 3)),
                        floors=floors,
                        use="residential",
                        compound=name,
                    )
                x += w + float(self.rng.uniform(1.5, 3.0))

    def dedicated_site(self, kind: str, col: int, row: int, name: str) -> None:
        self.compound_lanes(col, row)
        use, count, size, floors = {
            "SCH": ("school", 3, (60, 15), 4),
            "HOS": ("hospital", 4, (50, 24), 9),
            "MKT": ("commercial", 2, (70, 40), 2),
            "ENT": ("industrial", 3, (60, 30), 3),
            "PARK": ("public", 1, (20, 12), 1),
            "GOV": ("public", 2, (50, 18), 5),
        }[kind]
        spots = self.lattice_buildings(col, row, 1, count, *size, keep=1.0)
        for k, fp in enumerate(spots):
            label = {
                "SCH": "教学楼",
                "HOS": "住院楼" if k else "门诊楼",
                "MKT": "市场",
                "ENT": "厂房" if k else "办公楼",
                "PARK": "管理处",
                "GOV": "办公楼",
            }[kind]
            b_use = "office" if kind == "ENT" and k == 0 else use
            self.add_building(
                fp,
                households=0,
                floors=floors,
                use=b_use,
                compound=name,
                name=f"{name}{label}{k + 1 if count > 1 else ''}",
            )

    def make_buildings(self) -> None:
        for ci, (_, blocks, _) in enumerate(COMMUNITIES):
            for bi, kind in enumerate(blocks):
                self.make_block(kind, *self.block_of(ci, bi))

    # -- stations ---------------------------------------------------------------------

    def make_stations(self) -> None:
        per_name: dict[tuple[int, str], int] = {}
        for kind, ci, bi, capacity, hours in STATIONS:
            col, row = self.block_of(ci, bi)
            community = COMMUNITIES[ci][0]
            n = per_name[ci, kind] = per_name.get((ci, kind), 0) + 1
            # Just inside the block's south-west corner, between the road and the lane.
            spot = Point(col * BLOCK_W + 13.0 + 4 * n, row * BLOCK_H + 5.0)
            self.town.stations.append(
                feature(
                    self.project(spot),
                    name=STATION_NAMES[kind].format(c=community, n=n),
                    kind=kind,
                    capacity=capacity,
                    opening_hours=hours,
                    community=f"{DISTRICT_CODE}{STREET_SEQ}{ci + 1:03d}",
                )
            )

    def run(self) -> Town:
        self.make_areas_and_grids()
        self.make_roads()
        self.make_buildings()
        self.finish_roads()
        self.make_stations()
        return self.town


def write(town: Town, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for layer in ("areas", "grids", "buildings", "stations", "roads"):
        collection = {"type": "FeatureCollection", "features": getattr(town, layer)}
        text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
        # One feature a line keeps the files readable and their diffs small.
        text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
        (out / f"{layer}.geojson").write_text(text + "\n", encoding="utf-8")
    with (out / "workers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["code", "name", "phone"])
        writer.writeheader()
        writer.writerows(town.workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "demo"
    )
    args = parser.parse_args()
    town = Generator(args.seed).run()
    write(town, args.out)
    households = sum(f["properties"]["households"] for f in town.buildings)
    population = sum(f["properties"]["population"] for f in town.buildings)
    print(
        f"{len(town.areas)} areas, {len(town.grids)} grids, {len(town.buildings)} buildings "
        f"({households} households, {population} residents), {len(town.stations)} stations, "
        f"{len(town.roads)} road edges, {len(town.workers)} workers -> {args.out}"
    )


if __name__ == "__main__":
    main()
