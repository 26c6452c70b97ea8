"""Call detail records: Asterisk's Cdr events and CSV log into monthly partitions, and the API."""
