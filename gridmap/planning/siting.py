"""Choosing station sites: maximal covering and set covering (pure, on arrays).

Demand points carry weights (uncovered households); a sparse 0/1 matrix says which
candidate site covers which demand point. Both problems are solved exactly as
mixed-integer programmes with HiGHS (``scipy.optimize.milp``) under a time limit;
when HiGHS gives no answer in time the greedy choice is returned, which covers at
least 1 - 1/e of the optimum for maximal covering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csc_matrix, hstack, identity


@dataclass
class Siting:
    """Chosen sites, in the order of their marginal gain, and how they were found.

    Attributes
    ----------
    sites
        Candidate indices, best first.
    gains
        Weight each site adds on top of the sites before it.
    covered
        Total weight the chosen sites cover.
    total
        Total weight of the demand.
    solver
        ``milp`` (HiGHS) or ``greedy``.
    optimal
        Whether the answer is proven optimal.
    """

    sites: list[int]
    gains: list[float]
    covered: float
    total: float
    solver: str
    optimal: bool
    notes: list[str] = field(default_factory=list)


def _ordered_gains(
    cover: csc_matrix, weights: np.ndarray, chosen: list[int]
) -> tuple[list[int], list[float]]:
    """Order chosen sites by marginal gain (greedy over the chosen set)."""
    remaining = list(chosen)
    covered = np.zeros(cover.shape[0], dtype=bool)
    order, gains = [], []
    while remaining:
        best, best_gain = remaining[0], -1.0
        for j in remaining:
            rows = cover.indices[cover.indptr[j] : cover.indptr[j + 1]]
            gain = float(weights[rows[~covered[rows]]].sum())
            if gain > best_gain:
                best, best_gain = j, gain
        rows = cover.indices[cover.indptr[best] : cover.indptr[best + 1]]
        covered[rows] = True
        order.append(best)
        gains.append(best_gain)
        remaining.remove(best)
    return order, gains


def greedy(
    cover: csc_matrix, weights: np.ndarray, k: int | None = None, target: float | None = None
) -> list[int]:
    """Add the site covering the most uncovered weight until ``k`` sites or ``target``
    weight is reached (or nothing more can be covered)."""
    cover = csc_matrix(cover)
    covered = np.zeros(cover.shape[0], dtype=bool)
    chosen: list[int] = []
    done = 0.0
    while (k is None or len(chosen) < k) and (target is None or done < target - 1e-9):
        gains = cover.T @ np.where(covered, 0.0, weights)
        gains[chosen] = -1
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(best)
        rows = cover.indices[cover.indptr[best] : cover.indptr[best + 1]]
        covered[rows] = True
        done = float(weights[covered].sum())
    return chosen


def _solve(c, constraints, n_x: int, n_y: int, time_limit: float):
    integrality = np.concatenate([np.ones(n_x), np.zeros(n_y)])
    return milp(
        c,
        constraints=constraints,
        integrality=integrality,
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit, "disp": False},
    )


def _coverage_rows(cover: csc_matrix) -> LinearConstraint:
    """y_i - sum_j a_ij x_j <= 0: a demand point counts only if a chosen site covers it."""
    n_demand, n_sites = cover.shape
    matrix = hstack([-cover, identity(n_demand, format="csc")]).tocsc()
    return LinearConstraint(matrix, -np.inf, 0)


def maximal_covering(
    cover: csc_matrix, weights: np.ndarray, k: int, time_limit: float = 30.0
) -> Siting:
    """Choose ``k`` sites covering the most weight.

    Parameters
    ----------
    cover
        ``(demand, candidates)`` 0/1 matrix.
    weights
        Weight of each demand point (households).
    k
        Sites to choose.
    time_limit
        Seconds HiGHS may take before the greedy answer is used.
    """
    cover = csc_matrix(cover, dtype=float)
    n_demand, n_sites = cover.shape
    total = float(weights.sum())
    k = min(k, n_sites)
    if k <= 0 or n_demand == 0:
        return Siting([], [], 0.0, total, "milp", True)
    c = np.concatenate([np.zeros(n_sites), -weights])
    budget = LinearConstraint(
        csc_matrix(np.concatenate([np.ones(n_sites), np.zeros(n_demand)])[None, :]), 0, k
    )
    result = _solve(c, [_coverage_rows(cover), budget], n_sites, n_demand, time_limit)
    if result.x is None:
        chosen, solver, optimal = greedy(cover, weights, k=k), "greedy", False
        notes = [f"HiGHS found no answer in {time_limit:g} s ({result.message}); greedy used"]
    else:
        chosen = [int(j) for j in np.flatnonzero(result.x[:n_sites] > 0.5)]
        solver, optimal, notes = "milp", result.status == 0, []
    order, gains = _ordered_gains(cover, weights, chosen)
    return Siting(order, gains, float(sum(gains)), total, solver, optimal, notes)


def set_covering(
    cover: csc_matrix, weights: np.ndarray, share: float = 1.0, time_limit: float = 30.0
) -> Siting:
    """The fewest sites covering ``share`` of the weight (or the most that can be covered).

    Parameters
    ----------
    share
        Target share of the total weight, 0-1. Demand no candidate covers cannot
        be reached; the target is then capped at what can be, and said so.
    """
    cover = csc_matrix(cover, dtype=float)
    n_demand, n_sites = cover.shape
    total = float(weights.sum())
    reachable = float(weights[np.asarray(cover.sum(axis=1)).ravel() > 0].sum())
    target = share * total
    notes = []
    if target > reachable + 1e-9:
        notes.append(
            f"only {reachable / total:.1%} of the demand can be covered by these "
            "candidates; that is the target used"
            if total
            else "no demand"
        )
        target = reachable
    if target <= 0:
        return Siting([], [], 0.0, total, "milp", True, notes)
    c = np.concatenate([np.ones(n_sites), np.zeros(n_demand)])
    enough = LinearConstraint(
        csc_matrix(np.concatenate([np.zeros(n_sites), weights])[None, :]), target - 1e-6, np.inf
    )
    result = _solve(c, [_coverage_rows(cover), enough], n_sites, n_demand, time_limit)
    if result.x is None:
        chosen, solver, optimal = greedy(cover, weights, target=target), "greedy", False
        notes.append(f"HiGHS found no answer in {time_limit:g} s; greedy used")
    else:
        chosen = [int(j) for j in np.flatnonzero(result.x[:n_sites] > 0.5)]
        solver, optimal = "milp", result.status == 0
    order, gains = _ordered_gains(cover, weights, chosen)
    return Siting(order, gains, float(sum(gains)), total, solver, optimal, notes)
