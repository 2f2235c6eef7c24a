"""Faults the service survives, kept as tests so they keep holding.

- the database stopped for seconds under load: every answer a 503 problem+json with
  Retry-After, the service back at once after, no acknowledged write lost;
- PostgreSQL killed with SIGKILL in the middle of a 20,000-building import: nothing
  of it written;
- concurrent edits of neighbouring grids over HTTP: versions consecutive, history exact.

The first two kill or stop a server, so they run on a cluster of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gridmap.db import migrate
from gridmap.db.cluster import Cluster
from gridmap.db.engine import make_engine, session_scope
from tests.conftest import serving
from tests.helpers import BIN, bearer, cli_env, make_tempdir
from tests.test_editing import COMMUNITY, layout, planner  # noqa: F401 (fixtures)


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A migrated cluster of this test's own, to stop and kill."""
    base = make_tempdir("gridmap-faults-")
    cluster = Cluster(base / "pg", durable=False)
    engine = make_engine(cluster.start())
    migrate.upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.remove()
    shutil.rmtree(base, ignore_errors=True)


def _request(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def _token(url: str, role: str = "planner") -> str:
    from gridmap.tokens import create_token

    engine = make_engine(url)
    with session_scope(engine) as session:
        token = create_token(session, f"faults-{role}", role)
    engine.dispose()
    return token


def test_database_stopped_under_load(own_cluster: Cluster, tmp_path: Path):
    url = own_cluster.url
    auth = bearer(_token(url))
    answers: list[tuple[str, int, object, object]] = []
    acknowledged: list[int] = []
    stop = threading.Event()

    # gunicorn's access log goes to a file: an unread pipe would fill and stop it.
    with (tmp_path / "serve.log").open("wb") as log, serving(url, log) as base:

        def write(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                feature = {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [104.0 + n / 100, 30.0]},
                    "properties": {"name": f"站{n}-{i}", "kind": "canteen"},
                }
                status, headers, body = _request("POST", base + "/api/v1/stations", feature, auth)
                answers.append(("write", status, headers, body))
                if status == 201:
                    acknowledged.append(body["id"])

        def read() -> None:
            while not stop.is_set():
                status, headers, body = _request("GET", base + "/api/v1/stations?limit=5")
                answers.append(("read", status, headers, body))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        own_cluster.stop()
        outage = len(answers)
        time.sleep(3.0)
        own_cluster.start()
        back = time.monotonic()
        first_ok = None
        while first_ok is None and time.monotonic() - back < 10:
            status, _, _ = _request("GET", base + "/api/v1/stations?limit=1")
            if status == 200:
                first_ok = time.monotonic() - back
            else:
                time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    statuses = {status for _, status, _, _ in answers}
    print(
        f"{len(answers)} answers, {sum(a[1] == 503 for a in answers)} of them 503, "
        f"{len(acknowledged)} writes acknowledged, first 200 {first_ok} s after restart"
    )
    assert statuses <= {200, 201, 503}, statuses
    unavailable = [a for a in answers if a[1] == 503]
    assert unavailable, "the outage was not seen"
    for _, _, headers, body in unavailable:
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] and body["status"] == 503
    assert any(status in (200, 201) for _, status, _, _ in answers[outage:])  # recovered
    assert first_ok is not None and first_ok < 2.0
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = set(conn.scalars(text("SELECT id FROM stations")))
    engine.dispose()
    assert set(acknowledged) <= stored, "an acknowledged write was lost"


def _postgres_processes(postmaster: int) -> list[int]:
    """The postmaster and every process it started."""
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster:
                found.append(int(entry.name))
    return found


def test_kill_9_in_the_middle_of_an_import_writes_nothing(own_cluster: Cluster, tmp_path):
    url = own_cluster.url
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [104.0 + (i % 200) / 5000, 30.0 + (i // 200) / 5000],
            },
            "properties": {"code": f"K{i:05d}", "use": "residential", "households": 10},
        }
        for i in range(20_000)
    ]
    path = tmp_path / "buildings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    importing = subprocess.Popen(
        [str(BIN / "gridmap"), "import", str(path), "--layer", "buildings"],
        env=cli_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = make_engine(url)
    killed = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and importing.poll() is None:
            with engine.connect() as conn:
                writing = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND query LIKE 'INSERT INTO buildings%'"
                    )
                )
            if writing:
                victims = _postgres_processes(own_cluster.status().pid)
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
    finally:
        engine.dispose()
    assert killed, "the import finished before it could be killed"
    _, err = importing.communicate(timeout=60)
    assert importing.returncode == 1 and "Traceback" not in err, err
    assert "database" in err
    gone = time.monotonic() + 20  # until the killed processes are reaped
    while any(Path(f"/proc/{pid}").exists() for pid in victims) and time.monotonic() < gone:
        time.sleep(0.1)
    assert own_cluster.start()  # the pid files left behind are cleared
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM buildings")) == 0
    engine.dispose()


def test_concurrent_edits_of_neighbouring_grids(db_url, layout, engine, tmp_path):  # noqa: F811
    """Six clients rename three neighbouring grids for 3 s over real HTTP, each with
    the ETag it read: every accepted change is one revision, versions have no gap."""
    token = bearer(_token(db_url))
    accepted: dict[int, list[tuple[int, str]]] = {grid_id: [] for grid_id in layout.values()}
    refused = []
    lock = threading.Lock()
    stop = threading.Event()

    with (tmp_path / "serve.log").open("wb") as log, serving(db_url, log) as base:

        def edit(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                grid_id = list(layout.values())[(n + i) % 3]
                url = f"{base}/api/v1/grids/{grid_id}"
                _, headers, _ = _request("GET", url)
                name = f"client {n} edit {i}"
                status, headers, body = _request(
                    "PATCH",
                    url + f"?reason=r{n}-{i}",
                    {"properties": {"name": name}},
                    {**token, "If-Match": headers["ETag"]},
                )
                with lock:
                    if status == 200:
                        accepted[grid_id].append((int(headers["ETag"].strip('"')), name))
                    else:
                        refused.append(status)

        threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(3.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert set(refused) <= {412}, refused
    assert sum(len(v) for v in accepted.values()) > 10
    with engine.connect() as conn:
        for grid_id, answered in accepted.items():
            names = dict(answered)
            assert len(names) == len(answered)  # no two accepted changes share a version
            revisions = conn.execute(
                text(
                    "SELECT version, before, after FROM grid_revisions "
                    "WHERE grid_id = :id ORDER BY version"
                ),
                {"id": grid_id},
            ).all()
            current = conn.scalar(text("SELECT version FROM grids WHERE id = :id"), {"id": grid_id})
            versions = [r.version for r in revisions]
            assert versions == list(range(1, current + 1))  # consecutive, no gap, no twin
            assert sorted(names) == versions[1:]  # one revision per accepted change
            for previous, revision in zip(revisions, revisions[1:], strict=False):
                assert revision.before == previous.after  # each change starts where one ended
                assert revision.after["name"] == names[revision.version]
