"""What the dashboard catches from the case store, and how a failure it must swallow is still recorded.

A page must not die because an audit entry or a draft could not be written, but the failure must leave a
line in the server log. Log lines never carry personal data: the exception's message can quote SQL
parameters (a patient identifier), so only its type and the traceback's frames are logged.
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy.exc import SQLAlchemyError

from data.errors import TriageError

# A case-store call fails in the database (unreachable, locked, a constraint: SQLAlchemyError), on the image
# files (OSError), with one of the store's own errors (NotFoundError, MetadataError: TriageError), or on
# input it rejects (ValueError).
STORE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TriageError, ValueError)


def log_swallowed(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failure the page carries on after: what failed, the exception's type and where (no message)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("%s failed (%s); carried on without it\n%s", what, type(exc).__name__, frames.rstrip())
