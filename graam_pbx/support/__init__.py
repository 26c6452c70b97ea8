"""Support requests: a client asks, the operator answers within the priority's delay."""
