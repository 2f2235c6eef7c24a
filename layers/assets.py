"""The map assets gridmap serves itself, vendored from the npm registry at pinned versions.

Government intranets have no internet, so no page loads anything from a CDN:
``scripts/vendor_assets.py`` fetches each package below with ``npm pack`` and copies
the listed files (and the package's licence) into ``layers/static/vendor/``, which
is committed. The versions are those folium's own templates are written for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where the vendored files live inside the package.
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Asset:
    """One npm package's files: scripts and stylesheets to load, and files they use."""

    name: str
    package: str
    version: str
    js: tuple[str, ...] = ()
    css: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """Its folder under ``static/vendor``."""
        return f"vendor/{self.name}-{self.version}"

    def files(self) -> tuple[str, ...]:
        """Every file copied from the package (paths inside it), licence included."""
        return (*self.js, *self.css, *self.extra, "LICENSE")


LEAFLET = Asset(
    "leaflet",
    "leaflet",
    "1.9.3",
    js=("dist/leaflet.js",),
    css=("dist/leaflet.css",),
    extra=tuple(
        f"dist/images/{n}"
        for n in (
            "layers.png",
            "layers-2x.png",
            "marker-icon.png",
            "marker-icon-2x.png",
            "marker-shadow.png",
        )
    ),
)
FULLSCREEN = Asset(
    "leaflet.fullscreen",
    "leaflet.fullscreen",
    "3.0.0",
    js=("Control.FullScreen.js",),
    css=("Control.FullScreen.css",),
    extra=("icon-fullscreen.svg",),
)
GEOMAN = Asset(
    "leaflet-geoman",
    "@geoman-io/leaflet-geoman-free",
    "2.17.0",
    js=("dist/leaflet-geoman.min.js",),
    css=("dist/leaflet-geoman.css",),
)
ASSETS = (LEAFLET, FULLSCREEN, GEOMAN)
