"""Walking distances along a road network: one multi-source Dijkstra pass per station kind.

Pure computation on metric geometries and arrays. Road features are cut into edges
between junctions (:func:`road_edges`): a junction is a feature's end point or a
vertex that two features (or one feature twice) share, to the centimetre, which is
how OpenStreetMap ways and clean centreline files meet. For centrelines digitised
without shared vertices, ``junctions="crossings"`` also joins features where they
cross, unless their levels (bridge, tunnel, layer: :func:`road_levels`) differ.
Buildings and stations join the network at the nearest point of the nearest edge;
those points split their edges, so a building and a station on the same edge are
measured along it, and the connector from the point to the edge is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

#: Vertices closer than this (metres) are the same junction.
NODE_PRECISION_M = 0.01

#: How road features join: ``vertices`` where they share a vertex (OSM, clean
#: centrelines); ``crossings`` also where they cross at one level.
JUNCTION_RULES = ("vertices", "crossings")


@dataclass
class RoadEdges:
    """Road features cut at their junctions.

    Attributes
    ----------
    lines
        LineStrings in metres, each running from one junction to the next.
    road
        Index of the road feature each line was cut from.
    """

    lines: np.ndarray
    road: np.ndarray


def _vertex_keys(coords: np.ndarray) -> np.ndarray:
    """One integer per coordinate, equal for coordinates equal to the centimetre."""
    if len(coords) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.round(coords / NODE_PRECISION_M).astype(np.int64)
    keys -= keys.min(axis=0)
    # One integer per point (x major, y minor) sorts far faster than unique rows.
    return keys[:, 0] * (int(keys[:, 1].max()) + 1) + keys[:, 1]


def road_levels(
    bridge: np.ndarray | None = None,
    tunnel: np.ndarray | None = None,
    layer: np.ndarray | None = None,
    n: int | None = None,
) -> np.ndarray:
    """The level of each road, after OSM's convention.

    Parameters
    ----------
    bridge, tunnel
        Whether each road is a bridge or in a tunnel (``None`` entries: not known, no).
    layer
        OSM ``layer`` of each road (``None``: not given).
    n
        Number of roads, when none of the arrays is given.

    Returns
    -------
    numpy.ndarray
        ``layer`` where given, otherwise 1 for a bridge, -1 for a tunnel, 0 at grade.

    Examples
    --------
    >>> road_levels([True, None, None], [None, True, None], [None, None, 2]).tolist()
    [1, -1, 2]
    """
    count = n if n is not None else len(next(a for a in (bridge, tunnel, layer) if a is not None))

    def flags(values) -> np.ndarray:
        if values is None:
            return np.zeros(count, dtype=bool)
        return np.array([bool(v) for v in values], dtype=bool)

    level = np.where(flags(bridge), 1, np.where(flags(tunnel), -1, 0))
    if layer is not None:
        given = np.array([v is not None for v in layer], dtype=bool)
        level[given] = [int(v) for v in np.asarray(layer, dtype=object)[given]]
    return level


def _crossings(
    roads: np.ndarray, levels: np.ndarray, snap_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points where two roads meet without a shared vertex, the road each is added to,
    and where along it: 0 where it lies on the road, -1 before its start, 1 after its end.

    A crossing of two roads at different levels is left out unless it is an end point
    of one of them (a ramp or a bridge landing on a road is joined to it). An end that
    meets nothing but stops within ``snap_m`` of another road (an undershoot, or a
    T-junction a projection has moved by a millimetre) is joined to its nearest point.
    """
    tree = shapely.STRtree(roads)
    a, b = tree.query(roads, predicate="intersects")
    pair = a < b
    a, b = a[pair], b[pair]
    parts, pair_of = shapely.get_parts(shapely.intersection(roads[a], roads[b]), return_index=True)
    solid = ~shapely.is_empty(parts)
    parts, pair_of = parts[solid], pair_of[solid]
    # Where two roads run together, they are joined at the ends of the shared stretch.
    lines = shapely.get_type_id(parts) == 1
    starts, ends = end_points(parts[lines]) if lines.any() else (np.zeros((0, 2)),) * 2
    points = np.concatenate([shapely.get_coordinates(parts[~lines]), starts, ends])
    pair_of = np.concatenate([pair_of[~lines], pair_of[lines], pair_of[lines]])
    a, b = a[pair_of], b[pair_of]
    m = len(roads)
    # Keys of the crossing points, then of every vertex (the ends among them).
    coords, line = shapely.get_coordinates(roads, return_index=True)
    key = _vertex_keys(np.concatenate([points, coords]))
    point_key, vertex_key = key[: len(points)], key[len(points) :]
    is_first = np.concatenate([[True], line[1:] != line[:-1]])
    is_last = np.concatenate([line[1:] != line[:-1], [True]])
    first, last = coords[is_first], coords[is_last]
    first_key, last_key = vertex_key[is_first], vertex_key[is_last]
    level_ok = (levels[a] == levels[b]) | (
        (point_key == first_key[a])
        | (point_key == last_key[a])
        | (point_key == first_key[b])
        | (point_key == last_key[b])
    )
    added = [np.concatenate([points[level_ok], points[level_ok]])]
    onto = [np.concatenate([a[level_ok], b[level_ok]])]
    where = [np.zeros(2 * int(level_ok.sum()), dtype=int)]

    if snap_m > 0 and m:
        # Loose ends: used once among all vertices and crossing points.
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        used = counts[inverse.ravel()][len(points) :]
        loose_end = np.concatenate([used[is_first], used[is_last]]) == 1
        road_ends = shapely.points(np.concatenate([first, last]))
        end_road = np.concatenate([np.arange(m), np.arange(m)])
        end_side = np.concatenate([np.full(m, -1), np.full(m, 1)])
        e, r = tree.query(road_ends, predicate="dwithin", distance=snap_m)
        # Not to its own road, nor to one it already meets (a short spur off a road
        # would be bent back onto it).
        meets = np.minimum(a, b) * m + np.maximum(a, b)
        pair = np.minimum(end_road[e], r) * m + np.maximum(end_road[e], r)
        keep = loose_end[e] & (r != end_road[e]) & ~np.isin(pair, meets)
        e, r = e[keep], r[keep]
        gap = shapely.distance(road_ends[e], roads[r])
        # The nearest other road of each loose end.
        order = np.lexsort((gap, e))
        e, r = e[order], r[order]
        nearest = np.concatenate([[True], e[1:] != e[:-1]])[: len(e)]
        e, r = e[nearest], r[nearest]
        along = shapely.line_locate_point(roads[r], road_ends[e])
        foot = shapely.get_coordinates(shapely.line_interpolate_point(roads[r], along))
        added += [foot, foot]
        onto += [r, end_road[e]]
        where += [np.zeros(len(e), dtype=int), end_side[e]]
    return np.concatenate(added), np.concatenate(onto), np.concatenate(where)


