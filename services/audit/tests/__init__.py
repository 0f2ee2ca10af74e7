"""Tests of the audit service: domain units and integration on PostgreSQL and NATS."""
