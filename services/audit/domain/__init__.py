"""The audit trail's rules: canonical content, the hash chain and its verification."""
