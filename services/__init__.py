"""Canopy services, one package per bounded context, plus the shared runtime kit."""
