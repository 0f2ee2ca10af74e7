"""Cross-service tests and the joint fixtures every test suite uses."""
