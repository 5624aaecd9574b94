"""Who may read what the store writes: its folders 0700 and its files 0600, whatever the umask (they hold
identifiers, notes, images and password hashes; only the account that runs the dashboard reads them)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents 0700, whatever the umask. A folder that exists already keeps
    its permissions: the user chose it (``/tmp``, a mount)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(path, PRIVATE_DIR_MODE)  # mkdir's mode passes through the umask
