"""``/api/v1/stations``: service stations."""

from api.resources import choice, feature_blueprint
from gridmap.models import STATION_KINDS

bp = feature_blueprint(
    "stations",
    "Service stations (party service centres, service posts, "
    "canteens, elderly care, health stations).",
    {"kind": choice(STATION_KINDS)},
)
