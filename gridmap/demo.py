"""Loading the demo town (``data/demo``, written by ``scripts/make_demo.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, select

from gridmap.db.engine import session_scope
from gridmap.io import LAYERS, read_rows
from gridmap.io.store import import_rows
from gridmap.models import Area

#: Files of the demo town in load order (references point backwards).
DEMO_FILES = (
    ("areas", "areas.geojson"),
    ("workers", "workers.csv"),
    ("grids", "grids.geojson"),
    ("buildings", "buildings.geojson"),
    ("stations", "stations.geojson"),
    ("roads", "roads.geojson"),
)


def demo_street_code(demo_dir: Path) -> str:
    """The code of the demo town's street, read from its areas file."""
    areas = json.loads((demo_dir / "areas.geojson").read_text(encoding="utf-8"))
    return next(
        f["properties"]["code"] for f in areas["features"] if f["properties"]["level"] == "street"
    )


def load_demo(
    engine: Engine,
    demo_dir: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int] | None:
    """Load the demo town in one transaction, unless it is already there.

    Parameters
    ----------
    engine
        A migrated database.
    demo_dir
        The folder of the demo files.
    progress
        Called with a layer name, the features checked so far and their total.

    Returns
    -------
    dict or None
        Features written per layer, or ``None`` when the town was already loaded.
    """
    street = demo_street_code(demo_dir)
    with session_scope(engine) as session:
        if session.scalar(select(Area.id).where(Area.code == street)) is not None:
            return None
        counts = {}
        for layer, filename in DEMO_FILES:
            report = partial(progress, layer) if progress else None
            rows = read_rows(demo_dir / filename, layer, progress=report)
            counts[layer] = len(
                import_rows(session, LAYERS[layer], rows, author="demo", reason="demo town")
            )
        return counts
