"""Authentication: passwords, sessions and the authenticated subject."""
