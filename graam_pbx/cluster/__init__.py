"""Beyond one machine: Asterisk nodes, tenants placed on them, the worker lease."""
