"""Background jobs: 202 and a Location, progress, results, failures, dead runners, the CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api import create_app
from api.jobs import start_runner
from gridmap import jobs
from gridmap.db.engine import session_scope
from tests.conftest import serving
from tests.helpers import bearer, cli_env, run_cli
from tests.test_api_http import http
from tests.test_api_write import snapshot, station

ASYNC = {"Prefer": "respond-async"}


def wait_done(client, location: str, headers: dict, timeout: float = 60) -> dict:
    """Poll a job's page until it is done or failed; its last state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job still {body['status']} after {timeout} s")


@pytest.fixture
def running_app(db_url: str) -> Iterator:
    """The app on the test's database with its job runner going."""
    app = create_app({"TESTING": True, "DATABASE_URL": db_url})
    runner = start_runner(app)
    yield app
    runner.stop()


@pytest.fixture
def demo_app(demo_db_url: str) -> Iterator:
    app = create_app({"TESTING": True, "DATABASE_URL": demo_db_url})
    runner = start_runner(app)
    yield app
    runner.stop()


def test_import_as_a_job_with_progress_and_result(running_app, tokens, engine):
    client = running_app.test_client()
    planner = bearer(tokens["planner"])
    collection = {
        "type": "FeatureCollection",
        "features": [station([104.0 + i / 10000, 30.0], name=f"站{i}") for i in range(300)],
    }
    response = client.post("/api/v1/stations/import", headers={**planner, **ASYNC}, json=collection)
    assert response.status_code == 202, response.get_json()
    location = response.headers["Location"]
    assert location == f"/api/v1/jobs/{response.get_json()['id']}"
    assert response.get_json()["status"] in ("queued", "running", "done")
    job = wait_done(client, location, planner)
    assert job["status"] == "done", job
    assert job["result"]["imported"] == 300 and len(job["result"]["ids"]) == 300
    assert job["progress"]["done"] == job["progress"]["total"]
    assert job["started_at"] and job["finished_at"]
    assert client.get("/api/v1/stations").get_json()["numberMatched"] == 300
    with engine.connect() as conn:  # the upload is not kept once the job ended
        assert conn.scalar(text("SELECT count(*) FROM jobs WHERE payload IS NOT NULL")) == 0
    # The job is the planner's business: anonymous callers may not read it.
    assert client.get(location).status_code == 401
    missing = client.get("/api/v1/jobs/" + "0" * 32, headers=planner)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_an_uploaded_file_as_a_job_keeps_its_form_fields(running_app, tokens):
    """A multipart upload replayed by the job: the file and its form's field mapping."""
    client = running_app.test_client()
    planner = bearer(tokens["planner"])
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [104.0, 30.0]},
            "properties": {"title": "便民服务站", "kind": "service_post"},
        }
    ]
    upload = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    response = client.post(
        "/api/v1/stations/import",
        headers={**planner, **ASYNC},
        data={"file": (io.BytesIO(upload), "stations.geojson"), "map": '{"name": "title"}'},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    job = wait_done(running_app.test_client(), response.headers["Location"], planner)
    assert job["status"] == "done" and job["result"]["imported"] == 1, job
    names = [f["properties"]["name"] for f in client.get("/api/v1/stations").get_json()["features"]]
    assert names == ["便民服务站"]


def test_a_large_body_becomes_a_job_and_a_small_one_does_not(db_url, tokens, engine):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "JOB_IMPORT_BYTES": 2000})
    client = app.test_client()
    planner = bearer(tokens["planner"])
    small = {"type": "FeatureCollection", "features": [station([104.0, 30.0])]}
    assert client.post("/api/v1/stations/import", headers=planner, json=small).status_code == 201
    large = {
        "type": "FeatureCollection",
        "features": [station([104.0 + i / 10000, 30.01], name=f"站{i}") for i in range(40)],
    }
    queued = client.post("/api/v1/stations/import", headers=planner, json=large)
    assert queued.status_code == 202
    runner = start_runner(app)
    try:
        job = wait_done(client, queued.headers["Location"], planner)
    finally:
        runner.stop()
    assert job["status"] == "done" and job["result"]["imported"] == 40


