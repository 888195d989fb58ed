"""Database targets: pick a driver from the URL."""
from __future__ import annotations

from dbops.errors import ConfigError
from dbops.targets.base import Target
from dbops.urls import redact, scheme_of


def open_target(url: str | None) -> Target:
    """A Target for `url`: postgresql:// (psycopg), redshift:// (redshift_connector), redshift-data:// (the Data
    API), none: embedded."""
    if not url:
        from dbops.targets.embedded import EmbeddedTarget

        return EmbeddedTarget()
    scheme = scheme_of(url)
    if scheme in ("postgresql", "postgres"):
        from dbops.targets.postgres import PostgresTarget

        return PostgresTarget(url)
    if scheme == "redshift":
        from dbops.targets.redshift import RedshiftTarget

        return RedshiftTarget(url)
    if scheme == "redshift-data":
        from dbops.targets.redshift_data import DataApiTarget

        return DataApiTarget(url)
    raise ConfigError(f"unsupported URL {redact(url)}: use postgresql://…, redshift://…, redshift-data://… or no URL for the embedded database")
