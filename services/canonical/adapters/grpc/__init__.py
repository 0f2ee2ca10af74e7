"""The CanonicalService servicer and the gRPC clients of the peer services."""
