"""Users, roles, passwords, tokens and API keys."""
