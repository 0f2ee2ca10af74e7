"""PostgreSQL tables and the repository of the audit log."""
