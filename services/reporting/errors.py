"""The reporting service's own errors: what the use cases and the query module raise, what the
HTTP layer maps to problems (app.py). No driver exception crosses the query module."""

from __future__ import annotations


class UnknownUnit(LookupError):
    """No unit with this code in the unit tree (404)."""


class InvalidPeriod(ValueError):
    """A window or year that cannot be computed, such as `from` after `to` (422)."""


class DatabaseUnavailable(Exception):
    """PostgreSQL is unreachable or its schema is missing: retriable, so 503 with Retry-After."""
