"""Identity service tests: domain unit tests and integration tests on PostgreSQL and NATS."""
