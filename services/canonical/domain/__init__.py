"""Plain-Python rules of the canonical context: schemas, mapping, dedupe keys, field encryption."""