def road_edges(
    roads: np.ndarray,
    junctions: str = "vertices",
    levels: np.ndarray | None = None,
    snap_m: float = 0.0,
) -> RoadEdges:
    """Cut road features into edges between junctions.

    Parameters
    ----------
    roads
        Road LineStrings in metres.
    junctions
        ``vertices``: roads join at their end points and wherever they share a vertex
        (to the centimetre). ``crossings``: also where they cross, unless ``levels``
        differ there (one passes over the other), and where a road's loose end stops
        within ``snap_m`` of another road.
    levels
        Level of each road (:func:`road_levels`); all at grade when not given.
    snap_m
        With ``crossings``: how near (metres) a loose end must come to another road to
        be joined to it.

    Returns
    -------
    RoadEdges
        The edges and the road each came from; empty and zero-length roads give none.

    Examples
    --------
    >>> from shapely.geometry import LineString
    >>> roads = np.array([LineString([(0, 0), (10, 0), (20, 0)]),
    ...                   LineString([(10, -5), (10, 0), (10, 5)])])
    >>> road_edges(roads).road.tolist()
    [0, 0, 1, 1]
    """
    if junctions not in JUNCTION_RULES:
        raise ValueError(f"junctions must be one of {', '.join(JUNCTION_RULES)}")
    roads = np.asarray(roads, dtype=object)
    coords, line = shapely.get_coordinates(roads, return_index=True)
    if len(coords) == 0:
        return RoadEdges(np.array([], dtype=object), np.zeros(0, dtype=np.int64))
    if junctions == "crossings":
        level = np.zeros(len(roads), dtype=int) if levels is None else np.asarray(levels)
        extra, extra_line, side = _crossings(roads, level, snap_m)
        # Order every vertex and added point along its road; points added past an end
        # extend the road to them.
        step = np.hypot(*np.diff(coords, axis=0).T)
        run = np.concatenate([[0.0], np.cumsum(step)])
        first_of_line = np.concatenate([[True], line[1:] != line[:-1]])
        position = run - np.maximum.accumulate(np.where(first_of_line, run, 0.0))
        length = shapely.length(roads[extra_line])
        extra_position = np.where(
            side < 0,
            -1.0,
            np.where(
                side > 0,
                length + 1.0,
                shapely.line_locate_point(roads[extra_line], shapely.points(extra)),
            ),
        )
        order = np.lexsort(
            (
                np.concatenate([np.zeros(len(coords)), np.ones(len(extra))]),
                np.concatenate([position, extra_position]),
                np.concatenate([line, extra_line]),
            )
        )
        coords = np.concatenate([coords, extra])[order]
        line = np.concatenate([line, extra_line])[order]
    key = _vertex_keys(coords)
    # A vertex repeated in a row is one vertex.
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = (line[1:] != line[:-1]) | (key[1:] != key[:-1])
    coords, line, key = coords[keep], line[keep], key[keep]
    first = np.concatenate([[True], line[1:] != line[:-1]])
    last = np.concatenate([line[1:] != line[:-1], [True]])
    # Roads of a single (repeated) vertex have no length and join nothing.
    single = first & last
    if single.any():
        coords, line, key = coords[~single], line[~single], key[~single]
        first, last = first[~single], last[~single]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    node = first | last | (counts[inverse.ravel()] > 1)
    # An inner junction ends one edge and starts the next: it is used twice.
    inner = node & ~first & ~last
    use = np.repeat(np.arange(len(coords)), np.where(inner, 2, 1))
    starts = first[use].copy()
    starts[1:] |= use[1:] == use[:-1]
    edge = np.cumsum(starts) - 1
    lines = shapely.linestrings(coords[use], indices=edge) if len(use) else np.array([])
    return RoadEdges(np.asarray(lines, dtype=object), line[use][starts])


