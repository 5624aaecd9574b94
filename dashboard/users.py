"""Manage the dashboard's local accounts, on the server, against the case database.

    python -m dashboard.users add USERNAME --role admin|clinician|viewer [--name "Dr A. Example"]
    python -m dashboard.users list
    python -m dashboard.users disable USERNAME        (enable USERNAME to undo)
    python -m dashboard.users reset-password USERNAME
    python -m dashboard.users set-role USERNAME --role clinician

Passwords are asked for twice on the terminal (never on the command line, where they would land in the
shell history); ``--password-stdin`` reads one line from standard input instead, for scripts. The first
account of a new installation is made with ``add --role admin``: the dashboard ships no default account.
Every change is recorded in the audit trail as done by ``cli:<operating-system user>``.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from dashboard.accounts import Accounts
from dashboard.passwords import MIN_PASSWORD_LENGTH
from dashboard.store import config
from dashboard.store.api import CaseStore
from dashboard.store.db_url import database_location, error_line
from dashboard.store.migrate import NewerDatabase
from dashboard.store.models import ROLES


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"New password (at least {MIN_PASSWORD_LENGTH} characters): ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _add(accounts: Accounts, args: argparse.Namespace, actor: str) -> None:
    user = accounts.add(args.username, _password(args), args.role, args.name, actor=actor)
    print(f"created {user.role} account {user.username!r}")


def _list(accounts: Accounts, args: argparse.Namespace, actor: str) -> None:
    users = accounts.list()
    if not users:
        print("no accounts yet: create the first with  python -m dashboard.users add NAME --role admin")
    for u in users:
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"
        state = "active" if u.active else "DISABLED"
        print(f"{u.username:24} {u.role:10} {state:9} last sign-in {last:22} {u.display_name}")


def _set_active(accounts: Accounts, args: argparse.Namespace, actor: str) -> None:
    accounts.set_active(args.username, args.cmd == "enable", actor=actor)
    print(f"{args.cmd}d {args.username!r}")


def _reset_password(accounts: Accounts, args: argparse.Namespace, actor: str) -> None:
    accounts.reset_password(args.username, _password(args), actor=actor)
    print(f"new password set for {args.username!r}")


def _set_role(accounts: Accounts, args: argparse.Namespace, actor: str) -> None:
    accounts.set_role(args.username, args.role, actor=actor)
    print(f"{args.username!r} is now {args.role}")


def _parser() -> argparse.ArgumentParser:
    """Each command's arguments and the function that runs it (``run``)."""
    parser = config.store_cli_parser("python -m dashboard.users", __doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", default="", help="display name, e.g. 'Dr A. Example'")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=_add)
    sub.add_parser("list", help="list the accounts").set_defaults(run=_list)
    for cmd in ("disable", "enable"):
        toggle = sub.add_parser(cmd, help=f"{cmd} an account")
        toggle.add_argument("username")
        toggle.set_defaults(run=_set_active)
    reset = sub.add_parser("reset-password", help="set a new password")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    reset.set_defaults(run=_reset_password)
    role = sub.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("--role", required=True, choices=ROLES)
    role.set_defaults(run=_set_role)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = config.database_url(args.database_url)
    # Said every time: a relative --database-url run from another folder would otherwise make a new empty database
    # unnoticed (stderr, so that `list` stays machine-readable).
    print(f"database: {database_location(url)}", file=sys.stderr)
    try:
        store = CaseStore.from_url(url, config.data_dir(None))
    except NewerDatabase as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # broad on purpose, as the dashboard's get_store: connect, migrate, folders
        print(f"error: could not open the case database: {type(exc).__name__}: {error_line(exc, url)}", file=sys.stderr)
        return 2
    try:
        args.run(Accounts(store), args, _actor())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\ncancelled", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
