"""The grid editor page: Leaflet-Geoman for reshaping (with snapping) and drawing split
lines, and gridmap's ``editor.js``, which saves every change through the API with
If-Match and draws the validator's refusal where it is.

The page holds no token: the planner signs in at ``/signin`` (an HttpOnly session
cookie), and the page gets only the session's CSRF token, which ``editor.js`` sends
with every write. Every name it shows is set as text (``textContent``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import folium
from branca.element import Element
from folium.elements import JSCSSMixin
from folium.template import Template

from layers.assets import GEOMAN
from layers.base import AssetUrl, base_map, page_title
from layers.grids import KIND_COLOURS
from layers.i18n import _, language

#: The panel over the map (a template: its words come from the catalogue).
PANEL = """
<div id="gm-panel" style="position:absolute; top:10px; left:60px; z-index:1000;
     background:white; padding:8px 10px; border-radius:4px; font:13px/1.6 sans-serif;
     box-shadow:0 1px 4px rgba(0,0,0,.3); max-width:440px">
  <span id="gm-who"></span>
  <a id="gm-signin" href="#" hidden>{{ _("sign in")|e }}</a>
  <button id="gm-signout" type="button" hidden>{{ _("sign out")|e }}</button><br>
  <label><input id="gm-adjust" type="checkbox">
    {{ _("hand area to and from neighbours")|e }}</label>
  <button id="gm-merge" type="button">{{ _("merge selected")|e }}</button><br>
  <small>{{ _("Edit a boundary with the edit tool; shift-click grids to select them; draw "
  "a line across a selected grid to split it.")|e }}</small><br>
  <span id="gm-status" role="status"></span>
</div>
<style>.gm-bad { color: #b2182b; font-weight: bold } .gm-good { color: #1a9850 }</style>
"""
#: The editor script's words (``editor.js``), as messages of the catalogue.
MESSAGES = {
    "signedIn": "signed in:",
    "viewOnly": "not signed in: view only",
    "refused": "refused",
    "saved": "saved the new boundary",
    "split": "split the grid in two",
    "merged": "merged the grids",
    "selectFirst": "shift-click the grid to split first",
}


class Editor(JSCSSMixin):
    """Geoman and gridmap's editor script, started on the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        gridmapEditor({{ this._parent.get_name() }}, {{ this.options|tojson }});
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
        self.options = options


def editor_map(
    bounds: Sequence[float], url: AssetUrl, area: str, api: str, session: dict[str, Any]
) -> folium.Map:
    """The editor of an area's grids, talking to the API at ``api``.

    Parameters
    ----------
    session
        ``who`` (``name`` and ``role`` of the signed-in planner, or ``None``), ``csrf``
        (the session's CSRF token, or ``None``), and the ``signin`` and ``signout``
        addresses.
    """
    fmap = base_map(bounds, url, tools=False)
    page_title(fmap, _("Grid editor: %(area)s", area=area))
    fmap.get_root().html.add_child(Element(Template(PANEL).render(_=_)))
    options = {
        "api": api,
        "area": area,
        "colours": KIND_COLOURS,
        "messages": {key: _(text) for key, text in MESSAGES.items()},
        "lang": language(),  # Geoman's own tooltips and hints, in its catalogue
        **session,
    }
    fmap.add_child(Editor(url, options))
    return fmap
