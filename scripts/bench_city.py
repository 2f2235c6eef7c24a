#!/usr/bin/env python3
"""Benchmark gridmap's coverage of a street and of a whole city against an analyst's
script, on a generated city in a throwaway PostGIS, in one run.

The city: ``--streets`` streets of ``--communities`` communities (800 m squares, four
general grids each) in ``--districts`` districts under one city, ``--buildings``
buildings (10% of them not homes) with 12 m footprints, a lattice of walkable road
segments every ``--road-spacing`` metres and service posts at road junctions
(``--stations-per-km2``). It is written with COPY, then each case runs in a process of
its own (peak memory is its own):

- gridmap: ``gridmap coverage CODE --kind service_post --method euclidean|network``,
  the command a user runs (its click entry point, in the case's process), from start to
  its printed table;
- gridmap over HTTP: ``GET /api/v1/coverage`` of a running ``gridmap serve`` (its
  default workers), until the answer, or for an area over the job threshold until the
  background job that computes it is done (polled every 0.1 s);
- the peer: a script with geopandas (``read_postgis``, the same bounding-box prefilter,
  ``to_crs`` to the UTM zone, ``sjoin_nearest``) for straight line, and for walking
  ``sjoin_nearest`` of buildings to road segments plus one scipy csgraph multi-source
  Dijkstra pass from the stations.

Every pair must cover the same households (the bench stops otherwise); the table gives
each side's seconds and peak memory and the peer's time over gridmap's.

Usage: ``python scripts/bench_city.py [--streets 20 --communities 10 --buildings 100000]
[--out docs/benchmarks-city.md]`` (peers: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261125
#: Metric frame of the generated city (UTM 48N, about 104° E, 30.5° N: Chengdu).
UTM = 32648
ORIGIN = (400_000.0, 3_375_000.0)
COMMUNITY_M = 800.0
KIND = "service_post"
#: GB 50180-2018's 10-minute walk, and the straight-line detour factor (the settings').
CIRCLE_M, DETOUR = 500.0, 1.3
#: Buildings farther than this from every road are not joined (gridmap's setting).
MAX_CONNECTOR_M = 300.0
CASE_TIMEOUT = 1200


# -- the city ------------------------------------------------------------------------


@dataclass
class City:
    """A generated city in lon/lat: areas (code, name, level, parent code, polygon),
    grids, buildings, stations and roads."""

    areas: list[tuple[str, str, str, str | None, shapely.Geometry]]
    grids: list[tuple[str, str, shapely.Geometry]]  # code, community code, polygon
    building_points: np.ndarray
    building_footprints: np.ndarray
    households: np.ndarray
    stations: np.ndarray
    roads: np.ndarray

    @property
    def street_codes(self) -> list[str]:
        return [a[0] for a in self.areas if a[2] == "street"]


def _to_lonlat(geoms: np.ndarray) -> np.ndarray:
    forward = Transformer.from_crs(UTM, 4326, always_xy=True)

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(forward.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(geoms, project)


def make_city(
    streets: int = 20,
    communities: int = 10,
    buildings: int = 100_000,
    districts: int = 2,
    road_spacing_m: float = 80.0,
    stations_per_km2: float = 1.5,
    seed: int = SEED,
) -> City:
    """A city of ``streets`` x ``communities`` square communities, with buildings spread
    evenly over the communities, a road lattice and service posts at road junctions.

    Codes: city ``C``, districts ``C01``, streets ``C01S01``, communities ``C01S01C01``,
    grids the community's code and ``G1``-``G4``, buildings ``B0000001``.
    """
    rng = np.random.default_rng(seed)
    cols = math.ceil(math.sqrt(communities))
    rows = math.ceil(communities / cols)
    street_cols = math.ceil(math.sqrt(streets))
    squares: list[tuple[int, int, float, float]] = []  # street, community, x0, y0
    for s in range(streets):
        sx = ORIGIN[0] + (s % street_cols) * cols * COMMUNITY_M
        sy = ORIGIN[1] + (s // street_cols) * rows * COMMUNITY_M
        for c in range(communities):
            squares.append((s, c, sx + (c % cols) * COMMUNITY_M, sy + (c // cols) * COMMUNITY_M))
    boxes = _to_lonlat(
        np.array([shapely.box(x, y, x + COMMUNITY_M, y + COMMUNITY_M) for _, _, x, y in squares])
    )
    district_of = [s * districts // streets for s in range(streets)]
    street_code = [f"C{district_of[s] + 1:02d}S{s + 1:02d}" for s in range(streets)]
    areas: list[tuple[str, str, str, str | None, shapely.Geometry]] = []
    areas.append(("C", "generated city", "city", None, shapely.union_all(boxes)))
    for d in range(districts):
        mine = [k for k, sq in enumerate(squares) if district_of[sq[0]] == d]
        areas.append(
            (f"C{d + 1:02d}", f"district {d + 1}", "district", "C", shapely.union_all(boxes[mine]))
        )
    for s in range(streets):
        mine = [k for k, sq in enumerate(squares) if sq[0] == s]
        areas.append(
            (
                street_code[s],
                f"street {s + 1}",
                "street",
                f"C{district_of[s] + 1:02d}",
                shapely.union_all(boxes[mine]),
            )
        )
    grids_m, grid_of = [], []
    for k, (s, c, x, y) in enumerate(squares):
        code = f"{street_code[s]}C{c + 1:02d}"
        areas.append((code, f"community {code}", "community", street_code[s], boxes[k]))
        half = COMMUNITY_M / 2
        for g, (gx, gy) in enumerate(((0, 0), (half, 0), (0, half), (half, half))):
            grids_m.append(shapely.box(x + gx, y + gy, x + gx + half, y + gy + half))
            grid_of.append((f"{code}G{g + 1}", code))
    grid_shapes = _to_lonlat(np.array(grids_m))
    grids = [(g, c, p) for (g, c), p in zip(grid_of, grid_shapes, strict=True)]

    # Buildings: evenly over the communities, inside their squares.
    which = rng.integers(0, len(squares), buildings)
    corner = np.array([(x, y) for _, _, x, y in squares])[which]
    xy = corner + rng.uniform(15, COMMUNITY_M - 15, (buildings, 2))
    points = _to_lonlat(shapely.points(xy))
    footprints = _to_lonlat(shapely.box(xy[:, 0] - 6, xy[:, 1] - 6, xy[:, 0] + 6, xy[:, 1] + 6))
    households = np.where(rng.random(buildings) < 0.1, 0, rng.integers(1, 80, buildings))

    # Roads: a lattice over the city's extent, one feature per segment.
    width = street_cols * cols * COMMUNITY_M
    height = math.ceil(streets / street_cols) * rows * COMMUNITY_M
    xs = ORIGIN[0] + np.arange(0, width + 1, road_spacing_m)
    ys = ORIGIN[1] + np.arange(0, height + 1, road_spacing_m)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    starts, ends = [], []
    for di, dj in ((1, 0), (0, 1)):
        a = np.column_stack(
            [
                gx[: gx.shape[0] - di, : gx.shape[1] - dj].ravel(),
                gy[: gx.shape[0] - di, : gx.shape[1] - dj].ravel(),
            ]
        )
        b = np.column_stack([gx[di:, dj:].ravel(), gy[di:, dj:].ravel()])
        starts.append(a)
        ends.append(b)
    start, end = np.concatenate(starts), np.concatenate(ends)
    roads = _to_lonlat(shapely.linestrings(np.stack([start, end], axis=1)))
    junctions = np.column_stack([gx.ravel(), gy.ravel()])
    n_stations = max(1, round(stations_per_km2 * width * height / 1e6))
    chosen = junctions[rng.choice(len(junctions), n_stations, replace=False)]
    stations = _to_lonlat(shapely.points(chosen))
    return City(areas, grids, points, footprints, households, stations, roads)


def _ewkb(geoms) -> list[str]:
    return list(
        shapely.to_wkb(shapely.set_srid(np.asarray(geoms), 4326), hex=True, include_srid=True)
    )


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def load_city(connection, city: City) -> None:
    """Write the city into a migrated gridmap database (psycopg2 connection; committed)."""
    with connection.cursor() as cur:
        ids: dict[str, int] = {}
        for code, name, level, parent, geom in city.areas:
            cur.execute(
                "INSERT INTO areas (code, name, level, parent_id, geom) "
                "VALUES (%s, %s, %s, %s, ST_Multi(ST_GeomFromEWKB(decode(%s, 'hex')))) "
                "RETURNING id",
                (code, name, level, ids.get(parent), _ewkb([geom])[0]),
            )
            ids[code] = cur.fetchone()[0]
        _copy(
            cur,
            "grids",
            ["code", "name", "kind", "community_id", "geom"],
            (
                (code, code, "general", ids[community], wkb)
                for (code, community, _), wkb in zip(
                    city.grids,
                    _ewkb(shapely.multipolygons([[g] for _, _, g in city.grids])),
                    strict=True,
                )
            ),
        )
        n = len(city.households)
        uses = np.where(city.households > 0, "residential", "commercial")
        _copy(
            cur,
            "buildings",
            ["code", "footprint", "point", "households", "population", "use"],
            zip(
                [f"B{k + 1:07d}" for k in range(n)],
                _ewkb(city.building_footprints),
                _ewkb(city.building_points),
                city.households.tolist(),
                (city.households * 3).tolist(),
                uses.tolist(),
                strict=True,
            ),
        )
        _copy(
            cur,
            "stations",
            ["name", "kind", "geom"],
            ((f"post {k + 1}", KIND, wkb) for k, wkb in enumerate(_ewkb(city.stations))),
        )
        _copy(
            cur,
            "roads",
            ["class", "walkable", "geom"],
            (("residential", True, wkb) for wkb in _ewkb(city.roads)),
        )
        cur.execute("ANALYZE")
    connection.commit()


# -- the peer: an analyst's geopandas script ---------------------------------------------


def _prefilter(table: str, column: str) -> str:
    """The analyst's SQL for rows within 500 m of the area: a box in degrees, then metres."""
    return (
        f"{table}.{column} && ST_Expand(a.geom, 500 / 110000.0, "
        f"500 / (110000.0 * cos(radians(greatest(abs(ST_YMin(a.geom)), abs(ST_YMax(a.geom))) "
        f"+ 0.01)))) AND ST_DWithin(Geography({table}.{column}), Geography(a.geom), 500)"
    )


