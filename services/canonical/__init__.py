"""The canonical context: canonical schemas, source schemas and mappings, records and rejects."""
