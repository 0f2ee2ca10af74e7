"""Tests of the canonical context: domain unit tests and integration on PostgreSQL and NATS."""
