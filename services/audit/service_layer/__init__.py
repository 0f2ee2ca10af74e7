"""Use cases of the audit trail: record an event, list events, verify a chain."""
