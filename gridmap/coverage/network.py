"""Walking distances along a road network: one multi-source Dijkstra pass per station kind.

Pure computation on metric geometries and arrays. Road features are network edges
joined where their end points meet (coordinates compared to the centimetre).
Buildings and stations join the network at the nearest point of the nearest edge;
those points split their edges, so a building and a station on the same edge are
measured along it, and the connector from the point to the edge is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

#: End points closer than this (metres) are the same junction.
NODE_PRECISION_M = 0.01


@dataclass
class Network:
    """A road network with buildings and stations joined to it.

    Attributes
    ----------
    graph
        Symmetric sparse matrix of edge lengths in metres.
    building_nodes, station_nodes
        Node of each building (its point on the network) and each station (a node of
        its own, tied to its point on the network by its connector).
    building_connector
        Metres from each building to the network.
    node_xy
        Coordinates of every node (for drawing service areas).
    edges
        Node pairs of the graph's edges.
    """

    graph: coo_matrix
    building_nodes: np.ndarray
    building_connector: np.ndarray
    station_nodes: np.ndarray
    node_xy: np.ndarray
    edges: np.ndarray


def _attach(roads: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest edge of each point, the offset along it (m) and the connector length (m)."""
    tree = shapely.STRtree(roads)
    point_idx, edge_idx = tree.query_nearest(points, all_matches=False)
    order = np.argsort(point_idx)
    edge = edge_idx[order]
    offset = shapely.line_locate_point(roads[edge], points)
    connector = shapely.distance(roads[edge], points)
    return edge, offset, connector


def end_points(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last coordinates of each line (read from one coordinate array)."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    breaks = np.flatnonzero(np.diff(index)) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(index) - 1]])
    return coords[first], coords[last]


def junctions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Junction number of each end point (equal to the centimetre) and each junction's xy,
    numbered in the order of their coordinates (x, then y)."""
    keys = np.round(points / NODE_PRECISION_M).astype(np.int64)
    keys -= keys.min(axis=0)
    # One integer per point (x major, y minor) sorts far faster than unique rows.
    combined = keys[:, 0] * (int(keys[:, 1].max()) + 1) + keys[:, 1]
    _, first, junction_of = np.unique(combined, return_index=True, return_inverse=True)
    return junction_of.ravel(), points[first]


def build_network(roads: np.ndarray, buildings: np.ndarray, stations: np.ndarray) -> Network:
    """Join buildings and stations to the roads and build the graph.

    Parameters
    ----------
    roads
        Walkable road LineStrings in metres, each an edge between two junctions.
    buildings, stations
        Points in metres.
    """
    junction_of, junction_xy = junctions(np.concatenate(end_points(roads)))
    n_roads = len(roads)
    start, end = junction_of[:n_roads], junction_of[n_roads:]
    length = shapely.length(roads)
    n_junctions = len(junction_xy)

    points = np.concatenate([buildings, stations])
    edge, offset, connector = (
        _attach(roads, points) if len(points) else (np.array([], int), np.array([]), np.array([]))
    )
    n_points = len(points)
    point_nodes = n_junctions + np.arange(n_points)
    station_nodes = n_junctions + n_points + np.arange(len(stations))

    # Each edge becomes a chain: start, its attached points by offset, end.
    chain_edge = np.concatenate([np.arange(n_roads), edge, np.arange(n_roads)])
    chain_pos = np.concatenate([np.zeros(n_roads), offset, length])
    chain_node = np.concatenate([start, point_nodes, end])
    order = np.lexsort((chain_pos, chain_edge))
    chain_edge, chain_pos, chain_node = chain_edge[order], chain_pos[order], chain_node[order]
    same = chain_edge[1:] == chain_edge[:-1]
    u = chain_node[:-1][same]
    v = chain_node[1:][same]
    w = np.diff(chain_pos)[same]
    # Stations hang on their connectors, so the pass starts at the station itself.
    s_points = point_nodes[len(buildings) :]
    u = np.concatenate([u, station_nodes])
    v = np.concatenate([v, s_points])
    w = np.concatenate([w, connector[len(buildings) :]])
    # Zero-length links (two points at one spot) must stay links, not vanish from a
    # sparse matrix: give them a length far below any measurement.
    w = np.maximum(w, 1e-9)
    n_nodes = n_junctions + n_points + len(stations)
    graph = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    xy = np.zeros((n_nodes, 2))
    xy[:n_junctions] = junction_xy
    if n_points:
        on_edge = shapely.line_interpolate_point(roads[edge], offset)
        xy[n_junctions : n_junctions + n_points] = shapely.get_coordinates(on_edge)
        xy[n_junctions + n_points :] = shapely.get_coordinates(stations)
    return Network(
        graph,
        point_nodes[: len(buildings)],
        connector[: len(buildings)],
        station_nodes,
        xy,
        np.column_stack([u, v]),
    )


@dataclass
class NearestStations:
    """For every node: the distance to its nearest station and which one (-1: none)."""

    distance: np.ndarray
    station: np.ndarray


def nearest_stations(network: Network, limit: float = np.inf) -> NearestStations:
    """One multi-source Dijkstra pass from all stations.

    Parameters
    ----------
    limit
        Stop exploring beyond this many metres (nodes farther get ``inf``).
    """
    if len(network.station_nodes) == 0:
        n = network.graph.shape[0]
        return NearestStations(np.full(n, np.inf), np.full(n, -1))
    distance, _, sources = dijkstra(
        network.graph,
        directed=False,
        indices=network.station_nodes,
        min_only=True,
        return_predecessors=True,
        limit=limit,
    )
    index_of = np.full(network.graph.shape[0], -1)
    index_of[network.station_nodes] = np.arange(len(network.station_nodes))
    station = np.where(sources >= 0, index_of[np.maximum(sources, 0)], -1)
    return NearestStations(distance, station)


def building_distances(network: Network, nearest: NearestStations) -> tuple[np.ndarray, np.ndarray]:
    """Walking distance (m) from each building to its nearest station, and which station."""
    nodes = network.building_nodes
    return nearest.distance[nodes] + network.building_connector, nearest.station[nodes]
