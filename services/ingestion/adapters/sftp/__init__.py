"""The SFTP server customers upload to: one drop zone per login, nothing outside it."""
