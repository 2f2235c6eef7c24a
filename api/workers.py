"""``/api/v1/workers``: grid workers (staff only: their phone numbers are personal data)."""

from api.resources import feature_blueprint

bp = feature_blueprint(
    "workers", "Grid workers (网格员). Staff and above only.", {}, read_role="staff"
)
