"""`canopy`: the operator's command line (bootstrap accounts, keys and schemas)."""
