"""Revisions of the identity schema."""
