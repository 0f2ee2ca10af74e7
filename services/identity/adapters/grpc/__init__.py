"""The IdentityService servicer: translates protos to use cases and back."""
