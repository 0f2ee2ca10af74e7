"""Event builders: domain events to canopy.common.v1.Event envelopes."""
