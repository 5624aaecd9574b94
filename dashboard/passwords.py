"""Passwords: the argon2id hash, the check, the policy a new password must meet, and a session's credential.

Hashes are argon2id (argon2-cffi, the reference implementation's bindings; no hand-rolled crypto) with its
RFC 9106 "low memory" defaults. At most ``MAX_CONCURRENT_HASHES`` argon2 computations (64 MiB each) run at once
in the process. A check for a username with no account runs against a dummy hash, so that both take the same
time. Accounts and sign-in are in accounts.py.
"""

from __future__ import annotations

import hashlib
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 5

# argon2id with argon2-cffi's RFC 9106 "low memory" defaults (64 MiB, 3 passes).
_HASHER = PasswordHasher()
# Verified against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = _HASHER.hash("not a real password, only for equal timing")
# Sessions run in threads of one server process: a flood of sign-ins must not run argon2 (64 MiB, ~0.3 s of CPU
# each) on unbounded threads at once. The others wait their turn.
MAX_CONCURRENT_HASHES = 4
_HASH_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


def hash_password(password: str) -> str:
    with _HASH_SLOTS:
        return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: object) -> bool:
    """Whether ``password`` matches; call it with no transaction open (argon2id takes ~0.3 s). ``password_hash``
    None: no account has the name; the check runs against the dummy hash, taking as long, and is False."""
    if not isinstance(password, str) or not password:
        return False
    try:
        with _HASH_SLOTS:
            matches = _HASHER.verify(_DUMMY_HASH if password_hash is None else password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the ones passwords get now."""
    return _HASHER.check_needs_rehash(password_hash)


def credential_of(password_hash: str) -> str:
    """A session's mark of the password it signed in with: a digest of the hash (the hash itself stays in the
    database, never in a browser session)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def check_password_policy(password: object, username: str = "") -> str:
    if not isinstance(password, str):
        raise ValueError("password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(set(password.strip())) < MIN_DISTINCT_CHARACTERS:  # "aaaaaaaaaaaa", twelve spaces, "abababab…"
        raise ValueError("password is too repetitive: use a passphrase of several words")
    if username and username.lower() in password.lower():
        raise ValueError("password must not contain the username")
    return password
