"""``/api/v1/areas``: streets and communities."""

from api.resources import choice, feature_blueprint
from gridmap.models import AREA_LEVELS

bp = feature_blueprint(
    "areas",
    "Streets (街道) and communities (社区) with their boundaries.",
    {"level": choice(AREA_LEVELS)},
)
