"""Service tests over the storage ports open the backend themselves (no application)."""

from tests.support.storage import database as database
