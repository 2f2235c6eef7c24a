"""The grid editor page: Leaflet-Geoman for reshaping (with snapping) and drawing split
lines, and gridmap's ``editor.js``, which saves every change through the API with
If-Match and draws the validator's refusal where it is."""

from __future__ import annotations

import json
from collections.abc import Sequence

import folium
from branca.element import Element
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.assets import GEOMAN
from layers.base import AssetUrl, base_map
from layers.grids import KIND_COLOURS

PANEL = """
<div id="gm-panel" style="position:absolute; top:10px; left:60px; z-index:1000;
     background:white; padding:8px 10px; border-radius:4px; font:13px/1.6 sans-serif;
     box-shadow:0 1px 4px rgba(0,0,0,.3); max-width:440px">
  <label>planner token <input id="gm-token" type="password" size="28"></label><br>
  <label><input id="gm-adjust" type="checkbox"> hand area to and from neighbours</label>
  <button id="gm-merge" type="button">merge selected</button><br>
  <small>edit a boundary with the edit tool; shift-click grids to select them; draw a
  line across a selected grid to split it</small><br>
  <span id="gm-status" role="status"></span>
</div>
<style>.gm-bad { color: #b2182b; font-weight: bold } .gm-good { color: #1a9850 }</style>
"""


class Editor(JSCSSMixin):
    """Geoman and gridmap's editor script, started on the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmapEditor({{ this._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, url: AssetUrl, options: dict):
        super().__init__()
        self._name = "Editor"
        self.default_js = [
            *((f"geoman_{i}", url(f"{GEOMAN.folder}/{p}")) for i, p in enumerate(GEOMAN.js)),
            ("gridmap_editor", url("editor.js")),
        ]
        self.default_css = [
            (f"geoman_css_{i}", url(f"{GEOMAN.folder}/{p}")) for i, p in enumerate(GEOMAN.css)
        ]
        self.options = json.dumps(options)


def editor_map(bounds: Sequence[float], url: AssetUrl, area: str, api: str) -> folium.Map:
    """The editor of an area's grids, talking to the API at ``api``."""
    fmap = base_map(bounds, url, tools=False)
    fmap.get_root().html.add_child(Element(PANEL))
    fmap.add_child(Editor(url, {"api": api, "area": area, "colours": KIND_COLOURS}))
    return fmap
