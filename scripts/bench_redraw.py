#!/usr/bin/env python3
"""Benchmark gridmap's redraw against PySAL spopt's MaxPHeuristic and GerryChain's
recursive_tree_part, on the same communities, in one run.

Every engine partitions the same units: gridmap's tessellation cells of a
community's residential part (one cell per building site, cut by barrier roads),
with their households and adjacency (gridmap also weighs each shared edge by its
boundary cost: cheaper along barrier roads, dearer through a compound). The peers
get the range's floor (spopt ``threshold``; max-p has no ceiling) or the mean
household target with the epsilon that keeps it inside the range (GerryChain).
Every result is measured by the same code: general grids inside 300-500
households, their spread, compactness (Polsby-Popper), contiguity and the share
of grid boundary on roads. gridmap's full redraw (tessellation, dedicated,
general and micro grids) is timed too.

Instances: the six demo communities, and generated communities of 2,000 and
10,000 buildings (blocks of compounds between barrier roads). Each case runs in
its own process with a time limit.

Usage: ``python scripts/bench_redraw.py [--out docs/benchmarks-redraw.md]``
(peers: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, box, shape

from gridmap.geometry import MetricFrame
from gridmap.redraw.engine import PlannedGrid, RedrawRules, Sites, boundary_costs, redraw
from gridmap.redraw.metrics import household_stats, polsby_popper, road_share
from gridmap.redraw.partition import Partitioner, part_count
from gridmap.redraw.tessellation import tessellate

ROOT = Path(__file__).resolve().parent.parent
LOW, HIGH = 300, 500
SEED = 20261123
CASE_TIMEOUT = 300
ENGINES = ("gridmap", "spopt_maxp", "gerrychain")


# -- instances ----------------------------------------------------------------------


def demo_community(code: str):
    """A demo community from ``data/demo``: boundary, sites and roads in metres."""
    demo = ROOT / "data" / "demo"

    def features(name: str) -> list[dict]:
        return json.loads((demo / name).read_text(encoding="utf-8"))["features"]

    area = next(
        shape(f["geometry"]) for f in features("areas.geojson") if f["properties"]["code"] == code
    )
    frame = MetricFrame(area)
    boundary = frame.to_metric(area)
    rows = [
        f for f in features("buildings.geojson") if area.contains(shape(f["geometry"]).centroid)
    ]
    prints = np.array([frame.to_metric(shape(f["geometry"])) for f in rows], dtype=object)
    sites = Sites(
        [f["properties"]["code"] for f in rows],
        shapely.point_on_surface(prints),
        prints,
        np.array([f["properties"]["households"] for f in rows]),
        [f["properties"]["use"] for f in rows],
        [f["properties"].get("compound") for f in rows],
        [None] * len(rows),
    )
    roads = [
        (frame.to_metric(shape(f["geometry"])), f["properties"].get("barrier", False))
        for f in features("roads.geojson")
        if shape(f["geometry"]).intersects(area)
    ]
    return boundary, sites, [r for r, barrier in roads if barrier], [r for r, _ in roads]


def generated_community(buildings: int):
    """Square blocks of 200 m between barrier roads, each a compound of houses and
    small blocks of flats (1-15 households) on a jittered lattice."""
    rng = np.random.default_rng(SEED + buildings)
    per_block = 64
    blocks = int(np.ceil(buildings / per_block))
    side = int(np.ceil(np.sqrt(blocks)))
    size = 200.0
    boundary = box(0, 0, side * size, side * size)
    barriers = [LineString([(i * size, 0), (i * size, side * size)]) for i in range(1, side)]
    barriers += [LineString([(0, i * size), (side * size, i * size)]) for i in range(1, side)]
    points, prints, compounds = [], [], []
    for b in range(blocks):
        bx, by = (b % side) * size, (b // side) * size
        for k in range(min(per_block, buildings - len(points))):
            x = bx + 12.5 + (k % 8) * 25 + rng.uniform(-3, 3)
            y = by + 12.5 + (k // 8) * 25 + rng.uniform(-3, 3)
            points.append((x, y))
            prints.append(box(x - 6, y - 6, x + 6, y + 6))
            compounds.append(f"C{b}")
    n = len(points)
    sites = Sites(
        [f"B{k}" for k in range(n)],
        shapely.points(np.array(points)),
        np.array(prints, dtype=object),
        rng.integers(1, 16, n),
        ["residential"] * n,
        compounds,
        [None] * n,
    )
    return boundary, sites, barriers, barriers


INSTANCES = {
    **{f"demo {c}": (demo_community, c) for c in [f"510107015{n:03d}" for n in range(1, 7)]},
    "generated 2,000": (generated_community, 2_000),
    "generated 10,000": (generated_community, 10_000),
}


# -- engines on the same cells ------------------------------------------------------


def units(boundary, sites, barriers):
    """The residential cells every engine partitions: weights, adjacency, geometry."""
    tiles = tessellate(boundary, sites.points, sites.footprints, barriers)
    plan = redraw(boundary, sites, barriers)
    dedicated = np.zeros(len(tiles.cells), dtype=bool)
    for grid in plan.grids:
        if grid.kind == "dedicated":
            dedicated[np.unique(tiles.site[grid.buildings])] = True
    keep = np.flatnonzero(~dedicated)
    weights = np.bincount(tiles.site, weights=sites.households, minlength=len(tiles.cells))[keep]
    adjacency = tiles.adjacency[keep][:, keep].tocsr()
    costs = boundary_costs(tiles, sites, RedrawRules())[keep][:, keep].tocsr()
    return tiles.cells[keep], weights, adjacency, costs


def run_gridmap(cells, weights, adjacency, costs):
    centroids = shapely.get_coordinates(shapely.centroid(cells))
    return Partitioner(costs, weights, SEED, centroids=centroids).partition(LOW, HIGH)


def run_spopt(cells, weights, adjacency, costs):
    import geopandas as gpd
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    neighbours = {i: adjacency[i].indices.tolist() for i in range(len(weights))}
    centroids = shapely.get_coordinates(shapely.centroid(cells))
    frame = gpd.GeoDataFrame(
        {"households": weights, "x": centroids[:, 0], "y": centroids[:, 1]}, geometry=list(cells)
    )
    model = MaxPHeuristic(
        frame, W(neighbours, silence_warnings=True), ["x", "y"], "households", LOW, top_n=2
    )
    np.random.seed(SEED)
    model.solve()
    return np.asarray(model.labels_)


def run_gerrychain(cells, weights, adjacency, costs):
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition.initial_partition_generators import recursive_tree_part

    graph = nx.Graph()
    for i, w in enumerate(weights):
        graph.add_node(i, households=float(w))
    coo = adjacency.tocoo()
    graph.add_edges_from((int(a), int(b)) for a, b in zip(coo.row, coo.col, strict=True) if a < b)
    total = float(weights.sum())
    k = part_count(total, LOW, HIGH)
    target = total / k
    epsilon = max(min((HIGH - target) / target, (target - LOW) / target), 0.01)
    chain_graph = Graph.from_networkx(graph)
    assignment = recursive_tree_part(chain_graph, range(k), target, "households", epsilon, rng=SEED)
    labels = np.full(len(weights), -1)
    for node, part in assignment.items():  # keys are GerryChain's own node ids
        labels[chain_graph.original_nx_node_id_for_internal_node_id(node)] = part
    return labels


RUNNERS = {"gridmap": run_gridmap, "spopt_maxp": run_spopt, "gerrychain": run_gerrychain}


def measure(labels, cells, weights, boundary, roads) -> dict:
    grids = []
    for part in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == part)
        geom = shapely.coverage_union_all(cells[members])
        grids.append(PlannedGrid(str(part), "general", geom, members, int(weights[members].sum())))
    stats = household_stats([g.households for g in grids], LOW, HIGH)
    residential = shapely.coverage_union_all(cells)
    return {
        "grids": stats["count"],
        "in_range": stats["in_range"],
        "min": stats["min"],
        "max": stats["max"],
        "cv": stats["cv"],
        "polsby_popper": round(float(np.mean([polsby_popper(g.geometry) for g in grids])), 3),
        "contiguous": round(
            float(np.mean([len(shapely.get_parts(g.geometry)) == 1 for g in grids])), 3
        ),
        "on_roads": road_share(grids, residential, roads),
    }


def case(instance: str, engine: str) -> dict:
    make, arg = INSTANCES[instance]
    boundary, sites, barriers, roads = make(arg)
    if engine == "gridmap_full":
        t = time.perf_counter()
        plan = redraw(boundary, sites, barriers, RedrawRules(seed=SEED))
        seconds = time.perf_counter() - t
        general = [g for g in plan.grids if g.kind == "general"]
        return {
            "seconds": seconds,
            "units": len(sites.codes),
            "grids": len(general),
            "micro": sum(g.kind == "micro" for g in plan.grids),
        }
    cells, weights, adjacency, costs = units(boundary, sites, barriers)
    t = time.perf_counter()
    labels = RUNNERS[engine](cells, weights, adjacency, costs)
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "units": len(cells),
        **measure(np.asarray(labels), cells, weights, boundary, roads),
    }


def run_case(instance: str, engine: str) -> dict:
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--case", instance, engine],
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {CASE_TIMEOUT} s"}
    if child.returncode != 0:
        return {"error": (child.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(child.stdout[child.stdout.rindex("{") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--only", help="Run only instances whose name contains this.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(*args.case)))
        return
    lines = [
        "# Redraw benchmark",
        "",
        f"Run with `python scripts/bench_redraw.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. All engines partition the "
        f"same residential cells into general grids of {LOW}-{HIGH} households; `x gridmap` is "
        "the engine's time over gridmap's partition time in this same run. `full redraw` is "
        "gridmap's whole plan (tessellation, dedicated, general and micro grids).",
        "",
        "| community | units | engine | seconds | x gridmap | grids | in range | min | max | cv "
        "| Polsby-Popper | contiguous | on roads |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for instance in INSTANCES:
        if args.only and args.only not in instance:
            continue
        print(f"{instance} ...", file=sys.stderr)
        full = run_case(instance, "gridmap_full")
        mine = None
        for engine in ENGINES:
            r = run_case(instance, engine)
            if engine == "gridmap":
                mine = r
            if "error" in r:
                lines.append(f"| {instance} | | {engine} | - | - | {r['error']} |||||||")
                continue
            ratio = r["seconds"] / mine["seconds"] if mine and "seconds" in mine else float("nan")
            lines.append(
                f"| {instance} | {r['units']:,} | {engine} | {r['seconds']:.2f} | {ratio:.1f} | "
                f"{r['grids']} | {r['in_range']:.0%} | {r['min']} | {r['max']} | {r['cv']} | "
                f"{r['polsby_popper']:.3f} | {r['contiguous']:.0%} | "
                f"{'-' if r['on_roads'] is None else format(r['on_roads'], '.0%')} |"
            )
        if "error" in full:
            lines.append(f"| {instance} | | full redraw | - | | {full['error']} |||||||")
        else:
            lines.append(
                f"| {instance} | {full['units']:,} buildings | full redraw | {full['seconds']:.2f} "
                f"| | {full['grids']} general, {full['micro']} micro |||||||"
            )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
