"""Alembic environment of the ingestion schema."""

from services.runtime.migrations import run_env

run_env()
