"""``/api/v1/areas``: cities, districts, streets and communities."""

from api.resources import choice, feature_blueprint
from gridmap.models import AREA_LEVELS

bp = feature_blueprint(
    "areas",
    "Cities (市), districts (区/县), streets (街道) and communities (社区) with their "
    "boundaries; each area's parent is the area one level up.",
    {"level": choice(AREA_LEVELS)},
)
