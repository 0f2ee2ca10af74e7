"""Benchmarks: Canopy against the raw limit of the same work on this machine, in one run."""
