"""Dump and restore of gridmap's database with pg_dump and pg_restore."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from gridmap.db.cluster import ClusterError, PostgresNotInstalled


def client_program(name: str) -> str:
    """Path of a PostgreSQL client program: the newest server's own, else on PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    found = shutil.which(name)
    if found is None:
        raise PostgresNotInstalled(f"{name} not found: install postgresql-client")
    return found


def _libpq_args(url: str) -> tuple[list[str], dict[str, str]]:
    parsed = make_url(url)
    args = [
        "-h",
        parsed.host or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        "-d",
        parsed.database or "postgres",
    ]
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password  # kept out of the process list
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ClusterError(f"{Path(cmd[0]).name} failed: {result.stderr.strip()}")


def dump(url: str, path: Path) -> None:
    """Write the whole database to ``path`` in pg_dump's custom format."""
    args, env = _libpq_args(url)
    _run([client_program("pg_dump"), *args, "--format=custom", "--no-owner", "-f", str(path)], env)


def restore(url: str, path: Path) -> None:
    """Replace the database's contents with a dump made by :func:`dump`."""
    if not Path(path).exists():
        raise ClusterError(f"no such dump file: {path}")
    args, env = _libpq_args(url)
    _run(
        [
            client_program("pg_restore"),
            *args,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            str(path),
        ],
        env,
    )
