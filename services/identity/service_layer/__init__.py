"""Identity use cases: each opens one scoped transaction and writes its events to the outbox."""
