"""Station siting against brute-force enumeration, and through the API and command."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.sparse import csc_matrix

from gridmap.planning.siting import greedy, maximal_covering, set_covering
from tests.helpers import bearer, cli_env, run_cli


def random_instance(seed: int, demand: int = 30, sites: int = 9, density: float = 0.2):
    rng = np.random.default_rng(seed)
    cover = (rng.random((demand, sites)) < density).astype(float)
    weights = rng.integers(1, 60, demand).astype(float)
    return csc_matrix(cover), weights, cover


def brute_force_max(cover: np.ndarray, weights: np.ndarray, k: int) -> float:
    return max(
        weights[cover[:, list(c)].sum(axis=1) > 0].sum()
        for c in itertools.combinations(range(cover.shape[1]), k)
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_maximal_covering_is_optimal_and_greedy_within_its_bound(seed, k):
    sparse, weights, dense = random_instance(seed)
    best = brute_force_max(dense, weights, k)
    result = maximal_covering(sparse, weights, k)
    assert result.solver == "milp" and result.optimal
    assert result.covered == pytest.approx(best)
    chosen = dense[:, result.sites].sum(axis=1) > 0
    assert weights[chosen].sum() == pytest.approx(result.covered)  # gains add up
    assert result.gains == sorted(result.gains, reverse=True)
    picked = greedy(sparse, weights, k=k)
    greedy_value = weights[dense[:, picked].sum(axis=1) > 0].sum()
    assert (1 - 1 / np.e) * best - 1e-9 <= greedy_value <= best + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_set_covering_uses_the_fewest_sites(seed):
    sparse, weights, dense = random_instance(seed, density=0.3)
    reachable = weights[dense.sum(axis=1) > 0].sum()
    fewest = next(
        n
        for n in range(dense.shape[1] + 1)
        if n == 0
        and reachable == 0
        or n > 0
        and brute_force_max(dense, weights, n) >= reachable - 1e-9
    )
    result = set_covering(sparse, weights, share=1.0)
    assert len(result.sites) == fewest
    assert result.covered == pytest.approx(reachable)
    if reachable < weights.sum():
        assert "can be covered" in result.notes[0]


def test_partial_target_share():
    # Three sites each covering one demand point of weight 10, 20, 70.
    cover = csc_matrix(np.eye(3))
    result = set_covering(cover, np.array([10.0, 20.0, 70.0]), share=0.75)
    # 70 alone is short of 75; 70 and either other point reach it: two sites.
    assert len(result.sites) == 2 and result.sites[0] == 2 and result.covered >= 75


def test_sites_through_the_api(demo_client, demo_tokens):
    body = {"area": "510107015", "kind": "elderly_care", "k": 2, "spacing_m": 150}
    assert demo_client.post("/api/v1/planning/sites", json=body).status_code == 401
    planner = bearer(demo_tokens["planner"])
    response = demo_client.post("/api/v1/planning/sites", json=body, headers=planner)
    assert response.status_code == 200
    plan = response.get_json()
    assert plan["solver"] == "milp" and plan["optimal"] and len(plan["sites"]) == 2
    gained = sum(s["gain_households"] for s in plan["sites"])
    assert plan["households_covered_after"] - plan["households_covered_before"] == gained
    # The proposal really covers that many: add the sites and measure again.
    for n, site in enumerate(plan["sites"]):
        created = demo_client.post(
            "/api/v1/stations",
            headers=planner,
            json={
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": site["location"]},
                "properties": {"name": f"新养老服务站{n}", "kind": "elderly_care"},
            },
        )
        assert created.status_code == 201
    after = demo_client.get("/api/v1/coverage?area=510107015&kind=elderly_care").get_json()
    assert after["summary"]["households_covered"] == pytest.approx(
        plan["households_covered_after"], rel=0.02
    )
    bad = demo_client.post(
        "/api/v1/planning/sites",
        headers=planner,
        json={"area": "510107015", "kind": "elderly_care", "k": 2},
    )
    assert bad.status_code == 422 and "candidates" in bad.get_json()["detail"]


def test_plan_sites_command(demo_db_url):
    result = run_cli(
        "plan-sites",
        "510107015003",
        "--kind",
        "elderly_care",
        "--share",
        "0.8",
        "--uses",
        "public,commercial,school",
        "--method",
        "euclidean",
        env=cli_env(demo_db_url),
    )
    assert "set_covering by milp" in result.stdout
    assert "households covered:" in result.stdout
