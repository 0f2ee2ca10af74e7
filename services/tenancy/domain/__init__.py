"""Plain-Python rules of accounts, tenants and mapping codes (no I/O, no wire formats)."""
