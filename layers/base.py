"""The base of every map: folium with gridmap's own assets, a base map setting, tools.

folium's templates name CDN addresses for Leaflet and its plugins; here every map
and plugin is given local addresses instead (served by gridmap, or inlined for a
standalone file), so a map works on an intranet with no internet.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Callable, Sequence

import folium
from branca.element import Element, MacroElement, Template
from folium.plugins import Fullscreen, MeasureControl

from layers.assets import FULLSCREEN, LEAFLET, MEASURE, STATIC_DIR, Asset

#: Turns a path under ``layers/static`` into the address a page loads it from.
AssetUrl = Callable[[str], str]
#: Base maps by name: a tile URL template and its attribution (``none``: no tiles).
BASE_MAPS = {
    "none": None,
    "osm": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
    "tianditu": (
        "https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
        "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
        "&copy; 天地图",
    ),
}
#: The background of a map without tiles.
PLAIN_BACKGROUND = "#f3f1ec"


def served(prefix: str) -> AssetUrl:
    """Asset addresses under a URL prefix (``/maps/static``)."""
    return lambda path: f"{prefix.rstrip('/')}/{path}"


def _data_uri(path: str) -> str:
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    data = (STATIC_DIR / path).read_bytes()
    if kind == "text/css":  # images the stylesheet names go inline too
        folder = path.rsplit("/", 1)[0]

        def inline(match: re.Match) -> str:
            target = match.group(1).strip("'\"")
            if target.startswith(("data:", "#", "http")):
                return match.group(0)
            return f"url({_data_uri(f'{folder}/{target}')})"

        data = re.sub(r"url\(([^)]+)\)", inline, data.decode("utf-8")).encode("utf-8")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def inlined(path: str) -> str:
    """Asset addresses as data: URIs, for a standalone HTML file that loads nothing."""
    return _data_uri(path)


def _local(element, asset: Asset, url: AssetUrl) -> None:
    element.default_js = [
        (f"{asset.name}_{i}", url(f"{asset.folder}/{p}")) for i, p in enumerate(asset.js)
    ]
    element.default_css = [
        (f"{asset.name}_css_{i}", url(f"{asset.folder}/{p}")) for i, p in enumerate(asset.css)
    ]


def base_map(
    bounds: Sequence[float] | None,
    url: AssetUrl,
    base: str = "none",
    tile_key: str | None = None,
    tools: bool = True,
) -> folium.Map:
    """An empty map fitted to ``bounds`` (minlon, minlat, maxlon, maxlat).

    Parameters
    ----------
    url
        Where the page loads assets from (:func:`served` or :func:`inlined`).
    base
        ``none`` (a plain background; roads come from gridmap's own data), ``osm``,
        ``tianditu`` (needs ``tile_key``), or a tile URL template of an intranet server.
    tools
        Full screen and measuring controls (pages have them, embeds do not).
    """
    fmap = folium.Map(tiles=None, control_scale=True, zoom_control=True)
    _local(fmap, LEAFLET, url)
    # No favicon request (it would be the page's only failing one).
    fmap.get_root().header.add_child(Element('<link rel="icon" href="data:,">'))
    tiles = BASE_MAPS.get(base, (base, "")) if base != "none" else None
    if tiles:
        template, attribution = tiles
        folium.TileLayer(
            template.replace("{key}", tile_key or ""), attr=attribution or base, name="base map"
        ).add_to(fmap)
    else:
        fmap.get_root().header.add_child(
            Element(f"<style>.leaflet-container {{ background: {PLAIN_BACKGROUND}; }}</style>")
        )
    if tools:
        screen = Fullscreen(position="topleft")
        _local(screen, FULLSCREEN, url)
        screen.add_to(fmap)
        measure = MeasureControl(
            position="topleft",
            primary_length_unit="meters",
            primary_area_unit="sqmeters",
            secondary_length_unit="kilometers",
            secondary_area_unit="hectares",
        )
        _local(measure, MEASURE, url)
        measure.add_to(fmap)
    if bounds is not None:
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return fmap


class Legend(MacroElement):
    """A box of coloured swatches with labels, in the bottom right or left corner."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div class="gridmap-legend" style="position: absolute; {{ this.corner }};
             z-index: 1000; background: white; padding: 6px 10px; border-radius: 4px;
             box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 sans-serif;">
          <b>{{ this.title }}</b><br>
          {% for label, colour in this.entries %}
          <span style="display:inline-block;width:12px;height:12px;margin-right:6px;
                background:{{ colour }};border:1px solid #555;vertical-align:middle"></span>
          {{ label }}<br>
          {% endfor %}
        </div>
        {% endmacro %}
        """
    )

    def __init__(self, title: str, entries: Sequence[tuple[str, str]], corner: str = "right"):
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.entries = list(entries)
        self.corner = (
            "bottom: 24px; right: 12px" if corner == "right" else "bottom: 56px; left: 12px"
        )
