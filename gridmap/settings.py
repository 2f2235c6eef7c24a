"""Settings: every tunable number and path in one place, each with its source.

Values come from the environment (``GRIDMAP_*``) with documented defaults, so the
same code runs the embedded database, a test cluster or a city's own PostGIS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

#: The repository (or install) root: ``data/`` and the embedded cluster live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Storage CRS of every geometry column (WGS 84 longitude/latitude).
STORAGE_SRID = 4326
#: CGCS2000, China's geodetic datum; accepted on input and treated as equal to
#: WGS 84 (the two differ by well under a metre, below grid-drawing precision).
CGCS2000_SRID = 4490
#: Input CRSs taken without reprojection.
EQUIVALENT_SRIDS = frozenset({STORAGE_SRID, CGCS2000_SRID})


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Runtime settings of one gridmap process.

    Attributes
    ----------
    database_url
        ``GRIDMAP_DATABASE_URL``: an existing PostGIS to use. ``None`` means the
        embedded cluster in ``pg_dir``.
    pg_dir
        ``GRIDMAP_PG_DIR``: where the embedded cluster keeps its files
        (default ``data/pg`` in the project root, git-ignored).
    pg_bin
        ``GRIDMAP_PG_BIN``: directory of the PostgreSQL server programs
        (default: the newest ``/usr/lib/postgresql/*/bin``).
    demo_dir
        ``GRIDMAP_DEMO_DIR``: the demo town's GeoJSON files.
    max_import_features
        Largest number of features one import may carry.
    """

    database_url: str | None = None
    pg_dir: Path = PROJECT_ROOT / "data" / "pg"
    pg_bin: Path | None = None
    demo_dir: Path = PROJECT_ROOT / "data" / "demo"
    max_import_features: int = 2_000_000

    @classmethod
    def from_env(cls) -> Settings:
        """Read settings from ``GRIDMAP_*`` environment variables."""
        pg_bin = os.environ.get("GRIDMAP_PG_BIN")
        return cls(
            database_url=os.environ.get("GRIDMAP_DATABASE_URL") or None,
            pg_dir=_env_path("GRIDMAP_PG_DIR", PROJECT_ROOT / "data" / "pg"),
            pg_bin=Path(pg_bin) if pg_bin else None,
            demo_dir=_env_path("GRIDMAP_DEMO_DIR", PROJECT_ROOT / "data" / "demo"),
        )


#: The one precision of gridmap's geometry (m): the validator, edits, plans and apply
#: compare polygons in the community's metric frame (its UTM zone) snapped to a grid
#: of this size (``shapely.set_precision``), and the redraw engine cleans its cells
#: with it, so gridmap never refuses its own output.
PRECISION_M = 0.01
#: Pieces of a gap, overlap or part outside nowhere wider than this (m) are drawing
#: noise: a 7 mm sliver along a 410 m edge is 2.9 m², yet no gap a planner could see.
SLIVER_M = 0.05
#: Longest straight segment (m) taken between lon/lat and metres as it is: a straight
#: edge in lon/lat bows by about 6 mm over 410 m in UTM at 60° N, so longer edges are
#: divided before they change frame.
SEGMENT_M = 20.0


@dataclass(frozen=True)
class LayoutRules:
    """What a valid grid layout keeps, with where each number comes from.

    Attributes
    ----------
    household_ranges
        Households per grid by kind, inclusive. General grids: 300-500, a common
        local rule for an urban grid worker's load; micro grids: 30-100, Chengdu's
        micro-grid rule. A community may override them (``areas.household_ranges``).
    overlap_tolerance_m2, gap_tolerance_m2, outside_tolerance_m2
        Areas below these are drawing noise, not findings (1 m²).
    precision_m
        The one precision of every check (:data:`PRECISION_M`): geometries are compared
        in metres, snapped to a grid of this size.
    sliver_m
        A gap, overlap or part outside that is nowhere wider than this is drawing
        noise, however long (:data:`SLIVER_M`).
    split_share
        A building whose footprint lies more than this share outside its grid is
        reported as split between grids.
    grids_per_worker
        General grids one worker may serve ("one grid, one worker").
    snap_tolerance_m
        Vertices this close to a neighbour's boundary snap onto it when a grid is edited.
    """

    household_ranges: tuple[tuple[str, int, int], ...] = (("general", 300, 500), ("micro", 30, 100))
    overlap_tolerance_m2: float = 1.0
    gap_tolerance_m2: float = 1.0
    outside_tolerance_m2: float = 1.0
    split_share: float = 0.05
    grids_per_worker: int = 1
    snap_tolerance_m: float = 0.5
    precision_m: float = PRECISION_M
    sliver_m: float = SLIVER_M

    def household_range(self, kind: str) -> tuple[int, int] | None:
        """The (min, max) households of a grid kind, or ``None`` when it has no range."""
        for name, low, high in self.household_ranges:
            if name == kind:
                return low, high
        return None

    def with_ranges(self, overrides: dict[str, list[int]] | None) -> LayoutRules:
        """These rules with some kinds' household ranges replaced (a community's own)."""
        if not overrides:
            return self
        merged = {name: (low, high) for name, low, high in self.household_ranges}
        merged.update({k: (int(v[0]), int(v[1])) for k, v in overrides.items()})
        return replace(self, household_ranges=tuple((k, lo, hi) for k, (lo, hi) in merged.items()))


