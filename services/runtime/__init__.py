"""The small kit every service shares: config, ids, logging, gRPC, RLS sessions, outbox, events."""
