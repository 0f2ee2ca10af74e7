"""Tables and repositories of the ingestion schema."""
