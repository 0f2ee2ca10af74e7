"""What connects the ingestion core to PostgreSQL, gRPC, NATS, SFTP and the file store."""