def peer_coverage(url: str, code: str, method: str) -> dict:
    """Households covered, as an analyst would compute them with geopandas."""
    import geopandas as gpd
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as con:
        area = gpd.read_postgis(
            text("SELECT geom FROM areas WHERE code = :code"), con, params={"code": code}
        )
        crs = area.estimate_utm_crs()
        homes = gpd.read_postgis(
            text(
                "SELECT b.id, b.households, b.point AS geom FROM buildings b "
                "JOIN areas a ON ST_Intersects(b.point, a.geom) "
                "WHERE a.code = :code AND b.households > 0"
            ),
            con,
            params={"code": code},
        ).to_crs(crs)
        posts = gpd.read_postgis(
            text(
                "SELECT s.id, s.geom FROM stations s, areas a "
                f"WHERE a.code = :code AND s.kind = :kind AND {_prefilter('s', 'geom')}"
            ),
            con,
            params={"code": code, "kind": KIND},
        ).to_crs(crs)
        if method == "euclidean":
            joined = gpd.sjoin_nearest(homes, posts, distance_col="d")
            walk = joined.groupby(level=0)["d"].first() * DETOUR
        else:
            roads = gpd.read_postgis(
                text(
                    "SELECT r.id, r.geom FROM roads r, areas a "
                    f"WHERE a.code = :code AND r.walkable AND {_prefilter('r', 'geom')}"
                ),
                con,
                params={"code": code},
            ).to_crs(crs)
            walk = _network_walk(homes, posts, roads)
    engine.dispose()
    covered = walk.reindex(homes.index).fillna(np.inf).to_numpy() <= CIRCLE_M
    return {
        "buildings": int(len(homes)),
        "households": int(homes["households"].sum()),
        "households_covered": int(homes["households"].to_numpy()[covered].sum()),
    }