def end_points(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last coordinates of each line (read from one coordinate array)."""
    coords, index = shapely.get_coordinates(lines, return_index=True)
    breaks = np.flatnonzero(np.diff(index)) + 1
    first = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(index) - 1]])
    return coords[first], coords[last]


def junction_numbers(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Junction number of each end point (equal to the centimetre) and each junction's xy,
    numbered in the order of their coordinates (x, then y)."""
    _, first, junction_of = np.unique(_vertex_keys(points), return_index=True, return_inverse=True)
    return junction_of.ravel(), points[first]


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
    building_connector, station_connector
        Metres from each building and station to the network.
    building_joined, station_joined
        Whether each building and station is within the joining distance of a road
        (a station that is not has no connector: it reaches no one).
    node_xy
        Coordinates of every node (for drawing service areas).
    edges
        Node pairs of the graph's edges.
    piece_of_node
        Connected piece of the road network holding each node (-1: a station not joined).
    pieces
        Number of connected pieces of the road network.
    """

    graph: csr_matrix
    building_nodes: np.ndarray
    building_connector: np.ndarray
    station_nodes: np.ndarray
    node_xy: np.ndarray
    edges: np.ndarray
    station_connector: np.ndarray
    building_joined: np.ndarray
    station_joined: np.ndarray
    piece_of_node: np.ndarray
    pieces: int


def _attach(roads: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest edge of each point, the offset along it (m) and the connector length (m)."""
    # Small nodes, and points asked in 250 m squares rather than in the order given
    # (ids scatter them over the area): neighbours then search the same nodes. 900,000
    # buildings on 300,000 edges took 7.1 s, 2.0 s so.
    tree = shapely.STRtree(roads, node_capacity=4)
    asked = np.lexsort(
        (np.floor(shapely.get_y(points) / 250.0), np.floor(shapely.get_x(points) / 250.0))
    )
    point_idx, edge_idx = tree.query_nearest(points[asked], all_matches=False)
    edge = np.full(len(points), -1, dtype=np.int64)
    edge[asked[point_idx]] = edge_idx
    offset = shapely.line_locate_point(roads[edge], points)
    connector = shapely.distance(roads[edge], points)
    return edge, offset, connector


def build_network(
    roads: np.ndarray,
    buildings: np.ndarray,
    stations: np.ndarray,
    junctions: str = "vertices",
    levels: np.ndarray | None = None,
    max_connector_m: float = np.inf,
    snap_m: float = 0.0,
) -> Network:
    """Cut the roads at their junctions, join buildings and stations, build the graph.

    Parameters
    ----------
    roads
        Walkable road LineStrings in metres, as stored (cut by :func:`road_edges`).
    buildings, stations
        Points in metres.
    junctions, levels, snap_m
        Where roads join each other (see :func:`road_edges`).
    max_connector_m
        Buildings and stations farther than this from every road are not joined.

    Examples
    --------
    >>> from shapely.geometry import LineString
    >>> roads = np.array([LineString([(0, 0), (10, 0), (20, 0)]),
    ...                   LineString([(10, -5), (10, 0), (10, 5)])])
    >>> net = build_network(roads, shapely.points([(20, 1)]), shapely.points([(10, 6)]))
    >>> net.pieces, float(building_distances(net, nearest_stations(net))[0][0])
    (1, 17.0)
    """
    roads = road_edges(roads, junctions, levels, snap_m).lines
    junction_of, junction_xy = junction_numbers(np.concatenate(end_points(roads)))
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
    joined = connector <= max_connector_m

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
    n_buildings = len(buildings)
    hung = joined[n_buildings:]
    u = np.concatenate([u, station_nodes[hung]])
    v = np.concatenate([v, point_nodes[n_buildings:][hung]])
    w = np.concatenate([w, connector[n_buildings:][hung]])
    # Zero-length links (two points at one spot) must stay links, not vanish from a
    # sparse matrix: give them a length far below any measurement.
    w = np.maximum(w, 1e-9)
    n_nodes = n_junctions + n_points + len(stations)
    graph = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    # Pieces of the road network: the components of its junctions (joined points lie
    # on edges and stations hang on them, so they add none).
    _, component = connected_components(graph, directed=False)
    pieces = np.unique(component[:n_junctions])
    piece_of_node = np.searchsorted(pieces, component)
    station_alone = station_nodes[~hung]
    piece_of_node[station_alone] = -1
    xy = np.zeros((n_nodes, 2))
    xy[:n_junctions] = junction_xy
    if n_points:
        on_edge = shapely.line_interpolate_point(roads[edge], offset)
        xy[n_junctions : n_junctions + n_points] = shapely.get_coordinates(on_edge)
        xy[n_junctions + n_points :] = shapely.get_coordinates(stations)
    return Network(
        graph,
        point_nodes[:n_buildings],
        connector[:n_buildings],
        station_nodes,
        xy,
        np.column_stack([u, v]),
        connector[n_buildings:],
        joined[:n_buildings],
        hung,
        piece_of_node,
        len(pieces),
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
    """Walking distance (m) from each building to its nearest station, and which station
    (``inf`` and -1 for a building not joined to the network or with no station in reach)."""
    nodes = network.building_nodes
    distance = np.where(
        network.building_joined, nearest.distance[nodes] + network.building_connector, np.inf
    )
    station = np.where(np.isfinite(distance), nearest.station[nodes], -1)
    return distance, station


@dataclass
class Connectivity:
    """How whole a network is, as every coverage answer states it.

    Attributes
    ----------
    junctions
        The junction rule the network was built with.
    pieces
        Connected pieces of the road network.
    main_piece_buildings
        Joined buildings on the piece holding most of them.
    buildings_not_joined, stations_not_joined
        Buildings and stations farther than the joining distance from every road.
    buildings_without_station
        Joined buildings whose piece has no joined station (unreachable by the network).
    off_main_share
        Share of the joined buildings that are not on the main piece.
    """

    junctions: str
    pieces: int
    main_piece_buildings: int
    buildings_not_joined: int
    stations_not_joined: int
    buildings_without_station: int
    off_main_share: float

    def as_dict(self) -> dict[str, object]:
        """The figures as a JSON-ready dict."""
        return {
            "junctions": self.junctions,
            "pieces": self.pieces,
            "main_piece_buildings": self.main_piece_buildings,
            "buildings_not_joined": self.buildings_not_joined,
            "stations_not_joined": self.stations_not_joined,
            "buildings_without_station": self.buildings_without_station,
            "off_main_share": round(self.off_main_share, 4),
        }


def connectivity(network: Network, junctions: str = "vertices") -> Connectivity:
    """Pieces of the network and who could not join it (see :class:`Connectivity`)."""
    piece = network.piece_of_node
    building_piece = piece[network.building_nodes][network.building_joined]
    station_piece = piece[network.station_nodes][network.station_joined]
    per_piece = np.bincount(building_piece, minlength=max(network.pieces, 1))
    main = int(per_piece.max()) if len(building_piece) else 0
    return Connectivity(
        junctions=junctions,
        pieces=network.pieces,
        main_piece_buildings=main,
        buildings_not_joined=int((~network.building_joined).sum()),
        stations_not_joined=int((~network.station_joined).sum()),
        buildings_without_station=int((~np.isin(building_piece, station_piece)).sum()),
        off_main_share=1 - main / len(building_piece) if len(building_piece) else 0.0,
    )
