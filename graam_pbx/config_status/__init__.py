"""Whether each tenant's committed configuration is live in Asterisk."""
