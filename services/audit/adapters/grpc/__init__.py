"""The AuditService gRPC servicer and its proto translation."""
