"""OAuth 2.0 protocol endpoints (token, revocation) on top of the services."""
