"""Unit tests of the domain rules and integration tests on PostgreSQL and NATS."""
