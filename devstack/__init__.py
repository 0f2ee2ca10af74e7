"""Dev tooling that runs real backends (PostgreSQL, NATS, our services) for `make run` and tests."""
