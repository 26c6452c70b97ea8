"""Live state of the control plane for the console: each watched tenant's wallboard."""
