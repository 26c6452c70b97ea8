"""In-call control: what a user does to the call it is on from the console or the API."""
