"""The operator's number catalogue and the numbers (DIDs) tenants hold."""
