"""Errors the service layer raises; every adapter (CLI, API, import) turns them into one clear message."""

from __future__ import annotations

from leadledger.domain.changes import Violation
from leadledger.store.db import DatabaseError, error_kind

__all__ = ["DatabaseError", "as_service_error"]


class ServiceError(Exception):
    """Base class: the message is a sentence a user can act on."""


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Invalid(ServiceError):
    """Bad input that is not a status-model violation (an unknown team, a malformed value)."""


class Conflict(ServiceError):
    """The lead changed under us too many times in a row; the caller may retry."""


class ChangeRefused(ServiceError):
    """The status model does not allow the change; nothing was written."""

    def __init__(self, lead_id: str | None, violations: tuple[Violation, ...]):
        self.lead_id = lead_id
        self.violations = violations
        listed = "; ".join(f"{v.field}: {v.message}" for v in violations)
        super().__init__(f"change refused for {lead_id}: {listed}" if lead_id else f"refused: {listed}")


class Unavailable(ServiceError):
    """The database is unreachable or busy; trying again later can succeed."""


class NotStorable(Invalid):
    """A value passed validation but the database cannot hold it."""


def as_service_error(exc: BaseException) -> ServiceError | None:
    """A database error (`DatabaseError`) as the service error an adapter reports; None when it is a bug."""
    kind = error_kind(exc)
    if kind == "unavailable":
        return Unavailable(f"database error: {getattr(exc, 'orig', exc)}")
    if kind == "bad_value":
        return NotStorable("a value in the request cannot be stored")
    return None
