"""The embedded PostGIS cluster: start, stop, restart and the awkward cases."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from gridmap.db import migrate
from gridmap.db.cluster import (
    SERVICE_HOME,
    Cluster,
    ClusterState,
    PostgresNotInstalled,
    find_pg_bin,
    relocated_directory,
)
from gridmap.settings import PROJECT_ROOT
from tests.helpers import BIN, cli_env, make_tempdir, run_cli

HEAD = migrate.head_revision()


def _postgis_version(url: str) -> str:
    parts = make_url(url)
    with psycopg2.connect(
        host=parts.host,
        port=parts.port,
        user=parts.username,
        password=parts.password,
        dbname=parts.database,
    ) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT postgis_lib_version()")
            version = cur.fetchone()[0]
    conn.close()
    return version


@pytest.fixture
def fresh_cluster():
    base = make_tempdir("gridmap-cluster-")
    made = Cluster(base / "pg", durable=False)
    yield made
    made.remove()
    shutil.rmtree(base, ignore_errors=True)


def test_start_stop_restart(fresh_cluster: Cluster):
    assert not fresh_cluster.status().initialised
    url = fresh_cluster.start()
    status = fresh_cluster.status()
    assert status.running and status.pid and status.port == make_url(url).port
    assert _postgis_version(url).startswith("3.")
    if os.geteuid() == 0:
        # initdb refuses root: the cluster belongs to the postgres system user.
        owner = pwd.getpwuid(fresh_cluster.data_dir.stat().st_uid).pw_name
        assert owner == "postgres"

    assert fresh_cluster.start() == url  # already running: same server, no error
    assert fresh_cluster.status().pid == status.pid

    assert fresh_cluster.stop() is True
    assert not fresh_cluster.status().running
    with pytest.raises(psycopg2.OperationalError):
        _postgis_version(url)
    assert fresh_cluster.stop() is False

    assert fresh_cluster.start() == url  # restart keeps port, password and data
    assert _postgis_version(url).startswith("3.")


def test_stale_pid_file_is_cleared(fresh_cluster: Cluster):
    fresh_cluster.start()
    fresh_cluster.stop()
    # A crash leaves postmaster.pid behind, naming a pid that is now something else.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = fresh_cluster.data_dir / "postmaster.pid"
        pid_file.write_text(f"{sleeper.pid}\n{fresh_cluster.data_dir}\n")
        assert not fresh_cluster.status().running
        url = fresh_cluster.start()
        assert _postgis_version(url)
    finally:
        sleeper.kill()


def test_taken_port_moves_to_a_free_one(fresh_cluster: Cluster):
    first_url = fresh_cluster.start()
    fresh_cluster.stop()
    taken = make_url(first_url).port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        url = fresh_cluster.start()
        assert make_url(url).port != taken
        assert fresh_cluster.state().port == make_url(url).port  # remembered for next time
        assert _postgis_version(url)


def test_missing_server_packages_say_what_to_install(tmp_path: Path):
    with pytest.raises(PostgresNotInstalled, match="apt-get install postgresql-15-postgis-3"):
        find_pg_bin(tmp_path)
    result = run_cli(
        "db",
        "start",
        env=cli_env(GRIDMAP_PG_BIN=str(tmp_path), GRIDMAP_PG_DIR=str(tmp_path / "pg")),
        check=False,
    )
    assert result.returncode != 0
    assert "postgis" in result.stderr.lower() and "apt-get install" in result.stderr
    assert not (tmp_path / "pg").exists()


def test_external_database_url_starts_nothing(tmp_path: Path, db_url: str):
    env = cli_env(db_url, GRIDMAP_PG_DIR=str(tmp_path / "pg"))
    started = run_cli("db", "start", env=env)
    assert "nothing to start" in started.stdout
    status = run_cli("db", "status", env=env)
    assert f"schema at {HEAD}" in status.stdout
    assert not (tmp_path / "pg").exists()


def test_cli_start_status_stop(tmp_path: Path):
    base = make_tempdir("gridmap-cli-")
    env = cli_env(GRIDMAP_PG_DIR=str(base / "pg"))
    try:
        assert "not created yet" in run_cli("db", "status", env=env, check=False).stdout
        assert "database running" in run_cli("db", "start", env=env).stdout
        assert "schema at nothing" in run_cli("db", "status", env=env).stdout
        assert f"schema at {HEAD}" in run_cli("db", "migrate", env=env).stdout
        assert "database stopped" in run_cli("db", "stop", env=env).stdout
        stopped = run_cli("db", "status", env=env, check=False)
        assert stopped.returncode == 1 and "stopped" in stopped.stdout
    finally:
        Cluster(base / "pg").remove()
        shutil.rmtree(base, ignore_errors=True)


def _python_for_service_user() -> tuple[list[str], dict[str, str]] | None:
    """An interpreter the ``postgres`` user can run gridmap with, and its environment.

    The virtualenv's own interpreter may live in root's home (pyenv); then the
    system Python of the same version runs the virtualenv's packages.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    path = os.pathsep.join([sysconfig.get_path("purelib"), str(PROJECT_ROOT)])
    for python, extra in ((str(BIN / "python"), {}), (f"/usr/bin/{version}", {"PYTHONPATH": path})):
        env = {**os.environ, **extra}
        probe = subprocess.run(
            ["runuser", "-u", "postgres", "--", python, "-c", "import gridmap.cli"],
            capture_output=True,
            env=env,
        )
        if probe.returncode == 0:
            return ["runuser", "-u", "postgres", "--", python, "-m", "gridmap"], extra
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to a normal user")
def test_runs_as_a_normal_user():
    """The same command works for a user who is not root (initdb run directly)."""
    found = _python_for_service_user()
    if found is None:
        pytest.skip("no Python the postgres user may run holds gridmap's packages")
    as_user, extra = found
    base = make_tempdir("gridmap-user-")
    shutil.chown(base, "postgres", "postgres")
    env = cli_env(GRIDMAP_PG_DIR=str(base / "pg"), HOME=str(base), **extra)
    try:
        started = subprocess.run(
            [*as_user, "db", "start"], env=env, capture_output=True, text=True, timeout=120
        )
        assert started.returncode == 0, started.stderr
        assert (base / "pg" / "cluster" / "PG_VERSION").exists()
        assert pwd.getpwuid((base / "pg" / "cluster.json").stat().st_uid).pw_name == "postgres"
        assert _postgis_version(json_url(base / "pg" / "cluster.json")).startswith("3.")
        stopped = subprocess.run(
            [*as_user, "db", "stop"], env=env, capture_output=True, text=True, timeout=120
        )
        assert stopped.returncode == 0 and "database stopped" in stopped.stdout
    finally:
        subprocess.run([*as_user, "db", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def json_url(state_file: Path) -> str:
    return ClusterState(**json.loads(state_file.read_text())).url()


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only root's clusters move out of a private folder (another user's cluster "
    "runs as that user, who can enter its own folders); make test runs as root",
)
def test_root_in_a_private_folder(tmp_path: Path):
    """As root, a clone inside a mode-700 folder (like /root) gets a working cluster.

    The folder's mode is left as it is: the cluster lives under /var/lib/gridmap,
    one folder per clone, and the clone's data/pg links to it.
    """
    private = Path(tempfile.mkdtemp(prefix="gridmap-private-"))
    private.chmod(0o700)
    wanted = private / "clone" / "data" / "pg"
    home = relocated_directory(wanted)
    env = cli_env(GRIDMAP_PG_DIR=str(wanted))
    try:
        started = run_cli("db", "start", env=env)
        assert "database running" in started.stdout
        assert (private.stat().st_mode & 0o777) == 0o700
        assert wanted.is_symlink() and wanted.resolve() == home
        assert home.parent == SERVICE_HOME
        assert pwd.getpwuid((home / "cluster").stat().st_uid).pw_name == "postgres"
        assert f"schema at {HEAD}" in run_cli("db", "migrate", env=env).stdout
        assert _postgis_version(json_url(wanted / "cluster.json")).startswith("3.")
        assert "database stopped" in run_cli("db", "stop", env=env).stdout
        # A second start finds the same cluster through the link.
        assert "database running" in run_cli("db", "start", env=env).stdout
        assert relocated_directory(private / "other" / "data" / "pg") != home
    finally:
        Cluster(wanted).remove()
        assert not wanted.exists() and not home.exists()
        shutil.rmtree(private, ignore_errors=True)
