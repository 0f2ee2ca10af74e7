"""End-to-end tests: the whole platform as separate processes, driven through HTTP and SFTP."""
