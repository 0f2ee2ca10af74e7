"""Alembic environment of the audit schema."""

from services.runtime.migrations import run_env

run_env()
