"""NATS credentials: one user per service, with the permissions of services/common/natsaccess.py.

The embedded server (``buergerbuero up`` / ``serve`` without ``BB_NATS_URL``) never runs
open: at every start new random passwords are made, one per service, written 0600 into
``<data dir>/nats/credentials/<service>.json`` (a 0700 directory) for the processes of
this run, and the server's configuration gets only their bcrypt hashes.

A service finds its credentials through the settings (:func:`credentials_for`):
``BB_NATS_CREDENTIALS_DIR`` (a file per service, as above: several services in one process
each connect as themselves), else ``BB_NATS_USER``/``BB_NATS_PASSWORD`` (one service per
process, as in Kubernetes), else none: an external NATS without authentication.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt

from services.common.natsaccess import SERVICES, permissions
from services.common.natsserver import EmbeddedNats

if TYPE_CHECKING:
    from services.common.settings import Settings

BCRYPT_COST = 11  # the nats tool's default; the server checks it at each connect


@dataclass(frozen=True)
class NatsCredentials:
    user: str
    password: str = ""


class MissingCredentials(RuntimeError):
    """The settings name a credentials directory without this service's file."""


def credentials_for(
    service: str,
    user: str | None = None,
    password: str | None = None,
    credentials_dir: Path | None = None,
) -> NatsCredentials | None:
    """How ``service`` connects: its file in ``credentials_dir``, else ``user``/``password``,
    else without credentials (``None``)."""
    if credentials_dir is not None:
        path = Path(credentials_dir) / f"{service}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise MissingCredentials(
                f"no NATS credentials for {service}: {path} does not exist "
                "(BB_NATS_CREDENTIALS_DIR)"
            ) from None
        return NatsCredentials(str(data["user"]), str(data["password"]))
    if user:
        return NatsCredentials(user, password or "")
    return None


def generate_credentials(
    directory: Path, services: tuple[str, ...] = SERVICES
) -> dict[str, NatsCredentials]:
    """New random passwords, one user per service, written 0600 into ``directory`` (0700)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    made = {}
    for service in services:
        credentials = NatsCredentials(service, secrets.token_urlsafe(32))
        body = json.dumps({"user": credentials.user, "password": credentials.password})
        _write_private(directory / f"{service}.json", body)
        made[service] = credentials
    return made


def authorization(credentials: dict[str, NatsCredentials], stream: str = "BB") -> dict[str, Any]:
    """The server's ``authorization`` block: each service's user, bcrypt hash, permissions.

    No user without credentials exists, so an anonymous client is refused."""
    users = []
    for service, given in credentials.items():
        digest = bcrypt.hashpw(given.password.encode(), bcrypt.gensalt(BCRYPT_COST))
        users.append({
            "user": given.user,
            "password": digest.decode(),
            "permissions": permissions(service, stream),
        })
    return {"users": users}


def _write_private(path: Path, text: str) -> None:
    """Owner-only from the first byte, and whole or not at all (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def secured_embedded_nats(settings: Settings) -> tuple[EmbeddedNats, Settings]:
    """The embedded server with a user per service (new passwords, written for this run's
    processes), and the settings that make every service of this run use its own."""
    store = settings.data_dir / "nats"
    directory = store / "credentials"
    credentials = generate_credentials(directory)
    nats = EmbeddedNats(
        store,
        sync_always=settings.nats_sync_always,
        authorization=authorization(credentials, settings.stream_name),
    )
    secured = settings.model_copy(update={"nats_credentials_dir": directory.resolve()})
    return nats, secured
