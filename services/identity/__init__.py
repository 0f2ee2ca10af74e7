"""Identity: users, memberships, roles and grants, sign-in tokens, permission resolution."""
