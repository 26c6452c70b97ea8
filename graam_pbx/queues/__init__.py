"""Call queues and their members."""
