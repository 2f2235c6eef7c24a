#!/usr/bin/env python3
"""Time import checks on 20,000 buildings: linear in the number of features.

Three timings, each inside one transaction that is rolled back (the database is left
as it was):

- checking a file of 20,000 buildings in which every code appears twice (the file's
  own duplicates, all listed);
- refusing 20,000 buildings whose codes all exist already (every one listed);
- writing 20,000 valid buildings;

and the same at 5,000 and 10,000, so the growth can be read (linear: twice the
features, about twice the time). Needs gridmap's database (the embedded cluster or
``GRIDMAP_DATABASE_URL``), migrated.

Usage: ``python scripts/bench_import.py [--sizes 5000,10000,20000]``
"""

from __future__ import annotations

import argparse
import time

import shapely
from sqlalchemy.orm import Session

from gridmap.db.engine import database_url, make_engine
from gridmap.geometry import parse_crs
from gridmap.io.files import SourceData
from gridmap.io.importer import ImportOptions, check_source, store_checked
from gridmap.io.store import ImportRejected
from gridmap.settings import Settings


def buildings(n: int) -> SourceData:
    """``n`` footprints 10 m apart in Chengdu, codes ``BENCH00000``..."""
    step = 0.0001
    footprints = [
        shapely.box(
            104.0 + (i % 200) * step,
            30.6 + (i // 200) * step,
            104.0 + (i % 200) * step + step / 2,
            30.6 + (i // 200) * step + step / 2,
        )
        for i in range(n)
    ]
    records = [{"code": f"BENCH{i:05d}", "use": "school"} for i in range(n)]
    return SourceData(footprints, records, parse_crs(None))


def timed(work, *args) -> tuple[float, object]:
    start = time.perf_counter()
    try:
        result = work(*args)
    except ImportRejected as exc:
        result = exc
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="5000,10000,20000")
    args = parser.parse_args()
    engine = make_engine(database_url(Settings.from_env()))
    options = ImportOptions(layer="buildings")
    print("features | duplicates in file (s) | existing codes refused (s) | valid import (s)")
    print("---:|---:|---:|---:")
    for n in (int(s) for s in args.sizes.split(",")):
        source = buildings(n)
        doubled = SourceData(
            source.geoms + source.geoms, source.records + source.records, source.crs
        )
        duplicates, refused = timed(check_source, doubled, options)
        assert isinstance(refused, ImportRejected) and len(refused.problems) == n
        with engine.connect() as conn:
            outer = conn.begin()
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            checked = check_source(source, options)
            written, _ = timed(store_checked, session, checked, options, "bench")
            existing, refused = timed(store_checked, session, checked, options, "bench")
            assert isinstance(refused, ImportRejected) and len(refused.problems) == n
            session.close()
            outer.rollback()
        print(f"{n} | {duplicates:.2f} | {existing:.2f} | {written:.2f}")


if __name__ == "__main__":
    main()