def _network_walk(homes, posts, roads):
    """Walking metres from each home to its nearest post: homes and posts join their
    nearest road segment; one csgraph Dijkstra pass from every post."""
    import geopandas as gpd
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    coords = shapely.get_coordinates(roads.geometry.values)
    first, last = coords[0::2], coords[1::2]  # two-point segments
    keys = np.round(np.concatenate([first, last]) / 0.01).astype(np.int64)
    _, node = np.unique(keys, axis=0, return_inverse=True)
    node = node.ravel()
    m = len(roads)
    u, v = node[:m], node[m:]
    length = roads.length.to_numpy()
    n_nodes = int(node.max()) + 1
    lines = roads.reset_index(drop=True)

    def join(points):
        joined = gpd.sjoin_nearest(points, lines, distance_col="c")
        joined = joined[~joined.index.duplicated()]
        edge = joined["index_right"].to_numpy()
        offset = shapely.line_locate_point(lines.geometry.values[edge], joined.geometry.values)
        return joined.index, edge, offset, joined["c"].to_numpy()

    _, s_edge, s_off, s_conn = join(posts)
    n_posts = len(posts)
    source = n_nodes + np.arange(n_posts)
    graph = coo_matrix(
        (
            np.concatenate([length, length, s_conn + s_off, s_conn + length[s_edge] - s_off]),
            (
                np.concatenate([u, v, source, source]),
                np.concatenate([v, u, u[s_edge], v[s_edge]]),
            ),
        ),
        shape=(n_nodes + n_posts,) * 2,
    ).tocsr()
    dist = dijkstra(graph, directed=False, indices=source, min_only=True)
    index, edge, offset, conn = join(homes)
    walk = conn + np.minimum(dist[u[edge]] + offset, dist[v[edge]] + length[edge] - offset)
    walk[conn > MAX_CONNECTOR_M] = np.inf
    return pd.Series(walk, index=index)