def test_a_refused_import_job_fails_with_the_problem_and_writes_nothing(
    running_app, tokens, engine
):
    client = running_app.test_client()
    planner = bearer(tokens["planner"])
    before = snapshot(engine)
    bad = [station([104.0, 30.0]), station([104.0, 30.0], kind="bar")]
    response = client.post(
        "/api/v1/stations/import",
        headers={**planner, **ASYNC},
        json={"type": "FeatureCollection", "features": bad},
    )
    job = wait_done(client, response.headers["Location"], planner)
    assert job["status"] == "failed" and job["result"] is None
    error = job["error"]
    assert error["status"] == 422 and "nothing was written" in error["detail"]
    assert [(e["index"], e["field"]) for e in error["errors"]] == [(1, "kind")]
    assert snapshot(engine) == before


def test_coverage_as_a_job_matches_the_direct_answer(demo_app):
    client = demo_app.test_client()
    query = "/api/v1/coverage?area=510107015&kind=elderly_care&minutes=10"
    direct = client.get(query)
    assert direct.status_code == 200
    first = client.get(query, headers=ASYNC)
    assert first.status_code == 202 and first.headers["Preference-Applied"] == "respond-async"
    job = wait_done(client, first.headers["Location"], {})
    assert job["status"] == "done" and job["kind"] == "coverage"
    assert job["progress"]["done"] == job["progress"]["total"] == 1
    assert job["result"] == direct.get_json()


def test_the_same_coverage_asked_twice_is_one_job(demo_db_url):
    client = create_app({"TESTING": True, "DATABASE_URL": demo_db_url}).test_client()
    query = "/api/v1/coverage?area=510107015&kind=canteen"
    first = client.get(query, headers=ASYNC).get_json()
    second = client.get(query, headers=ASYNC).get_json()
    other = client.get(query + "&minutes=15", headers=ASYNC).get_json()
    assert first["id"] == second["id"] != other["id"]
    assert first["status"] == "queued"  # no runner in this process
    page = client.get(f"/api/v1/jobs/{first['id']}")
    assert page.status_code == 200 and page.headers["Retry-After"] == "1"


def test_one_client_cannot_fill_the_queue(demo_db_url):
    client = create_app({"TESTING": True, "DATABASE_URL": demo_db_url}).test_client()
    query = "/api/v1/coverage?area=510107015&kind=canteen&minutes="
    answers = [
        client.get(query + str(m), headers=ASYNC)
        for m in range(10, 10 + jobs.MAX_UNFINISHED_PER_AUTHOR)
    ]
    assert {a.status_code for a in answers} == {202}
    again = client.get(query + "10", headers=ASYNC)  # a twin is no new job
    assert again.status_code == 202 and again.get_json()["id"] == answers[0].get_json()["id"]
    refused = client.get(query + "30", headers=ASYNC)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.mimetype == "application/problem+json"
    # Another anonymous client has its own turn.
    elsewhere = client.get(query + "30", headers=ASYNC, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 202


def test_redraw_as_a_job_links_to_its_plan(demo_app, demo_tokens):
    client = demo_app.test_client()
    planner = bearer(demo_tokens["planner"])
    response = client.post(
        "/api/v1/plans", headers={**planner, **ASYNC}, json={"area": "510107015003"}
    )
    assert response.status_code == 202
    job = wait_done(client, response.headers["Location"], planner)
    assert job["status"] == "done", job["error"]
    plan_link = job["result"]["href"]
    assert {"rel": "result", "href": plan_link} in job["links"]
    assert job["progress"]["total"] == 4
    plan = client.get(plan_link)
    assert plan.status_code == 200 and plan.get_json()["plan"]["id"] == job["result"]["id"]


def test_a_redraw_of_an_unknown_community_fails_as_the_request_would(demo_app, demo_tokens):
    client = demo_app.test_client()
    planner = bearer(demo_tokens["planner"])
    response = client.post(
        "/api/v1/plans", headers={**planner, **ASYNC}, json={"area": "510107015999"}
    )
    job = wait_done(client, response.headers["Location"], planner)
    assert job["status"] == "failed" and job["error"]["status"] == 404


def _running_job(engine, runner_name: str, heartbeat_age_s: float = 0) -> str:
    """A job row as a runner leaves it when it dies mid-work."""
    with session_scope(engine) as session:
        job = jobs.submit(session, "import", {"layer": "stations", "suffix": ".geojson"}, "t")
        job_id = job.id
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE jobs SET status = 'running', runner = :runner, started_at = now(), "
                "heartbeat_at = now() - make_interval(secs => :age) WHERE id = :id"
            ),
            {"runner": runner_name, "id": job_id, "age": heartbeat_age_s},
        )
    return job_id


