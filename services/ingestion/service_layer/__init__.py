"""Use cases: each opens a transaction scoped to the caller and writes its events to the outbox."""
