"""userservice: an OAuth2 / OpenID Connect secured user management service."""

__version__ = "0.1.0"
