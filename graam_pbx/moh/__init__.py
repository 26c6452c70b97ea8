"""Music on hold: the shared `default` class and tenants' own classes made of their prompts."""