def test_jobs_of_a_dead_runner_are_failed_on_restart(engine):
    import socket

    gone = subprocess.Popen(["true"])  # its pid names no process once it has ended
    gone.wait()
    dead_here = _running_job(engine, f"{socket.gethostname()}:{gone.pid}:abc123")
    silent_elsewhere = _running_job(engine, "other-host:1:abc123", heartbeat_age_s=3600)
    alive_elsewhere = _running_job(engine, "other-host:1:def456")

    runner = jobs.Runner(engine).start()  # what a restarted worker does first
    runner.stop()
    with session_scope(engine) as session:
        states = {j.id: (j.status, j.error) for j in jobs.recent_jobs(session)}
    for job_id in (dead_here, silent_elsewhere):
        status, error = states[job_id]
        assert status == "failed" and error["status"] == 503
        assert "nothing of it was written" in error["detail"]
    assert states[alive_elsewhere][0] == "running"


def test_cli_waits_on_a_job_with_a_progress_bar(db_url, tokens, running_app):
    client = running_app.test_client()
    collection = {"type": "FeatureCollection", "features": [station([104.0, 30.0])]}
    queued = client.post(
        "/api/v1/stations/import", headers={**bearer(tokens["planner"]), **ASYNC}, json=collection
    )
    env = cli_env(db_url)
    waited = run_cli("job", "wait", queued.get_json()["id"], "--timeout", "60", env=env)
    assert '"imported": 1' in waited.stdout and " done " in waited.stdout
    assert queued.get_json()["id"] in run_cli("job", "list", env=env).stdout
    shown = run_cli("job", "show", "0" * 32, env=env, check=False)
    assert shown.returncode == 1 and "no job" in shown.stderr


def _job_processes(base: str) -> list[int]:
    """Pids of the job processes of the server at ``base`` (children of its arbiter)."""
    bind = base.removeprefix("http://").encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            if b"api.job_worker" not in command:
                continue
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state != "Z" and bind in Path(f"/proc/{parent}/cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_job_whose_process_is_killed_fails_and_the_server_goes_on(db_url, tokens, tmp_path):
    """Over real HTTP: SIGKILL of the job process in the middle of a 30,000-station
    import; the server starts another, which marks the job failed (nothing written)
    and runs the next job."""
    planner = {**bearer(tokens["planner"]), "Content-Type": "application/json", **ASYNC}
    big = {
        "type": "FeatureCollection",
        "features": [station([104.0 + i * 1e-6, 30.0], name=f"站{i}") for i in range(30_000)],
    }
    with (tmp_path / "serve.log").open("wb") as log, serving(db_url, log) as base:
        status, headers, job = http("POST", base + "/api/v1/stations/import", big, planner)
        assert status == 202
        location = base + headers["Location"]
        deadline = time.monotonic() + 30
        while job["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.05)
            _, _, job = http("GET", location, headers=planner)
        assert job["status"] == "running"
        (victim,) = _job_processes(base)
        os.kill(victim, signal.SIGKILL)
        while job["status"] == "running" and time.monotonic() < deadline + 30:
            time.sleep(0.1)
            _, _, job = http("GET", location, headers=planner)
        assert job["status"] == "failed" and job["error"]["status"] == 503, job
        assert "nothing of it was written" in job["error"]["detail"]
        assert http("GET", base + "/api/v1/stations?limit=1")[2]["numberMatched"] == 0
        small = {"type": "FeatureCollection", "features": [station([104.0, 30.0])]}
        _, headers, job = http("POST", base + "/api/v1/stations/import", small, planner)
        while job["status"] in ("queued", "running") and time.monotonic() < deadline + 60:
            time.sleep(0.1)
            _, _, job = http("GET", base + headers["Location"], headers=planner)
        assert job["status"] == "done" and job["result"]["imported"] == 1
        assert len(_job_processes(base)) == 1 and victim not in _job_processes(base)
