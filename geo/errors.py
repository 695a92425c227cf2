"""The errors the spatial core raises.

Every error a user can cause is an ``InputError`` (or a subclass) that names what was wrong, so
that the command line and the web layer can report it in one place and nothing half-done is kept.
"""

from __future__ import annotations


class GridlineError(Exception):
    """Base of every error gridline reports to its users."""


class InputError(GridlineError, ValueError):
    """Bad input from a caller: the message says what was wrong and ``field`` names where."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class CoordinateError(InputError):
    """A coordinate that is not a finite number in range, or cannot be converted."""


class CRSError(InputError):
    """A coordinate reference system that is unknown, missing, or contradicts the data."""


class BoundaryError(InputError):
    """A boundary source that cannot be read or used (missing layer, wrong geometry type, ...)."""
