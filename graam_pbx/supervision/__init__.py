"""Live supervision: a supervisor listens to, whispers to or barges into an agent's call from
the supervisor's own device (Asterisk's ChanSpy); docs/supervision.md."""
