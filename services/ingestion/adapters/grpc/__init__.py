"""The IngestionService servicer and the gRPC client of tenancy."""
