"""Metrics tests that open the storage backend themselves (no application)."""

from tests.support.storage import database as database
