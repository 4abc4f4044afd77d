"""What the system writes to disk is its user's alone, from the first moment.

The data directory holds the staff accounts' password hashes, the signing secrets, every
store and NATS's data: on a shared host no other local user may read any of it. So
``buergerbuero up`` and ``serve`` run with the umask 0o077 (SQLite files, NATS's store,
logs and metrics files are created 0600, directories 0700), the data directory itself is
made 0700 (which also closes files an older version left readable), and a secret is
written to a file that is 0600 when it is created and appears under its name only
complete, never made private afterwards.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from services.common.logging import get_logger

log = get_logger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


def use_private_umask() -> None:
    """Every file and directory this process (and its children) creates is private."""
    os.umask(PRIVATE_UMASK)


def private_directory(path: Path) -> Path:
    """Create ``path`` (and its parents) 0700, or make an existing one of ours 0700."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077:
        if info.st_uid == os.getuid():
            path.chmod(PRIVATE_DIRECTORY)
        else:
            # e.g. a Kubernetes emptyDir (root's, 0777): what is created in it is 0600 still
            log.info("data_dir_not_private", path=str(path), mode=oct(info.st_mode & 0o777),
                     reason="owned by another user, left as it is; new files are 0600")
    return path


def create_private_file(path: Path, text: str) -> str:
    """Write ``text`` to a new file ``path`` that is 0600 from its creation and appears
    under its name only whole. If another process created ``path`` first, its content is
    returned instead (the first writer wins, nobody overwrites)."""
    path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if path exists: never replaces a secret
        except FileExistsError:
            return path.read_text(encoding="utf-8")
        return text
    finally:
        temporary.unlink(missing_ok=True)
