"""The service's log configuration (log_config), its streams captured in memory:
what `serve` would print, for the log tests; the loggers are put back afterwards."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from userservice.logging_config import log_config


@dataclass
class Captured:
    stream: io.StringIO = field(default_factory=io.StringIO)

    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, parsed: a line that is not one JSON object fails the test."""
        parsed = [json.loads(line) for line in self.text().splitlines()]
        assert all(isinstance(record, dict) for record in parsed)
        return parsed

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@contextmanager
def captured_logs(log_format: str, level: str = "info") -> Iterator[Captured]:
    config = log_config(level, log_format)
    names = [*config["loggers"], ""]
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate, logger.disabled)
        for logger in map(logging.getLogger, names)
    ]
    logging.config.dictConfig(config)
    captured = Captured()
    handlers = {h for name in names for h in logging.getLogger(name).handlers}
    for handler in handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(captured.stream)
    try:
        yield captured
    finally:
        for logger, kept, level_, propagate, disabled in saved:
            logger.handlers[:] = kept
            logger.setLevel(level_)
            logger.propagate, logger.disabled = propagate, disabled