# -- gridmap: the command a user runs ----------------------------------------------------


def gridmap_coverage(url: str, code: str, method: str) -> dict:
    """Households covered, from ``gridmap coverage``'s printed total (the command runs in
    this process, so its peak memory is this process's)."""
    import contextlib

    os.environ["GRIDMAP_DATABASE_URL"] = url
    from gridmap.cli import main as gridmap

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        gridmap(["coverage", code, "--kind", KIND, "--method", method], standalone_mode=False)
    out = printed.getvalue()
    total = [line.split() for line in out.splitlines() if line.startswith("total ")][-1]
    if f", {method})" not in out.splitlines()[0]:
        raise RuntimeError(f"gridmap measured otherwise: {out.splitlines()[0]}")
    return {
        "buildings": int(total[1]),
        "households": int(total[3]),
        "households_covered": int(total[4]),
    }


def http_coverage(base: str, code: str, method: str) -> dict:
    """Households covered, asked of a running ``gridmap serve`` over HTTP: the answer,
    or for a large area the background job's (polled until done), and the seconds."""
    import urllib.request

    def get(path: str) -> tuple[int, dict, dict]:
        with urllib.request.urlopen(base + path, timeout=CASE_TIMEOUT) as response:
            return response.status, dict(response.headers), json.loads(response.read())

    started = time.perf_counter()
    status, headers, body = get(f"/api/v1/coverage?area={code}&kind={KIND}&method={method}")
    while status == 202 or body.get("status") in ("queued", "running"):
        time.sleep(0.1)
        status, _, body = get(headers.get("Location") or headers["location"])
        if body.get("status") == "failed":
            raise RuntimeError(f"the coverage job failed: {body.get('error')}")
    seconds = time.perf_counter() - started
    answer = body.get("result", body)
    if answer["method"] != method:
        raise RuntimeError(f"gridmap measured otherwise: {answer['method']}")
    total = answer["summary"]
    return {
        "buildings": total["buildings"],
        "households": total["households"],
        "households_covered": total["households_covered"],
        "seconds": seconds,
    }


