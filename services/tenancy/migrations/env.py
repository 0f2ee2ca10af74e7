"""Alembic environment of the tenancy schema (the runtime's shared one)."""

from services.runtime.migrations import run_env

run_env()
