"""Notices: the operator announces changes to the service, at least a month ahead."""
