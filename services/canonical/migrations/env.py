"""Alembic environment of the canonical schema (online, as canonical_owner)."""

from services.runtime.migrations import run_env

run_env()
