from piccolo.conf.apps import AppConfig

from portal.config import ROOT

APP_CONFIG = AppConfig(
    app_name="portal",
    migrations_folder_path=str(ROOT / "migrations"),
    table_classes=[],
    migration_dependencies=[],
    commands=[],
)