#: GB 50180-2018 (urban residential area planning): walking distance of the life
#: circles, in metres, by minutes. The 15-minute circle is 800-1000 m; gridmap takes 1000.
LIFE_CIRCLE_METRES = ((5, 300.0), (10, 500.0), (15, 1000.0))


@dataclass(frozen=True)
class CoverageRules:
    """How far a resident walks to a station, and how straight lines become walks.

    Attributes
    ----------
    walking_speed_m_per_min
        50 m/min: GB 50180-2018's 10-minute circle of 500 m. A building's minutes
        are its walking distance divided by this.
    detour_factor
        Straight-line distance times this estimates the walk where no road
        network is loaded (1.3, a usual urban value).
    max_connector_m
        A building or station farther than this from every walkable road is not
        joined to the network (its distance is unknown, it counts as uncovered).
    gap_buffer_m
        Gap areas are the uncovered residential buildings grown by this much.
    junctions
        Where roads join: ``vertices`` (where they share a vertex, as OpenStreetMap
        ways and clean centrelines do) or ``crossings`` (also where lines cross at
        one level, for centrelines digitised without shared vertices).
    crossing_snap_m
        With ``crossings``: a road's loose end within this of another road is joined
        to it (0.5 m: an undershot T-junction, or an end on a straight lon/lat edge that
        projection to metres bends by millimetres).
    max_off_main_share
        A network whose main piece misses more than this share of the joined
        buildings is broken (roads that do not join where they meet): every answer
        warns, and ``method=auto`` measures by straight line instead. 0.10: the
        Helsinki extract's network leaves 4.5% of buildings off its main piece;
        joined only at way ends, it left 65%.
    """

    walking_speed_m_per_min: float = 50.0
    detour_factor: float = 1.3
    max_connector_m: float = 300.0
    gap_buffer_m: float = 30.0
    junctions: str = "vertices"
    crossing_snap_m: float = 0.5
    max_off_main_share: float = 0.10

    def circle_metres(self, minutes: float) -> float:
        """The walking distance of a ``minutes`` circle: GB 50180-2018's for 5, 10 and
        15 minutes, otherwise minutes times the walking speed."""
        for known, metres in LIFE_CIRCLE_METRES:
            if minutes == known:
                return metres
        return minutes * self.walking_speed_m_per_min


#: Gross floor area per household (m²) by place type, for the household estimate
#: (footprint area x floors / this). Source: China's 2020 census (第七次全国人口普查):
#: housing floor area per person 36.52 m² in cities and 42.29 m² in towns, and
#: 2.62 persons per family household, so 36.52 x 2.62 = 95.7 m² per urban household
#: and 42.29 x 2.62 = 110.8 m² in towns (suburban places). A city with its own
#: figures (a housing survey, the property register) should set them.
FLOOR_AREA_PER_HOUSEHOLD_M2 = {
    "default": 95.7,
    "new_build": 95.7,
    "urban_village": 95.7,
    "old_compound": 95.7,
    "work_unit": 95.7,
    "suburban": 110.8,
}
#: Floors assumed for a residential building whose floors are not known: 6, the most
#: a walk-up block has (GB 50096-2011 requires lifts from the seventh floor), which is
#: what most residential buildings of old compounds, work units and urban villages are.
#: The estimate says when it used this.
ASSUMED_FLOORS = {"default": 6, "suburban": 3}
#: Persons per household for an estimated population (2020 census, 2.62).
PERSONS_PER_HOUSEHOLD = 2.62


@dataclass(frozen=True)
class HouseholdEstimate:
    """How households are estimated where a residential building's data has none.

    Attributes
    ----------
    place_type
        The kind of place the buildings are in (a general grid's place type, or
        ``default``): chooses the figures below.
    floor_area_per_household_m2
        :data:`FLOOR_AREA_PER_HOUSEHOLD_M2` of the place type.
    assumed_floors
        :data:`ASSUMED_FLOORS` of the place type, for buildings with no floors.
    persons_per_household
        :data:`PERSONS_PER_HOUSEHOLD`.
    """

    place_type: str = "default"
    floor_area_per_household_m2: float = FLOOR_AREA_PER_HOUSEHOLD_M2["default"]
    assumed_floors: int = ASSUMED_FLOORS["default"]
    persons_per_household: float = PERSONS_PER_HOUSEHOLD

    @classmethod
    def for_place_type(cls, place_type: str | None) -> HouseholdEstimate:
        """The estimate's figures for one place type (``None``: the default)."""
        key = place_type or "default"
        return cls(
            place_type=key,
            floor_area_per_household_m2=FLOOR_AREA_PER_HOUSEHOLD_M2.get(
                key, FLOOR_AREA_PER_HOUSEHOLD_M2["default"]
            ),
            assumed_floors=ASSUMED_FLOORS.get(key, ASSUMED_FLOORS["default"]),
        )
