"""Errors of the dispatch domain, on top of the spatial core's :class:`~geo.errors.InputError`.

Each maps to one HTTP status in the web layer: ``InputError`` 400, ``Forbidden`` 403,
``NotFound`` 404, ``Conflict`` and ``IllegalTransition`` 409.
"""

from __future__ import annotations

from geo.errors import GridlineError, InputError

__all__ = ["Conflict", "Forbidden", "GridlineError", "IllegalTransition", "InputError",
           "NotFound"]


class NotFound(GridlineError):
    """An id that names nothing."""


class Forbidden(GridlineError):
    """The actor's role may not do this."""


class Conflict(GridlineError):
    """Someone else changed the work order first; reload and try again."""


class IllegalTransition(GridlineError):
    """The work order's state does not allow this action."""
