"""Consuming every context's events into the audit trail."""
