"""Piccolo configuration used by `portal migrate` (the owner role runs migrations).

The web application does not read this module: it binds every table to its own engine, connected
as the application's login role (see ``portal.db.engine``).
"""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from portal.config import get_settings

DB = PostgresEngine(config={"dsn": get_settings().migrate_database_url})

APP_REGISTRY = AppRegistry(apps=["portal.db.piccolo_app"])
