"""Tests of the gateway: unit tests of its parts, integration against in-process gRPC doubles."""
