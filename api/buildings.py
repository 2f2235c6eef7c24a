"""``/api/v1/buildings``: footprints or points, households and use."""

import marshmallow as ma

from api.resources import choice, feature_blueprint
from gridmap.models import BUILDING_USES

bp = feature_blueprint(
    "buildings",
    "Buildings. Household and population figures are personal data: staff and above see them.",
    {"use": choice(BUILDING_USES), "compound": ma.fields.String(load_default=None)},
)
