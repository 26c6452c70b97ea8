"""Outbound campaigns: contact lists, the law of calling, pacing and the dialer."""
