"""Alembic environment of the identity schema (online, as identity_owner)."""

from services.runtime.migrations import run_env

run_env()
