"""Where calls go: destinations, schedules, inbound and outbound routes, trunks."""
