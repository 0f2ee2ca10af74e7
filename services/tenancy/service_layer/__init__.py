"""Use cases of the tenancy service and the ports they need."""
