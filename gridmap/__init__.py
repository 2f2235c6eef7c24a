"""gridmap: community grid management and 10-minute service-circle planning over PostGIS."""

__version__ = "0.1.0"
