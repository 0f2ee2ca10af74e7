"""Identity adapters: database, gRPC and events."""
