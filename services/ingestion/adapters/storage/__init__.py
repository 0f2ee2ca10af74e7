"""Where uploaded bytes live on disk: a hidden partial area and each drop zone's store."""
