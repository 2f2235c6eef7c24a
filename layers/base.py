"""The base of every map: folium with gridmap's own assets, a base map setting, tools.

folium's templates name CDN addresses for Leaflet and its plugins; here every map
and plugin is given local addresses instead (served by gridmap, or inlined for a
standalone file), so a map works on an intranet with no internet.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import folium
from branca.element import Element, MacroElement, Template
from folium.elements import JSCSSMixin
from folium.plugins import Fullscreen
from folium.template import Template as FoliumTemplate
from markupsafe import Markup, escape

from layers.assets import FULLSCREEN, LEAFLET, STATIC_DIR, Asset
from layers.i18n import HTML_LANG, _, language

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
            template.replace("{key}", tile_key or ""),
            attr=attribution or base,
            name=_("base map"),
        ).add_to(fmap)
    else:
        fmap.get_root().header.add_child(
            Element(f"<style>.leaflet-container {{ background: {PLAIN_BACKGROUND}; }}</style>")
        )
    if tools:
        screen = Fullscreen(
            position="topleft", title=_("full screen"), title_cancel=_("leave full screen")
        )
        _local(screen, FULLSCREEN, url)
        screen.add_to(fmap)
        fmap.add_child(Measure(url))
        fmap.get_root().header.add_child(Element(MEASURE_STYLE))
    if bounds is not None:
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return fmap


#: The look of gridmap's measuring control (``static/measure.js``).
MEASURE_STYLE = (
    "<style>.gridmap-measure-toggle { font: bold 14px/30px sans-serif; text-align: center }"
    " .gridmap-measure-readout { background: white; padding: 2px 8px; max-width: 260px;"
    " font: 12px/1.5 sans-serif }</style>"
)


class Measure(JSCSSMixin):
    """gridmap's measuring control: click points for the length of the line through
    them and the area they enclose (``static/measure.js``; no ``eval``, which
    leaflet-measure needs and the page's policy forbids)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        new L.Control.GridmapMeasure({"messages": {{ this.messages|tojson }}})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, url: AssetUrl):
        super().__init__()
        self._name = "Measure"
        self.default_js = [("gridmap_measure", url("measure.js"))]
        self.default_css = []
        self.messages = {
            "button": _("M"),
            "title": _("measure distances and areas"),
            "start": _("click points on the map; click the button again to finish"),
            "length": _("length"),
            "area": _("area"),
            "hectares": _("ha"),
        }


def page_title(fmap: folium.Map, title: str) -> None:
    """Give a map's page a ``<title>`` (shown as text: it may hold a name)."""
    fmap.get_root().header.add_child(Element(f"<title>{text_html(title)}</title>"), name="title")


#: Screens this narrow (a phone) get the layer list folded into its button.
NARROW = "(max-width: 700px)"


class LayerControl(folium.LayerControl):
    """folium's layer control, open on a desktop and folded into its button on a phone
    (where the open list would cover the summary and the map)."""

    _template = FoliumTemplate(
        """
        {% macro script(this,kwargs) %}
            var {{ this.get_name() }}_layers = {
                base_layers : {
                    {%- for key, val in this.base_layers.items() %}
                    {{ key|tojson }} : {{val}},
                    {%- endfor %}
                },
                overlays :  {
                    {%- for key, val in this.overlays.items() %}
                    {{ key|tojson }} : {{val}},
                    {%- endfor %}
                },
            };
            let {{ this.get_name() }} = L.control.layers(
                {{ this.get_name() }}_layers.base_layers,
                {{ this.get_name() }}_layers.overlays,
                Object.assign({{ this.options|tojavascript }},
                    {"collapsed": window.matchMedia({{ this.narrow|tojson }}).matches})
            ).addTo({{this._parent.get_name()}});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__(collapsed=False)
        self.narrow = NARROW


class Legend(MacroElement):
    """A box of coloured swatches with labels, in the bottom right or left corner."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div class="gridmap-legend" style="position: absolute; {{ this.corner }};
             z-index: 1000; background: white; padding: 6px 10px; border-radius: 4px;
             box-shadow: 0 1px 4px rgba(0,0,0,.3); font: 12px/1.5 sans-serif;">
          <b>{{ this.title|e }}</b><br>
          {% for label, colour in this.entries %}
          <span style="display:inline-block;width:12px;height:12px;margin-right:6px;
                background:{{ colour|e }};border:1px solid #555;vertical-align:middle"></span>
          {{ label|e }}<br>
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


# -- names are text, never markup -------------------------------------------------


def text_html(value: object) -> Markup:
    """``value`` as HTML that shows it as text (for folium options that take HTML).

    Besides ``< > & " '``, the backtick, ``$`` and the backslash become character
    references too, so the text stays text even where a template puts it inside a
    JavaScript template literal.
    """
    return Markup(
        str(escape("" if value is None else value))
        .replace("\\", "&#92;")
        .replace("`", "&#96;")
        .replace("$", "&#36;")
    )


class TextTooltip(MacroElement):
    """A tooltip of lines of plain text (names, codes), built as DOM text nodes.

    folium's own ``Tooltip`` pastes its string into a JavaScript template literal as
    HTML; this one passes the lines as JSON and never parses them as markup.

    Parameters
    ----------
    lines
        The tooltip's lines, shown as they are (``None`` lines are left out).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindTooltip(function () {
            var box = document.createElement("div");
            {{ this.lines|tojson }}.forEach(function (line, i) {
                if (i) { box.appendChild(document.createElement("br")); }
                box.appendChild(document.createTextNode(line));
            });
            return box;
        }, {"sticky": true});
        {% endmacro %}
        """
    )

    def __init__(self, lines: Iterable[object]):
        super().__init__()
        self._name = "TextTooltip"
        self.lines = [str(line) for line in lines if line is not None]


class TextLabel(MacroElement):
    """A label on the map at a point: lines of plain text in a ``div`` of ``css_class``,
    built as DOM text nodes (a ``DivIcon`` given HTML would parse names as markup).

    Parameters
    ----------
    location
        ``[lat, lon]`` of the label's anchor.
    lines
        The label's lines, shown as they are.
    css_class
        Class of the label's ``div`` (its look comes from the page's style); the icon
        around it gets ``css_class + "-icon"``.
    size
        Width and height of the label in pixels; it is centred on ``location``.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.marker({{ this.location|tojson }}, {icon: L.divIcon({
            html: (function () {
                var box = document.createElement("div");
                box.className = {{ this.css_class|tojson }};
                {{ this.lines|tojson }}.forEach(function (line, i) {
                    if (i) { box.appendChild(document.createElement("br")); }
                    box.appendChild(document.createTextNode(line));
                });
                return box;
            })(),
            className: {{ this.icon_class|tojson }},
            iconSize: {{ this.size|tojson }},
            iconAnchor: {{ this.anchor|tojson }}
        })}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        location: Sequence[float],
        lines: Iterable[object],
        css_class: str,
        size: tuple[int, int],
    ):
        super().__init__()
        self._name = "TextLabel"
        self.location = [float(v) for v in location]
        self.lines = [str(line) for line in lines if line is not None]
        self.css_class = css_class
        self.icon_class = f"{css_class}-icon"
        self.size = list(size)
        self.anchor = [size[0] // 2, size[1] // 2]


class FieldsTooltip(MacroElement):
    """A table of a GeoJSON feature's properties, each value shown as text.

    Stands in for folium's ``GeoJsonTooltip``, which writes the values into the page
    as HTML (``innerHTML``): a grid named ``<img onerror=...>`` would run.

    Parameters
    ----------
    fields
        Property names, in the order shown.
    aliases
        The label of each field.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindTooltip(function (layer) {
            var fields = {{ this.fields|tojson }}, aliases = {{ this.aliases|tojson }};
            var table = document.createElement("table");
            fields.forEach(function (field, i) {
                var value = layer.feature.properties[field];
                var row = table.insertRow();
                var label = document.createElement("th");
                label.textContent = aliases[i];
                row.appendChild(label);
                row.insertCell().textContent = value === null || value === undefined
                    ? "" : (typeof value === "object" ? JSON.stringify(value) : String(value));
            });
            return table;
        }, {"sticky": true, "className": "foliumtooltip"});
        {% endmacro %}
        """
    )

    def __init__(self, fields: Sequence[str], aliases: Sequence[str]):
        super().__init__()
        self._name = "FieldsTooltip"
        self.fields = list(fields)
        self.aliases = list(aliases)


# -- Content-Security-Policy ----------------------------------------------------------

_SCRIPT_TAG = re.compile(r"<script(?=[\s>])")


def tile_origins(*templates: str | None) -> list[str]:
    """The origins (``https://host``) of tile URL templates, for a page's ``img-src``."""
    origins = []
    for template in templates:
        if template and "://" in template:
            parts = urlsplit(template.replace("{", "").replace("}", ""))
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


def page_policy(nonce: str, images: Sequence[str] = (), standalone: bool = False) -> str:
    """The Content-Security-Policy of a map page, without ``frame-ancestors``.

    Scripts run only when they carry ``nonce`` (gridmap's own: Leaflet, the plugins,
    the map's script); no inline handler, ``javascript:`` address, injected script or
    ``eval`` runs. Styles may be inline (folium writes them so); they run nothing.

    Parameters
    ----------
    nonce
        This response's script nonce.
    images
        Origins of tile servers the page may load.
    standalone
        A file written by ``gridmap render``: everything it loads is a data: URI.
    """
    own = "data:" if standalone else "'self' data:"
    return "; ".join(
        [
            "default-src 'none'" if standalone else "default-src 'self'",
            f"script-src 'nonce-{nonce}'",
            f"style-src {own} 'unsafe-inline'",
            " ".join(["img-src", own, *images]),
            f"font-src {own}",
            "connect-src 'none'" if standalone else "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'" if standalone else "form-action 'self'",
        ]
    )


_PAGE = Template(
    '<!DOCTYPE html>\n<html lang="{{ lang }}">\n<head>\n{{ header }}\n</head>\n<body>\n'
    '{{ html }}\n</body>\n<script nonce="{{ nonce }}">\n{{ script }}\n</script>\n</html>\n'
)
#: folium's viewport forbids zooming the page; a phone's pinch zoom must work.
_FIXED_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>')
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1.0">'


def render_page(fmap: folium.Map, nonce: str, policy: str | None = None) -> str:
    """The HTML page of a map whose scripts carry ``nonce``.

    Only the scripts gridmap and folium write get the nonce: the ``<head>`` (links to
    the vendored scripts, folium's switches) and the map's own script. The body, where
    legends and summaries sit, gets none, so a script that got into it would not run.

    Parameters
    ----------
    fmap
        The map.
    nonce
        The script nonce of the response (or the file) that carries the page.
    policy
        A Content-Security-Policy to put in a ``<meta>`` element (for files; pages
        served by gridmap get theirs as a header).
    """
    figure = fmap.get_root()
    for child in figure._children.values():  # as Figure.render: fills head, body, script
        child.render()
    header = [
        _FIXED_VIEWPORT.sub(VIEWPORT, child.render()) for child in figure.header._children.values()
    ]
    if policy:
        header.insert(0, f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">')
    return _PAGE.render(
        header=_SCRIPT_TAG.sub(f'<script nonce="{nonce}"', "\n".join(header)),
        html=figure.html.render(),
        script=figure.script.render(),
        nonce=nonce,
        lang=HTML_LANG[language()],
    )


def standalone_page(fmap: folium.Map) -> str:
    """A map as one HTML file (``gridmap render``), with its own policy in a ``<meta>``
    element and a nonce of its own, so it runs its scripts and no other."""
    nonce = secrets.token_urlsafe(18)
    policy = page_policy(nonce, tile_origins(*(t[0] for t in BASE_MAPS.values() if t)), True)
    return render_page(fmap, nonce, policy)
