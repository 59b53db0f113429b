"""The metrics create_app hands to the services."""

from __future__ import annotations

from userservice.observability.metrics import NoMetrics
from userservice.settings import Settings


def metrics_for(settings: Settings) -> NoMetrics:
    return NoMetrics()
