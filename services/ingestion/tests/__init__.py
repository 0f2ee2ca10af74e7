"""Tests of the ingestion service."""
