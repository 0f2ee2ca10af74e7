"""Event builders for what ingestion publishes and handlers for what it consumes."""
