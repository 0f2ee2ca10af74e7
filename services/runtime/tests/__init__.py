"""Tests of the shared runtime kit."""
