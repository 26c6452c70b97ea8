"""The web console: server-rendered pages over the same services and authorisation as the API."""
