"""Adapters between the audit trail and the outside: database, gRPC, events."""
