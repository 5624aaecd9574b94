"""The project's one base exception. Every error the project raises on purpose derives from `TriageError`
(and, where callers already catch it so, from the built-in it refines: ValueError, LookupError, ...), so a
caller can tell "one of ours, with a message meant for a person" from a bug."""

from __future__ import annotations


class TriageError(Exception):
    """An error of this project, whose message names what went wrong in words a user can act on."""


class DatasetError(TriageError, ValueError):
    """A dataset that cannot be used as given; the message says exactly why."""
