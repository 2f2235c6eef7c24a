"""``/api/v1/buildings``: footprints or points, households and use."""

from api.resources import Text, choice, feature_blueprint
from gridmap.models import BUILDING_USES

bp = feature_blueprint(
    "buildings",
    "Buildings. Household and population figures are personal data: staff and above see them.",
    {"use": choice(BUILDING_USES), "compound": Text(load_default=None)},
)
