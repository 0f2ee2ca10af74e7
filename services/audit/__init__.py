"""The audit service: every event of every context, hash-chained per account, append-only."""
