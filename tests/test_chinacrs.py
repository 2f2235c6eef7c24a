"""GCJ-02 and BD-09 against published reference pairs, round trips, and through import
and export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from gridmap.io import chinacrs
from tests.helpers import cli_env, run_cli

#: WGS 84 → GCJ-02 pairs published with eviltransform (googollee/eviltransform,
#: test.py): (wgs lon, wgs lat, gcj lon, gcj lat) in Shanghai, Shenzhen and Beijing.
WGS_GCJ = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
]
#: GCJ-02 → BD-09, Tiananmen as given to five decimals in eviltransform's MATLAB tests.
GCJ_BD = [(116.42703, 39.90245, 116.43351, 39.90851)]

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), WGS_GCJ)
def test_wgs84_to_gcj02_matches_published_pairs(lon, lat, glon, glat):
    got = chinacrs.wgs84_to_gcj02(lon, lat)
    assert got == pytest.approx((glon, glat), abs=1e-9)
    back = chinacrs.gcj02_to_wgs84(glon, glat)
    assert metres(*back, lon, lat) < 0.01


@pytest.mark.parametrize(("glon", "glat", "blon", "blat"), GCJ_BD)
def test_gcj02_to_bd09_matches_the_published_pair(glon, glat, blon, blat):
    got = chinacrs.gcj02_to_bd09(glon, glat)
    # The pair is given to 1e-5 degrees (about a metre).
    assert got == pytest.approx((blon, blat), abs=1e-5)


def test_round_trips_over_china_are_within_half_a_metre():
    rng = np.random.default_rng(7)
    lon = rng.uniform(74.0, 134.0, 5000)
    lat = rng.uniform(18.0, 53.0, 5000)
    glon, glat = chinacrs.wgs84_to_gcj02(lon, lat)
    # The offset itself is hundreds of metres: the inverse is not a no-op.
    assert np.median(metres(lon, lat, glon, glat)) > 100
    assert metres(*chinacrs.gcj02_to_wgs84(glon, glat), lon, lat).max() < 0.5
    blon, blat = chinacrs.wgs84_to_bd09(lon, lat)
    assert metres(*chinacrs.bd09_to_wgs84(blon, blat), lon, lat).max() < 0.5


def test_outside_china_nothing_moves():
    lon, lat = np.array([-0.1276, 151.2093]), np.array([51.5072, -33.8688])
    assert np.array(chinacrs.wgs84_to_gcj02(lon, lat)) == pytest.approx(np.array([lon, lat]))


def test_names():
    assert chinacrs.offset_crs("gcj-02") == "GCJ-02"
    assert chinacrs.offset_crs("Baidu") == "BD-09"
    assert chinacrs.offset_crs("EPSG:4326") is None


def test_import_in_gcj02_and_export_back(engine, db_url, tmp_path):
    wgs = (104.0657, 30.6595)
    gcj = chinacrs.wgs84_to_gcj02(*wgs)
    path = tmp_path / "amap.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "Point",
                            "coordinates": [float(gcj[0]), float(gcj[1])],
                        },
                        "properties": {"name": "幸福食堂", "kind": "canteen"},
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    env = cli_env(db_url)
    run_cli("import", str(path), "--layer", "stations", "--crs", "GCJ-02", env=env)
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM stations")).one()
    assert metres(lon, lat, *wgs) < 0.01
    out = tmp_path / "baidu.geojson"
    run_cli("export", str(out), "--layer", "stations", "--crs", "BD-09", env=env)
    exported = json.loads(out.read_text())["features"][0]["geometry"]["coordinates"]
    assert exported == pytest.approx(list(chinacrs.wgs84_to_bd09(*wgs)), abs=1e-7)
    bad = run_cli(
        "export", str(out), "--layer", "stations", "--crs", "EPSG:3857", env=env, check=False
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_a_poi_csv_in_gcj02_with_a_value_map(engine, db_url, tmp_path):
    wgs = [(104.0657, 30.6595), (104.0700, 30.6600)]
    rows = ["name,type,lng,lat"]
    for (lon, lat), (name, kind) in zip(
        wgs, [("幸福食堂", "食堂"), ("社区卫生站", "卫生")], strict=True
    ):
        glon, glat = chinacrs.wgs84_to_gcj02(lon, lat)
        rows.append(f"{name},{kind},{float(glon):.8f},{float(glat):.8f}")
    path = tmp_path / "amap.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    values = tmp_path / "kinds.json"
    values.write_text(
        json.dumps(
            {"kind": {"source": "type", "values": {"食堂": "canteen", "卫生": "health_station"}}}
        ),
        encoding="utf-8",
    )
    run_cli(
        "import",
        str(path),
        "--layer",
        "stations",
        "--crs",
        "GCJ-02",
        "--values",
        str(values),
        env=cli_env(db_url),
    )
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT kind, ST_X(geom), ST_Y(geom) FROM stations ORDER BY ST_X(geom)")
        ).all()
    assert [k for k, _, _ in got] == ["canteen", "health_station"]
    # 8 decimals of a degree is about a millimetre.
    assert max(metres(x, y, *w) for (_, x, y), w in zip(got, wgs, strict=True)) < 0.01
