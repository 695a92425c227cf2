"""The served process's log: one JSON object per line on stderr.

Request lines (``gridline.http``) and notification events (``gridline.notify``) are JSON
already and are written as they are; any other record (a warning, an error with its
traceback) is wrapped in an object with its time, level, logger and message, so that a log
collector can read every line the same way.
"""

from __future__ import annotations

import json
import logging
import sys

from geo.errors import InputError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{") and not record.exc_info:
            return message
        line = {"at": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                "logger": record.name, "message": message}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_to_stderr(level: str = "INFO") -> None:
    """Send the ``gridline`` loggers' records of ``level`` and above to stderr as JSON lines
    (and the WSGI server's warnings and errors the same way)."""
    level = str(level).upper()
    if level not in LEVELS:
        raise InputError(f"GRIDLINE_LOG_LEVEL must be one of {', '.join(LEVELS)}, not "
                         f"{level!r}", field="LOG_LEVEL")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name, at in (("gridline", level), ("waitress", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(at)
        logger.propagate = False
