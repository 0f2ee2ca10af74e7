"""Identity rules in plain Python: preset roles, password and email policy, token claims."""
