"""Split a graph of cells into contiguous parts whose weights fall inside a range.

The method is recursive spanning-tree bisection with a choice of cut: a region
that should become ``k`` parts is split in two along one edge of a spanning tree
of its cells, so that both sides are contiguous and each side's households can
still be divided into its share of parts inside the range. Several spanning trees
are drawn per split (random edge weights from a seeded generator, so the result
is deterministic for a seed; times the distance between cell centroids when they
are given, so subtrees are compact rather than stringy), and of all the tree edges
that give a feasible cut the one kept has the lowest *cut cost* times a balance
penalty: the length of boundary the cut draws, where boundary along a barrier road
(or any preferred line) costs less and boundary through a compound costs more.
Parts left below the floor are then merged into a neighbour where the sum stays
under the ceiling, and single cells move between neighbouring parts while that
brings a part outside the range closer to it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

#: Spanning trees drawn for each split; up to ``MAX_TREES`` while no feasible cut is found.
TREES_PER_SPLIT = 8
MAX_TREES = 64
#: Feasible cuts examined per tree (those nearest the ideal balance).
CUTS_PER_TREE = 24
#: Weight of balance against cut cost: a side off its ideal by a whole part's mean
#: households costs this many times its cut.
BALANCE = 2.0


def part_count(total: float, low: float, high: float) -> int:
    """How many parts ``total`` should make: inside the range where any count allows
    it, the count whose mean part is nearest the middle of the range."""
    if total <= high:
        return 1
    middle = (low + high) / 2
    fewest, most = math.ceil(total / high), math.floor(total / low)
    if fewest <= most:
        return min(max(round(total / middle), fewest), most)
    return max(1, round(total / middle))


def _subtree_sums(order: np.ndarray, parent: np.ndarray, weights: np.ndarray):
    """Weight and node count of the subtree below each node of a rooted tree."""
    below, size = weights.astype(float).tolist(), [1] * len(order)
    up = parent.tolist()
    for v in order[:0:-1].tolist():
        below[up[v]] += below[v]
        size[up[v]] += size[v]
    return np.array(below), np.array(size)


def _feasible(h: np.ndarray, total: float, k1: int, k: int, low: float, high: float):
    """Whether a side of weight ``h`` can make ``k1`` parts and the rest ``k - k1``."""
    rest = total - h
    return (h >= k1 * low) & (h <= k1 * high) & (rest >= (k - k1) * low) & (rest <= (k - k1) * high)


class Partitioner:
    """Contiguous parts of a cell graph inside a weight range.

    Parameters
    ----------
    costs
        Sparse symmetric matrix of the cost of cutting between touching cells; its
        pattern is the adjacency.
    weights
        Households of each cell.
    seed
        Seed of the spanning-tree draws.
    centroids
        Each cell's centroid (metric). When given, spanning trees are drawn with edge
        weights proportional to the distance between centroids, so that their subtrees,
        and the parts cut from them, are compact rather than stringy.
    trees
        Spanning trees drawn per split (more while none gives a feasible cut).
    """

    def __init__(
        self,
        costs: sparse.csr_matrix,
        weights: np.ndarray,
        seed: int = 0,
        trees: int = TREES_PER_SPLIT,
        centroids: np.ndarray | None = None,
    ):
        self.costs = sparse.csr_matrix(costs)
        self.weights = np.asarray(weights, dtype=float)
        self.rng = np.random.default_rng(seed)
        self.trees = trees
        self.centroids = centroids

    def partition(self, low: float, high: float, nodes: np.ndarray | None = None) -> np.ndarray:
        """Label each cell with its part (``-1`` for cells outside ``nodes``).

        Each connected group of cells is split on its own; parts are numbered from 0.
        """
        n = len(self.weights)
        nodes = np.arange(n) if nodes is None else np.asarray(nodes)
        labels = np.full(n, -1)
        sub = self.costs[nodes][:, nodes]
        count, groups = csgraph.connected_components(sub, directed=False)
        next_label = 0
        for g in range(count):
            members = nodes[groups == g]
            total = self.weights[members].sum()
            for part in self._split(members, part_count(total, low, high), low, high):
                labels[part] = next_label
                next_label += 1
        return self.repair(self.merge_small(labels, low, high), low, high)

    def _split(self, members: np.ndarray, k: int, low: float, high: float) -> list[np.ndarray]:
        if k <= 1 or len(members) == 1:
            return [members]
        cut = self._best_cut(members, k, low, high)
        if cut is None:
            return [members]
        side, k1 = cut
        return self._split(members[side], k1, low, high) + self._split(
            members[~side], k - k1, low, high
        )

    def _best_cut(self, members: np.ndarray, k: int, low: float, high: float):
        """The cheapest feasible tree cut: a mask of one side and its part count."""
        sub = self.costs[members][:, members].tocoo()
        upper = sub.row < sub.col
        rows, cols, cost = sub.row[upper], sub.col[upper], sub.data[upper]
        weights = self.weights[members]
        total = weights.sum()
        m = len(members)
        length = None
        if self.centroids is not None:
            xy = self.centroids[members]
            # Never zero: csgraph reads a zero weight as no edge.
            length = np.maximum(np.hypot(*(xy[rows] - xy[cols]).T), 1e-6)
        # (score, tree node whose subtree is one side, its part count, preorder, sizes)
        best: tuple | None = None
        fallback: tuple | None = None
        for attempt in range(MAX_TREES):
            if attempt >= self.trees and best is not None:
                break
            draw = self.rng.uniform(1.0, 2.0, len(rows))
            if length is not None:
                draw = draw * length
            tree = csgraph.minimum_spanning_tree(
                sparse.csr_matrix((draw, (rows, cols)), shape=(m, m))
            )
            order, parent = csgraph.depth_first_order(tree, 0, directed=False)
            if len(order) < m:  # not connected: nothing to cut here
                return None
            below, size = _subtree_sums(order, parent, weights)
            position = np.empty(m, dtype=int)
            position[order] = np.arange(m)
            candidates = order[1:]
            for k1 in sorted(range(1, k), key=lambda j: abs(j - k / 2)):
                ideal = total * k1 / k
                ok = _feasible(below[candidates], total, k1, k, low, high)
                pool = candidates[ok] if ok.any() else candidates
                nearest = pool[np.argsort(np.abs(below[pool] - ideal))[:CUTS_PER_TREE]]
                # One side of the cut below tree node v is v's preorder range.
                start = position[nearest][:, None]
                stop = start + size[nearest][:, None]
                in_a = (position[rows] >= start) & (position[rows] < stop)
                in_b = (position[cols] >= start) & (position[cols] < stop)
                miss = np.abs(below[nearest] - ideal)
                if ok.any():
                    score = ((in_a != in_b) @ cost) * (1 + BALANCE * miss * k / total)
                    i = int(np.argmin(score))
                    if best is None or score[i] < best[0]:
                        best = (score[i], nearest[i], k1, position, size)
                    break
                i = int(np.argmin(miss))
                if fallback is None or miss[i] < fallback[0]:
                    fallback = (miss[i], nearest[i], k1, position, size)
        chosen = best or fallback
        if chosen is None:
            return None
        _, v, k1, position, size = chosen
        side = (position >= position[v]) & (position < position[v] + size[v])
        return side, k1

    def merge_small(self, labels: np.ndarray, low: float, high: float) -> np.ndarray:
        """Merge parts under ``low`` into the lightest touching part while the sum stays
        at most ``high``; parts are renumbered from 0."""
        labels = labels.copy()
        adj = self.costs.tocoo()
        while True:
            used = labels >= 0
            sums = np.bincount(labels[used], weights=self.weights[used])
            small = [p for p in np.argsort(sums) if sums[p] < low]
            merged = False
            for p in small:
                touching = (labels[adj.row] == p) & (labels[adj.col] >= 0) & (labels[adj.col] != p)
                neighbours = np.unique(labels[adj.col[touching]])
                fits = [q for q in neighbours if sums[p] + sums[q] <= high]
                if fits:
                    q = min(fits, key=lambda q: (sums[q], q))
                    labels[labels == p] = q
                    merged = True
                    break
            if not merged:
                break
        _, labels[labels >= 0] = np.unique(labels[labels >= 0], return_inverse=True)
        return labels

    def _connected_without(self, cells: np.ndarray, cell: int) -> bool:
        rest = cells[cells != cell]
        if len(rest) <= 1:
            return len(rest) == 1
        count, _ = csgraph.connected_components(self.costs[rest][:, rest], directed=False)
        return count == 1

    def repair(self, labels: np.ndarray, low: float, high: float) -> np.ndarray:
        """Move single cells across part boundaries while that brings a part outside
        the range nearer to it without pushing the other part out, keeping both
        contiguous. Each move strictly lowers the total distance outside the range."""
        labels = labels.copy()
        adj = self.costs.tocoo()
        used = labels >= 0
        sums = np.bincount(labels[used], weights=self.weights[used])

        def excess(value: float) -> float:
            return max(low - value, 0.0) + max(value - high, 0.0)

        for _ in range(10 * len(sums) + 10):
            moved = False
            for p in np.flatnonzero([excess(v) > 0 for v in sums]):
                cross = (labels[adj.row] >= 0) & (labels[adj.col] >= 0)
                cross &= labels[adj.row] != labels[adj.col]
                if sums[p] > high:  # give a cell of p away
                    pairs = cross & (labels[adj.row] == p)
                else:  # take a cell from a neighbour
                    pairs = cross & (labels[adj.col] == p)
                best = None
                for cell, other in zip(adj.row[pairs], adj.col[pairs], strict=True):
                    source, target = labels[cell], labels[other]
                    w = self.weights[cell]
                    if w == 0:
                        continue
                    before = excess(sums[source]) + excess(sums[target])
                    after = excess(sums[source] - w) + excess(sums[target] + w)
                    if after < before and (best is None or after < best[0]):
                        if self._connected_without(np.flatnonzero(labels == source), cell):
                            best = (after, cell, source, target)
                if best is not None:
                    _, cell, source, target = best
                    labels[cell] = target
                    sums[source] -= self.weights[cell]
                    sums[target] += self.weights[cell]
                    moved = True
            if not moved:
                break
        return labels
