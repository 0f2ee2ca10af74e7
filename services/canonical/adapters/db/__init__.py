"""Tables and repositories of the canonical schema."""
