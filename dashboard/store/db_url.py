"""A database URL as the store and its command lines read it: which SQLite file it names, how it is shown to
an operator, and an error about it on one line without its password.

One home for these because the copies drifted: one missed ``mode=memory``, one ``~``, and one showed a
``?password=`` query to every signed-in user.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

NOT_A_URL = "(not a database URL)"
MESSAGE_CHARS = 300  # an error line's length: a driver's message can quote a whole statement


def is_sqlite_memory(url: URL) -> bool:
    """An in-memory SQLite database (``sqlite://``, ``:memory:``, ``?mode=memory``): nothing is kept."""
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names, as the engine opens it (``~`` expanded, resolved); None for another backend,
    an in-memory database or a ``file:`` URI (``?uri=true``: the caller's own business)."""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url) or url.query.get("uri"):
        return None
    return Path(url.database or "").expanduser().resolve()


def redacted(url: str | URL) -> str:
    """The URL without its password, in ``user:password@`` and in the query (``?password=…``); text that is not
    a URL is not repeated (it may be a password pasted in the wrong place)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return NOT_A_URL
    hidden = {key: "hidden" for key in parsed.query if "pass" in key.lower()}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


def database_location(url: str) -> str:
    """Where ``url`` points, for the operator: a SQLite file's full path, else the URL without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return NOT_A_URL
    if is_sqlite_memory(parsed):
        return "an in-memory SQLite database (nothing is kept)"
    path = sqlite_file(parsed)
    if path is not None:
        return f"{path}" if path.exists() else f"{path} (does not exist yet: a new, empty database is made there)"
    return redacted(parsed)


def _secrets(url: URL) -> list[str]:
    found = [url.password] if url.password else []
    for key, value in url.query.items():
        if "pass" in key.lower():
            found += [value] if isinstance(value, str) else list(value)
    return [str(secret) for secret in found if secret]


def error_line(exc: BaseException, url: str | URL | None = None) -> str:
    """What went wrong, on one line of at most MESSAGE_CHARS: the driver's own message where there is one (a
    SQLAlchemy error's later lines are the statement and a link), with the URL's passwords replaced by ``***``
    (a driver may quote its connection string)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip()
    if isinstance(cause, SQLAlchemyError):
        text = text.splitlines()[0] if text else ""
    # PostgreSQL's DETAIL line quotes row values (a duplicate key's identifier): not for a log or a page.
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("DETAIL:"))
    message = " ".join(text.split()) or type(cause).__name__
    if url is not None:
        try:
            secrets = _secrets(make_url(url))
        except ArgumentError:
            secrets = [str(url)]  # not a URL: the whole text may be the secret
        for secret in secrets:
            message = message.replace(secret, "***")
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"
