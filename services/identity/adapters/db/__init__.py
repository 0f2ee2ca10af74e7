"""Identity tables and repositories (SQLAlchemy Core)."""
