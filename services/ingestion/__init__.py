"""Ingestion: drop zones, SFTP logins, the SFTP server and the files customers upload."""
