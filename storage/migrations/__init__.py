"""Alembic migrations of the metadata schema, applied by ``Database.migrate``."""
