"""The rules of drop zones, SFTP logins and ingested files, in plain Python."""
