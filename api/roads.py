"""``/api/v1/roads``: the walking network and the barriers grid boundaries follow."""

import marshmallow as ma

from api.resources import Text, feature_blueprint

bp = feature_blueprint(
    "roads",
    "Roads and paths: OSM highway class, walkable, barrier.",
    {
        "class": Text(load_default=None),
        "walkable": ma.fields.Boolean(load_default=None),
        "barrier": ma.fields.Boolean(load_default=None),
    },
)
