"""Fixtures: a throwaway PostGIS cluster for the whole run, a fresh database per test.

The cluster lives in a temporary directory (never ``data/pg``) and is removed at
the end. Each test that asks for ``engine`` gets its own database, copied from a
migrated template (and ``demo_engine`` from one with the demo town loaded).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import IO

import psycopg2
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from gridmap.db import migrate
from gridmap.db.cluster import Cluster
from gridmap.db.engine import make_engine
from gridmap.demo import load_demo
from tests.helpers import BIN, DEMO_DIR, cli_env, free_port, make_tempdir

_numbers = itertools.count()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    base = make_tempdir("gridmap-test-")
    test_cluster = Cluster(base / "pg", durable=False)
    test_cluster.start()
    yield test_cluster
    test_cluster.remove()
    shutil.rmtree(base, ignore_errors=True)


def _admin(cluster: Cluster, sql: str) -> None:
    url = make_url(cluster.url)
    with closing(
        psycopg2.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname="postgres",
        )
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)


def _database_url(cluster: Cluster, name: str) -> str:
    return make_url(cluster.url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_db(cluster: Cluster) -> str:
    """A migrated, empty database to copy."""
    _admin(cluster, "CREATE DATABASE gridmap_template TEMPLATE gridmap")
    engine = make_engine(_database_url(cluster, "gridmap_template"))
    migrate.upgrade(engine)
    engine.dispose()
    return "gridmap_template"


@pytest.fixture(scope="session")
def demo_template_db(cluster: Cluster, template_db: str) -> str:
    """A migrated database with the demo town loaded, to copy."""
    _admin(cluster, f"CREATE DATABASE gridmap_demo_template TEMPLATE {template_db}")
    engine = make_engine(_database_url(cluster, "gridmap_demo_template"))
    load_demo(engine, DEMO_DIR)
    engine.dispose()
    return "gridmap_demo_template"


def _fresh_database(cluster: Cluster, template: str) -> Iterator[str]:
    name = f"gridmap_test_{os.getpid()}_{next(_numbers)}"
    _admin(cluster, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield _database_url(cluster, name)
    _admin(cluster, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(cluster: Cluster, template_db: str) -> Iterator[str]:
    """URL of a fresh migrated database of this test's own."""
    yield from _fresh_database(cluster, template_db)


@pytest.fixture
def empty_db_url(cluster: Cluster) -> Iterator[str]:
    """URL of a fresh database with PostGIS and no gridmap tables."""
    yield from _fresh_database(cluster, "gridmap")


@pytest.fixture
def demo_db_url(cluster: Cluster, demo_template_db: str) -> Iterator[str]:
    yield from _fresh_database(cluster, demo_template_db)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def demo_engine(demo_db_url: str) -> Iterator[Engine]:
    eng = make_engine(demo_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def app(db_url: str):
    from api import create_app

    return create_app({"TESTING": True, "DATABASE_URL": db_url})


@pytest.fixture
def client(app):
    return app.test_client()


@contextmanager
def serving(db_url: str, output: IO[bytes] | None = None, **env: str) -> Iterator[str]:
    """``gridmap serve`` (gunicorn) on a free local port; yields its base URL.

    Its stdout and stderr (gunicorn's logs) go to ``output`` when given.
    """
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "gridmap"), "serve", "--port", str(port), "--workers", "1"],
        env=cli_env(db_url, **env),
        stdout=output or subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(
                    proc.stdout.read().decode() if proc.stdout else "gridmap serve stopped"
                ) from None
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("gridmap serve did not answer within 30 s")
    try:
        yield base
    finally:  # a failing test must not leave its server running
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def live_server(db_url: str) -> Iterator[str]:
    """``gridmap serve`` on the test's empty database."""
    with serving(db_url) as base:
        yield base


def _make_tokens(engine: Engine) -> dict[str, str]:
    from gridmap.db.engine import session_scope
    from gridmap.models import ROLES
    from gridmap.tokens import create_token

    with session_scope(engine) as session:
        return {role: create_token(session, f"test-{role}", role) for role in ROLES}


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    """A bearer token per role in the test's database."""
    return _make_tokens(engine)


@pytest.fixture
def demo_tokens(demo_engine: Engine) -> dict[str, str]:
    return _make_tokens(demo_engine)


@pytest.fixture
def demo_client(demo_db_url: str):
    from api import create_app

    return create_app({"TESTING": True, "DATABASE_URL": demo_db_url}).test_client()


@pytest.fixture
def browser() -> Iterator:
    """Debian's headless Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    from tests.helpers import CHROMIUM

    # make test installs both Debian's chromium and playwright: a missing one is a
    # broken set-up, so these tests fail rather than skip.
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
