#!/usr/bin/env python3
"""Benchmark gridmap's coverage and siting engines against well-known peers, in one run.

Each case runs in a fresh process (so peak memory is its own) on the same data, and
every pair is checked to give the same answer before its time ratio is reported:

- straight-line nearest station: gridmap (scipy cKDTree on arrays) vs geopandas
  ``sjoin_nearest``, 1,000,000 buildings x 10,000 stations;
- walking distance from the nearest station: gridmap (one multi-source csgraph
  pass) vs networkx ``multi_source_dijkstra_path_length`` vs pandana
  ``nearest_pois``, on a lattice town of a few hundred thousand road edges;
- maximal covering: gridmap (HiGHS through scipy.optimize.milp) vs PySAL spopt's
  ``MCLP`` (PuLP + CBC), 5,000 demand points x 500 candidates.

Usage: ``python scripts/bench.py [--scale 1.0] [--out docs/benchmarks.md]``
(peers: ``pip install -e .[bench]``). Times are wall-clock seconds on this machine;
read the ratios, not the seconds, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEED = 20261123


# -- data -------------------------------------------------------------------------


def lattice(side: int, block: float = 80.0):
    """Roads of a ``side`` x ``side`` junction lattice: start and end coordinates."""
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    starts, ends = [], []
    for di, dj in ((1, 0), (0, 1)):
        ok = (i + di < side) & (j + dj < side)
        starts.append(np.column_stack([i[ok], j[ok]]))
        ends.append(np.column_stack([i[ok] + di, j[ok] + dj]))
    return np.concatenate(starts) * block, np.concatenate(ends) * block


def town(scale: float):
    rng = np.random.default_rng(SEED)
    side = max(20, int(400 * np.sqrt(scale)))
    starts, ends = lattice(side)
    extent = (side - 1) * 80.0
    buildings = rng.uniform(0, extent, (int(1_000_000 * scale), 2))
    junctions = np.unique(np.concatenate([starts, ends]), axis=0)
    stations = junctions[rng.choice(len(junctions), int(10_000 * scale), replace=False)]
    return starts, ends, buildings, stations


def siting_instance(scale: float):
    rng = np.random.default_rng(SEED + 1)
    demand = rng.uniform(0, 5000, (max(200, int(5000 * min(scale, 1) ** 0.5)), 2))
    candidates = rng.uniform(0, 5000, (max(40, int(500 * min(scale, 1) ** 0.5)), 2))
    weights = rng.integers(10, 500, len(demand)).astype(float)
    cost = np.hypot(*(demand[:, None, :] - candidates[None, :, :]).transpose(2, 0, 1))
    return cost, weights, 500.0, 10


# -- cases (each runs in its own process) --------------------------------------------


def case_euclid_gridmap(scale):
    from gridmap.coverage.euclidean import nearest_by_air

    _, _, buildings, stations = town(scale)
    t = time.perf_counter()
    distance, _ = nearest_by_air(buildings, stations, 1.0)
    return time.perf_counter() - t, float(np.round(distance, 3).sum())


def case_euclid_geopandas(scale):
    import geopandas as gpd

    _, _, buildings, stations = town(scale)
    t = time.perf_counter()
    left = gpd.GeoDataFrame(geometry=gpd.points_from_xy(buildings[:, 0], buildings[:, 1]))
    right = gpd.GeoDataFrame(geometry=gpd.points_from_xy(stations[:, 0], stations[:, 1]))
    joined = gpd.sjoin_nearest(left, right, distance_col="d")
    distance = joined.groupby(level=0)["d"].first().to_numpy()
    return time.perf_counter() - t, float(np.round(distance, 3).sum())


def _road_graph(scale):
    starts, ends, buildings, stations = town(scale)
    return starts, ends, buildings, stations


def case_network_gridmap(scale, with_buildings=False):
    """Node distances from the nearest station; the same work as the peers do, or
    (``with_buildings``) with every building joined to its nearest edge as well."""
    import shapely

    from gridmap.coverage.network import build_network, nearest_stations

    starts, ends, buildings, stations = _road_graph(scale)
    t = time.perf_counter()
    roads = shapely.linestrings(np.stack([starts, ends], axis=1))
    attached = shapely.points(buildings) if with_buildings else np.array([], dtype=object)
    network = build_network(roads, attached, shapely.points(stations))
    result = nearest_stations(network)
    elapsed = time.perf_counter() - t
    # Junction nodes come first, in the order of their sorted coordinates.
    junctions = np.unique(np.concatenate([starts, ends]), axis=0)
    node_distance = result.distance[: len(junctions)]
    return elapsed, float(np.round(node_distance, 3).sum())


def case_network_gridmap_with_buildings(scale):
    return case_network_gridmap(scale, with_buildings=True)


def _junction_index(starts, ends):
    junctions, inverse = np.unique(np.concatenate([starts, ends]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return junctions, inverse[: len(starts)], inverse[len(starts) :]


def case_network_networkx(scale):
    import networkx as nx

    starts, ends, _, stations = _road_graph(scale)
    junctions, u, v = _junction_index(starts, ends)
    lookup = {tuple(p): k for k, p in enumerate(junctions)}
    t = time.perf_counter()
    graph = nx.Graph()
    graph.add_weighted_edges_from(
        zip(u.tolist(), v.tolist(), np.hypot(*(ends - starts).T).tolist(), strict=True)
    )
    sources = [lookup[tuple(p)] for p in stations]
    lengths = nx.multi_source_dijkstra_path_length(graph, sources)
    distance = np.array([lengths.get(k, np.inf) for k in range(len(junctions))])
    return time.perf_counter() - t, float(np.round(distance, 3).sum())


def case_network_pandana(scale):
    import pandana
    import pandas as pd

    starts, ends, _, stations = _road_graph(scale)
    junctions, u, v = _junction_index(starts, ends)
    t = time.perf_counter()
    net = pandana.Network(
        pd.Series(junctions[:, 0]),
        pd.Series(junctions[:, 1]),
        pd.Series(u),
        pd.Series(v),
        pd.DataFrame({"w": np.hypot(*(ends - starts).T)}),
        twoway=True,
    )
    # Beyond any nearest station here (800 m at full scale; the answers are compared).
    reach = 1_000.0
    net.precompute(reach)
    net.set_pois("station", reach, 1, pd.Series(stations[:, 0]), pd.Series(stations[:, 1]))
    distance = net.nearest_pois(reach, "station", num_pois=1).iloc[:, 0].to_numpy()
    return time.perf_counter() - t, float(np.round(distance, 3).sum())


def case_siting_gridmap(scale):
    from scipy.sparse import csc_matrix

    from gridmap.planning.siting import maximal_covering

    cost, weights, radius, k = siting_instance(scale)
    t = time.perf_counter()
    result = maximal_covering(csc_matrix(cost <= radius), weights, k, time_limit=300)
    return time.perf_counter() - t, round(result.covered, 3)


def case_siting_spopt(scale):
    import pulp
    from spopt.locate import MCLP

    cost, weights, radius, k = siting_instance(scale)
    t = time.perf_counter()
    model = MCLP.from_cost_matrix(cost, weights, radius, k)
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    covered = (
        weights[(cost[:, model.fac_vars_chosen()] <= radius).any(axis=1)].sum()
        if hasattr(model, "fac_vars_chosen")
        else None
    )
    if covered is None:
        chosen = [j for j, var in enumerate(model.fac_vars) if var.value() > 0.5]
        covered = weights[(cost[:, chosen] <= radius).any(axis=1)].sum()
    return time.perf_counter() - t, round(float(covered), 3)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}
GROUPS = [
    (
        "straight-line nearest, {b:,} buildings x {s:,} stations",
        "euclid_gridmap",
        ["euclid_geopandas"],
    ),
    (
        "walking distance to nearest station, {e:,} road edges",
        "network_gridmap",
        ["network_networkx", "network_pandana", "network_gridmap_with_buildings"],
    ),
    ("maximal covering, {d:,} demand x {c:,} candidates, k=10", "siting_gridmap", ["siting_spopt"]),
]


#: Seconds a case may take before it is reported as not finished.
CASE_TIMEOUT = 600


def run_case(name: str, scale: float) -> dict:
    """Run one case in a child process; its time, peak memory and answer."""
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--case", name, "--scale", str(scale)],
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {CASE_TIMEOUT} s"}
    if child.returncode != 0:
        return {"error": (child.stderr.strip().splitlines() or ["failed"])[-1]}
    # Some peers print progress on stdout too: the answer is the last JSON object.
    return json.loads(child.stdout[child.stdout.rindex("{") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.case:
        seconds, answer = CASES[args.case](args.scale)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "answer": answer}))
        return

    starts, _, buildings, stations = town(args.scale)
    cost, _, _, _ = siting_instance(args.scale)
    sizes = {
        "b": len(buildings),
        "s": len(stations),
        "e": len(starts),
        "d": cost.shape[0],
        "c": cost.shape[1],
    }
    lines = [
        f"# gridmap benchmarks (scale {args.scale:g})",
        "",
        f"Run with `python scripts/bench.py --scale {args.scale:g}` on "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. Each case runs in its own process; the ratio is "
        "the peer's time over gridmap's in this same run (above 1: gridmap is faster); "
        "`same answer` compares the summed distances (to the millimetre) or the "
        "covered weight.",
        "",
    ]
    for title, ours, peers in GROUPS:
        print(f"{title.format(**sizes)} ...", file=sys.stderr)
        mine = run_case(ours, args.scale)
        lines += [
            f"## {title.format(**sizes)}",
            "",
            "| engine | seconds | peak MB | x gridmap time | same answer |",
            "|---|---:|---:|---:|---|",
            f"| gridmap | {mine.get('seconds', float('nan')):.2f} | "
            f"{mine.get('peak_mb', float('nan')):.0f} | 1.00 | - |",
        ]
        for peer in peers:
            theirs = run_case(peer, args.scale)
            if "error" in theirs or "error" in mine:
                lines.append(
                    f"| {peer.split('_', 1)[1]} | - | - | - | "
                    f"{theirs.get('error') or mine.get('error')} |"
                )
                continue
            same = abs(theirs["answer"] - mine["answer"]) <= 1e-6 * max(1, abs(mine["answer"]))
            lines.append(
                f"| {peer.split('_', 1)[1]} | {theirs['seconds']:.2f} | "
                f"{theirs['peak_mb']:.0f} | {theirs['seconds'] / mine['seconds']:.1f} | "
                f"{'yes' if same else 'NO'} |"
            )
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
