"""What the system keeps on disk is its user's alone: after a real `up` every file under the
data directory is 0600 (or stricter) and every directory 0700, and a secret is private from
the moment it is created, not made private after it was written."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.audit.signing import KEY_FILE, load_signer
from services.common.settings import Settings
from tests.helpers import department_id, eventually, knock


def everything_under(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(directory) / name


def test_a_running_system_keeps_its_files_to_itself(system_factory) -> None:  # type: ignore[no-untyped-def]
    # The embedded NATS (its store in the data directory too), generated secrets, the
    # process tree (metrics files of every process).
    system = system_factory(env={"BB_NATS_URL": "", "BB_SECRET_KEY": ""},
                            args=["up", "--queue-processes", "2"])
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=10) as citizen:
        dept = department_id(citizen, "demo")
        eventually(lambda: citizen.get(f"/departments/{dept}").json()["open"])
        knock(citizen, dept, display_name="Erika Mustermann")
    root = system.data_dir
    assert (root / "secret.key").exists() and (root / KEY_FILE).exists()
    assert any(p.suffix == ".sqlite" for p in root.iterdir())
    assert (root / "nats").is_dir()

    # The data directory existed before `up` (made by the test with the usual 0755).
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    readable = []
    for path in everything_under(root):
        if path == system.log_path:  # the test's own capture of the system's output
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 or (stat.S_ISREG(info.st_mode) and mode & 0o111):
            readable.append(f"{oct(mode)} {path.relative_to(root)}")
    assert not readable, "readable by others:\n" + "\n".join(readable)


class CreatedFiles:
    """Every os.open that creates a file: the only way a secret may come into being."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def spy(self, real: Any) -> Any:
        def open_recording(path: Any, flags: int, mode: int = 0o777, *args: Any,
                           **kwargs: Any) -> int:
            if flags & os.O_CREAT:
                self.calls.append((os.fspath(path), flags, mode))
            return real(path, flags, mode, *args, **kwargs)

        return open_recording

    def creating(self, name: str) -> list[tuple[str, int, int]]:
        return [c for c in self.calls if name in Path(c[0]).name]


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> Iterator[CreatedFiles]:
    recorder = CreatedFiles()
    monkeypatch.setattr(os, "open", recorder.spy(os.open))
    previous = os.umask(0)  # nothing left to a lenient umask
    try:
        yield recorder
    finally:
        os.umask(previous)


@pytest.mark.parametrize("secret", ["secret.key", KEY_FILE])
def test_a_secret_is_created_private_never_chmodded_later(
    created: CreatedFiles, tmp_path: Path, secret: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key=None, audit_signing_key=None)
    if secret == "secret.key":
        value = settings.signing_key.decode()
    else:
        value = load_signer(settings).encode()
    path = settings.data_dir / secret
    # Created once, exclusively, with 0600 given to open(2) itself: at no moment was the
    # file (under any name) readable by another user, and it appeared under its name whole.
    (call,) = created.creating(secret)
    _, flags, mode = call
    assert flags & os.O_EXCL and mode == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == value
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert not [p for p in settings.data_dir.iterdir() if p.name.startswith(".")]  # no leftovers
