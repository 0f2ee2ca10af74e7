"""Event handlers: loading files that ingestion received."""
