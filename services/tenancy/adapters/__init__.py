"""Adapters between the tenancy core and the outside: database, gRPC and events."""
