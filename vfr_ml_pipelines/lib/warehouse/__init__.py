"""The PostgreSQL warehouse: engines, numbered migrations, bulk loading."""

from vfr_ml_pipelines.lib.warehouse.engine import create_warehouse_engine, normalize_database_url
from vfr_ml_pipelines.lib.warehouse.loading import read_frame, upsert_frame
from vfr_ml_pipelines.lib.warehouse.migrations import MigrationError, apply_migrations

__all__ = [
    "MigrationError",
    "apply_migrations",
    "create_warehouse_engine",
    "normalize_database_url",
    "read_frame",
    "upsert_frame",
]
