"""Adapters of the canonical context: database, gRPC and events."""
