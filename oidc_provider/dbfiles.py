"""The SQLite database's files are the provider's secrets at rest (password hashes, encrypted
keys, token digests, the audit trail): only the account that runs the provider may read them.

SQLite creates a missing database file with the process's umask (usually ``0644``: readable by
every local user), and its ``-wal`` and ``-shm`` files with the database file's own mode. So the
database file is created here first, ``0600``, before SQLite opens it; its companions follow.
``oidc-provider init`` tightens files an older version (or another tool) left looser."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MODE = 0o600
COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_path(database: str | None) -> Path | None:
    """The file behind pysqlite's ``database`` argument; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (an empty file is a valid
    SQLite database); an existing file is left as it is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE))
    except FileExistsError:
        pass
    except OSError:
        pass  # no such directory, not a directory, no permission: SQLite reports it in its own words


def tighten(path: Path) -> list[tuple[Path, int]]:
    """Set mode 0600 on the database file and its companions that are open to group or others;
    returns each file changed with its previous mode."""
    changed = []
    for suffix in COMPANIONS:
        candidate = Path(str(path) + suffix)
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except OSError:
            continue  # none, or not reachable: SQLite reports that when it opens the database
        if mode & 0o077:
            candidate.chmod(mode & 0o700 | MODE)
            changed.append((candidate, mode))
    return changed
