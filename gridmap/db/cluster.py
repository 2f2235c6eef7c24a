"""The embedded PostGIS cluster: initdb, start, stop and status of a private server.

With no ``GRIDMAP_DATABASE_URL`` gridmap runs its own PostgreSQL cluster in a
directory it owns (``data/pg`` by default). The layout of that directory::

    data/pg/
        cluster/          PGDATA, made by initdb
        cluster.json      port, user, password and database: the remembered URL
        postgres.log      the server log
        run/              the Unix socket (when the path is short enough)

initdb refuses to run as root, so as root every server program runs as the
``postgres`` system user (through ``runuser``) and the directory is owned by it.
That user must reach the directory. A clone in a private folder (``/root`` is mode
700) is not reachable, so there the cluster lives in a folder of its own under
:data:`SERVICE_HOME` (``/var/lib/gridmap/<clone>-<hash of the path>``, one per
clone) and the asked-for path becomes a symbolic link to it; no folder of the
user's changes its mode.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

#: System user that owns the cluster when gridmap runs as root.
SERVICE_USER = "postgres"
#: Where clusters live, one folder per clone, when the service user cannot reach the
#: asked-for folder (a clone in root's private home).
SERVICE_HOME = Path("/var/lib/gridmap")
#: Superuser and database made in a new cluster.
CLUSTER_USER = "gridmap"
CLUSTER_DATABASE = "gridmap"
#: Longest Unix socket path the kernel takes (sun_path is 108 bytes with the NUL).
_MAX_SOCKET_PATH = 107
#: Seconds pg_ctl waits for the server to start or stop.
_PG_CTL_TIMEOUT = 60


class ClusterError(RuntimeError):
    """The embedded cluster could not be set up, started or stopped."""


class PostgresNotInstalled(ClusterError):
    """The PostgreSQL or PostGIS server packages are missing on this machine."""


def install_hint() -> str:
    """Say exactly what to install for the embedded cluster on Debian or Ubuntu."""
    return (
        "gridmap's embedded database needs the PostgreSQL and PostGIS server packages.\n"
        "On Debian 12: sudo apt-get install postgresql-15-postgis-3\n"
        "(on other releases: postgresql-<major>-postgis-3 for the PostgreSQL major you have),\n"
        "or set GRIDMAP_DATABASE_URL to an existing PostGIS server."
    )


def find_pg_bin(preferred: Path | None = None) -> Path:
    """Locate the directory of the PostgreSQL server programs.

    Parameters
    ----------
    preferred
        A directory to use as it is (``GRIDMAP_PG_BIN``).

    Returns
    -------
    Path
        The directory holding ``initdb``, ``pg_ctl`` and ``postgres``; the newest
        ``/usr/lib/postgresql/<major>/bin`` when none is given.

    Raises
    ------
    PostgresNotInstalled
        When no server programs or no PostGIS extension files are found.
    """
    candidates = (
        [preferred]
        if preferred
        else sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
    )
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            if not _postgis_installed(bin_dir):
                raise PostgresNotInstalled(
                    f"PostgreSQL is in {bin_dir} but PostGIS is not installed for it.\n"
                    + install_hint()
                )
            return bin_dir
    raise PostgresNotInstalled(install_hint())


def _postgis_installed(bin_dir: Path) -> bool:
    try:
        share = subprocess.run(
            [str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        share = f"/usr/share/postgresql/{bin_dir.parent.name}"
    return (Path(share) / "extension" / "postgis.control").exists()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ClusterState:
    """What the cluster remembers between runs (``cluster.json``)."""

    port: int
    password: str
    user: str = CLUSTER_USER
    database: str = CLUSTER_DATABASE
    host: str = "127.0.0.1"

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL of the cluster's database."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


@dataclass
class ClusterStatus:
    """The answer of :meth:`Cluster.status`."""

    initialised: bool
    running: bool
    pid: int | None
    port: int | None
    directory: str


class Cluster:
    """A PostgreSQL + PostGIS cluster that gridmap owns, in one directory.

    Parameters
    ----------
    directory
        Where the cluster lives; made on :meth:`init`.
    pg_bin
        Directory of the server programs; found with :func:`find_pg_bin` if omitted.
    durable
        ``False`` turns off fsync and synchronous commit: for throwaway test
        clusters only, where speed matters and a crash loses nothing of value.
    """

    def __init__(self, directory: Path, pg_bin: Path | None = None, durable: bool = True):
        #: The path asked for; a link to the real folder when that had to move.
        self.requested = Path(directory).absolute()
        self.pg_bin = find_pg_bin(pg_bin)
        self.durable = durable
        self._set_directory(Path(directory).resolve())

    def _set_directory(self, directory: Path) -> None:
        self.directory = directory
        self.data_dir = self.directory / "cluster"
        self.state_file = self.directory / "cluster.json"
        self.log_file = self.directory / "postgres.log"
        self.socket_dir = self.directory / "run"

    # -- running server programs -------------------------------------------------

    @property
    def as_service_user(self) -> bool:
        """Whether server programs must run as :data:`SERVICE_USER` (we are root)."""
        return os.geteuid() == 0

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.pg_bin / program), *args]
        if self.as_service_user:
            cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
        result = subprocess.run(
            cmd, cwd=self.directory, capture_output=True, text=True, env=_server_env()
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "server log (last lines):\n" + "\n".join(text[-lines:]) if text else ""

    def _give_to_service_user(self, path: Path) -> None:
        if self.as_service_user:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _service_user_can_write(self, path: Path) -> bool:
        probe = subprocess.run(
            ["runuser", "-u", SERVICE_USER, "--", "test", "-w", str(path)], capture_output=True
        )
        return probe.returncode == 0

    def _make_directory(self) -> None:
        """Make the cluster's folder where the service user can work in it.

        As root, when a folder above the asked-for path is private, the folder is
        made under :data:`SERVICE_HOME` instead and the asked-for path links to it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self._give_to_service_user(self.directory)
        if not self.as_service_user or self._service_user_can_write(self.directory):
            return
        if any(self.directory.iterdir()) or self.requested.is_symlink():
            raise ClusterError(
                f"The '{SERVICE_USER}' user cannot write {self.directory}, which is not empty; "
                "set GRIDMAP_PG_DIR to a folder it can reach."
            )
        home = relocated_directory(self.requested)
        SERVICE_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
        home.mkdir(mode=0o700, exist_ok=True)
        self._give_to_service_user(home)
        self.directory.rmdir()
        self.requested.symlink_to(home, target_is_directory=True)
        self._set_directory(home)
        if not self._service_user_can_write(home):
            raise ClusterError(f"The '{SERVICE_USER}' user cannot write {home}.")

    # -- state --------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        """Whether initdb has made the cluster and its state file exists."""
        return (self.data_dir / "PG_VERSION").exists() and self.state_file.exists()

    def state(self) -> ClusterState:
        """The remembered port and credentials."""
        try:
            return ClusterState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError as exc:
            raise ClusterError(
                f"No embedded cluster in {self.directory}: run 'gridmap db start'."
            ) from exc

    def _save_state(self, state: ClusterState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's gridmap database."""
        return self.state().url()

    def _running_pid(self) -> int | None:
        """The postmaster's pid, or ``None``; removes a pid file a dead server left."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        except PermissionError:
            pid = None
        if pid is not None and _is_postgres_process(pid):
            return pid
        # A crash or power cut leaves the file behind; its pid may now belong to
        # another process, which would make postgres refuse to start.
        pid_file.unlink(missing_ok=True)
        return None

    # -- lifecycle ----------------------------------------------------------------

    def init(self) -> None:
        """Make the cluster with initdb (password authentication), if not made yet."""
        if self.initialised:
            return
        self._make_directory()
        if self.data_dir.exists():
            # A half-made cluster from an interrupted initdb: start it over.
            shutil.rmtree(self.data_dir)
        state = ClusterState(port=free_port(), password=secrets.token_hex(16))
        pwfile = self.directory / "initdb.pw"
        pwfile.write_text(state.password + "\n")
        pwfile.chmod(0o600)
        self._give_to_service_user(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                state.user,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# gridmap writes its per-start settings here\n")
            conf.write("include_if_exists = 'gridmap.conf'\n")
        self._save_state(state)

    def _write_runtime_conf(self, port: int) -> None:
        lines = [f"port = {port}", "listen_addresses = '127.0.0.1'"]
        socket_path = self.socket_dir / f".s.PGSQL.{port}"
        if len(str(socket_path)) <= _MAX_SOCKET_PATH:
            self.socket_dir.mkdir(exist_ok=True)
            self._give_to_service_user(self.socket_dir)
            lines.append(f"unix_socket_directories = '{self.socket_dir}'")
        else:
            lines.append("unix_socket_directories = ''")
        if not self.durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        conf = self.data_dir / "gridmap.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._give_to_service_user(conf)

    def start(self) -> str:
        """Start the server (initialising it first if needed) and return its URL.

        An already running cluster is left as it is; a stale pid file is removed;
        a port taken by another program is replaced by a free one.
        """
        self.init()
        state = self.state()
        if self._running_pid() is None:
            if port_taken(state.port):
                state.port = free_port()
                self._save_state(state)
            self._write_runtime_conf(state.port)
            self._run(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_PG_CTL_TIMEOUT),
            )
        self._ensure_database(state)
        return state.url()

    def _ensure_database(self, state: ClusterState) -> None:
        params = {
            "host": state.host,
            "port": state.port,
            "user": state.user,
            "password": state.password,
        }
        with closing(_connect(dbname="postgres", **params)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (state.database,))
                if cur.fetchone() is None:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(state.database))
                    )
        with closing(_connect(dbname=state.database, **params)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    def stop(self) -> bool:
        """Stop the server; return whether it was running."""
        if not self.initialised or self._running_pid() is None:
            return False
        self._run(
            "pg_ctl",
            "stop",
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(_PG_CTL_TIMEOUT),
        )
        return True

    def status(self) -> ClusterStatus:
        """Whether the cluster exists and runs, its pid and port."""
        if not self.initialised:
            return ClusterStatus(False, False, None, None, str(self.directory))
        pid = self._running_pid()
        return ClusterStatus(True, pid is not None, pid, self.state().port, str(self.directory))

    def remove(self) -> None:
        """Stop the server and delete the whole directory (for throwaway clusters)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.requested.is_symlink():
            self.requested.unlink()


def relocated_directory(requested: Path) -> Path:
    """The folder under :data:`SERVICE_HOME` for a cluster asked for at ``requested``.

    One per clone: named after the clone's folder (the one above ``data/pg``) and
    keyed by a hash of the whole path, so two clones never share a cluster.
    """
    path = requested.absolute()
    clone = path.parent.parent.name if path.parent.name == "data" else path.name
    key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return SERVICE_HOME / f"{clone or 'gridmap'}-{key}"


def _is_postgres_process(pid: int) -> bool:
    """Whether ``pid`` is a live postgres process (a killed one not yet reaped is not)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm in {"postgres", "postmaster"} and state not in {"Z", "X"}


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _connect(retries: int = 20, **params: object) -> psycopg2.extensions.connection:
    """Connect, retrying briefly while a just-started server finishes recovery."""
    for _ in range(retries - 1):
        try:
            return psycopg2.connect(connect_timeout=5, **params)
        except psycopg2.OperationalError:
            time.sleep(0.25)
    return psycopg2.connect(connect_timeout=5, **params)
