"""The gridmap command end to end: migrate, dump and restore."""

from __future__ import annotations

from sqlalchemy import text

from gridmap.db import migrate
from tests.helpers import cli_env, run_cli

HEAD = migrate.head_revision()


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("areas", "grids", "buildings", "stations", "roads", "grid_revisions")
        }


def test_dump_and_restore_bring_back_what_was_lost(demo_engine, demo_db_url, tmp_path):
    before = _counts(demo_engine)
    env = cli_env(demo_db_url)
    dump = tmp_path / "gridmap.dump"
    assert "dumped" in run_cli("db", "dump", str(dump), env=env).stdout
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM stations"))
        conn.execute(text("UPDATE buildings SET households = 0"))
    assert _counts(demo_engine)["stations"] == 0
    assert "restored" in run_cli("db", "restore", str(dump), env=env).stdout
    assert _counts(demo_engine) == before
    with demo_engine.connect() as conn:
        assert conn.execute(text("SELECT sum(households) FROM buildings")).scalar() > 0
        assert (
            conn.execute(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
            ).scalar()
            == 1
        )


def test_restore_of_a_missing_file_fails_cleanly(db_url, tmp_path):
    result = run_cli("db", "restore", str(tmp_path / "nope.dump"), env=cli_env(db_url), check=False)
    assert result.returncode == 1
    assert "no such dump file" in result.stderr


def test_downgrade_and_migrate(empty_db_url):
    env = cli_env(empty_db_url)
    assert f"schema at {HEAD}" in run_cli("db", "migrate", env=env).stdout
    assert "schema at base" in run_cli("db", "downgrade", "base", env=env).stdout
    assert "schema at nothing" in run_cli("db", "status", env=env).stdout


def test_bad_field_map_is_a_usage_error(db_url, tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("name\nA\n")
    result = run_cli(
        "import", str(path), "--layer", "workers", "--map", "name", env=cli_env(db_url), check=False
    )
    assert result.returncode == 2
    assert "is not FIELD=SOURCE" in result.stderr
