"""Alembic environment and revisions of the identity schema."""