def serving(url: str):
    """``gridmap serve`` on the city's database, on a free port: (process, base URL)."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env["GRIDMAP_DATABASE_URL"] = url
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gridmap"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            return server, base
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gridmap serve did not answer within 60 s")


def run_case(side: str, url: str, code: str, method: str) -> dict:
    """One side's answer, wall-clock seconds and peak memory (MB), in a process of its own."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--case",
            side,
            "--url",
            url,
            "--code",
            code,
            "--method",
            method,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=CASE_TIMEOUT)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{side} {code} {method} failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "seconds": seconds}


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: since its exec, unlike ru_maxrss,
    which keeps the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _case(side: str, url: str, code: str, method: str) -> None:
    answer = (gridmap_coverage if side == "gridmap" else peer_coverage)(url, code, method)
    print(json.dumps({**answer, "peak_mb": _peak_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streets", type=int, default=20)
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--districts", type=int, default=2)
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--road-spacing", type=float, default=80.0)
    parser.add_argument("--stations-per-km2", type=float, default=1.5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _case(args.case, args.url, args.code, args.method)
        return

    import psycopg2
    from sqlalchemy.engine import make_url

    from gridmap.db import migrate
    from gridmap.db.cluster import Cluster
    from gridmap.db.engine import make_engine

    base = Path(tempfile.mkdtemp(prefix="gridmap-bench-city-"))
    base.chmod(0o755)
    cluster = Cluster(base / "pg", durable=False)
    try:
        cluster.start()
        url = cluster.url
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        t = time.perf_counter()
        city = make_city(
            args.streets,
            args.communities,
            args.buildings,
            args.districts,
            args.road_spacing,
            args.stations_per_km2,
        )
        made = time.perf_counter() - t
        parts = make_url(url)
        with psycopg2.connect(
            host=parts.host,
            port=parts.port,
            user=parts.username,
            password=parts.password,
            dbname=parts.database,
        ) as connection:
            t = time.perf_counter()
            load_city(connection, city)
            loaded = time.perf_counter() - t
        print(f"city made in {made:.1f} s, written in {loaded:.1f} s", file=sys.stderr)
        street = city.street_codes[0]
        rows = []
        server, api = serving(url)
        try:
            for label, code in ((f"one street ({street})", street), ("the whole city (C)", "C")):
                for method, name in (("euclidean", "straight line"), ("network", "walking")):
                    mine = run_case("gridmap", url, code, method)
                    theirs = run_case("peer", url, code, method)
                    served = http_coverage(api, code, method)
                    print(
                        f"{name}, {label}: gridmap {mine['seconds']:.1f} s, HTTP "
                        f"{served['seconds']:.1f} s, peer {theirs['seconds']:.1f} s",
                        file=sys.stderr,
                    )
                    for key in ("buildings", "households", "households_covered"):
                        if not mine[key] == served[key] == theirs[key]:
                            raise SystemExit(
                                f"{name}, {label}: {key} {mine[key]} (command), "
                                f"{served[key]} (HTTP) != {theirs[key]} (peer)"
                            )
                    rows.append((f"{name} coverage, {label}", mine, served, theirs))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)

    homes = int((city.households > 0).sum())
    lines = [
        f"# gridmap coverage of a street and a city (generated, {args.buildings:,} buildings)",
        "",
        f"Run with `python scripts/bench_city.py --streets {args.streets} --communities "
        f"{args.communities} --buildings {args.buildings} --road-spacing {args.road_spacing:g} "
        f"--stations-per-km2 {args.stations_per_km2:g}` on {platform.machine()}, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores "
        "(shared). The city: "
        f"{args.streets} streets x {args.communities} communities in {args.districts} "
        f"districts, {args.buildings:,} buildings ({homes:,} homes), {len(city.roads):,} "
        f"road segments, {len(city.stations):,} service posts. gridmap is `gridmap coverage "
        "CODE --kind service_post --method ...` from start to its table; the peer is a "
        "geopandas script (read_postgis with the same box prefilter, sjoin_nearest; for "
        "walking, sjoin_nearest to the road segments and one scipy csgraph Dijkstra pass). "
        "Each runs in its own process (imports included); peak memory is that process's "
        "VmHWM. HTTP is `GET /api/v1/coverage` of a running `gridmap serve`, to the answer "
        "(an area over the job threshold: to its background job's result). Every row "
        "covered the same households in all three (the bench stops otherwise). Ratio: the "
        "peer's time over gridmap's (above 1: gridmap is faster).",
        "",
        "| work | buildings | households covered | gridmap command s | peak MB | "
        "gridmap HTTP s | peer script s | peak MB | ratio command | ratio HTTP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for title, mine, served, theirs in rows:
        lines.append(
            f"| {title} | {mine['buildings']:,} | {mine['households_covered']:,} of "
            f"{mine['households']:,} | {mine['seconds']:.1f} | {mine['peak_mb']:.0f} | "
            f"{served['seconds']:.1f} | {theirs['seconds']:.1f} | {theirs['peak_mb']:.0f} | "
            f"{theirs['seconds'] / mine['seconds']:.1f} | "
            f"{theirs['seconds'] / served['seconds']:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
