"""Storage tests open the backend on their database themselves (no application)."""

from tests.support.storage import database as database
