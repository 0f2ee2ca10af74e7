"""Use cases of the canonical context and the ports they need."""
