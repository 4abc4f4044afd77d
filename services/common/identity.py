"""Local staff accounts for the embedded default: who someone is, not what they may do where.

Passwords are hashed with argon2. In production the administration's OpenID Connect
provider (e.g. Keycloak) signs staff in instead (``oidc.py``, ``oidc_signin.py``;
``BB_LOCAL_ACCOUNTS=false`` switches these accounts off): anything that yields a
``StaffIdentity`` after sign-in will do; every service only ever sees the signed session.
Which departments a staff member serves is the rooms service's roster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from services.common import text

GlobalRole = Literal["staff", "dpo", "operator"]
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-password")


@dataclass(frozen=True)
class StaffIdentity:
    staff_id: str
    display_name: str
    roles: frozenset[str] = field(default_factory=frozenset)


class StaffAccount(Aggregate):
    @staticmethod
    def create_id(username: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/staff/{username}")

    @event("Created")
    def __init__(self, username: str, display_name: str, password_hash: str, roles: list[str]):
        self.username = username
        self.display_name = display_name
        self.password_hash = password_hash
        self.roles = roles
        self.active = True

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        self.password_hash = password_hash

    @event("RolesChanged")
    def change_roles(self, roles: list[str]) -> None:
        self.roles = roles

    @event("Disabled")
    def disable(self) -> None:
        self.active = False

    @event("Enabled")
    def enable(self) -> None:
        self.active = True


# After these, the account's earlier sessions are void (services/common/sessions.py).
ENDS_SESSIONS = ("PasswordChanged", "RolesChanged", "Disabled")


@dataclass(frozen=True)
class AccountChange:
    """A change that ends an account's earlier sessions: where it is in the store, whose,
    which, and when (Unix seconds)."""

    position: int
    staff_id: str
    kind: str
    at: float


class AccountError(ValueError):
    pass


class LocalAccounts(Application[UUID]):
    name = "identity"
    log_section_size = 1000

    def add(self, username: str, display_name: str, password: str, roles: list[str]) -> None:
        if not USERNAME.match(username):
            raise AccountError("user names are 2-63 lower-case letters, digits, '.', '_' or '-'")
        if len(password) < 10:
            raise AccountError("passwords need at least 10 characters")
        unknown = set(roles) - {"staff", "dpo", "operator"}
        if unknown:
            raise AccountError(f"unknown roles: {', '.join(sorted(unknown))}")
        try:
            display_name = text.display_name(display_name)
        except ValueError as error:
            raise AccountError(str(error)) from error
        account_id = StaffAccount.create_id(username)
        try:
            account: StaffAccount = self.repository.get(account_id)
        except AggregateNotFoundError:
            self.save(StaffAccount(username, display_name, _hasher.hash(password), roles))
            return
        account.change_password(_hasher.hash(password))
        account.change_roles(roles)
        self.save(account)

    def change_password(self, username: str, password: str) -> None:
        if len(password) < 10:
            raise AccountError("passwords need at least 10 characters")
        account = self._account(username)
        account.change_password(_hasher.hash(password))
        self.save(account)

    def set_active(self, username: str, active: bool) -> None:
        """Disable an account (it cannot sign in, its sessions end) or enable it again."""
        account = self._account(username)
        if account.active != active:
            account.enable() if active else account.disable()
            self.save(account)

    def is_active(self, username: str) -> bool:
        return self._account(username).active

    def changes_after(self, position: int, limit: int = 500) -> tuple[list[AccountChange], int]:
        """Changes that end sessions, stored after ``position``; and the position read to."""
        changes = []
        for notification in self.notification_log.select(start=position + 1, limit=limit):
            position = notification.id
            kind = notification.topic.rsplit(".", 1)[-1]
            if kind not in ENDS_SESSIONS:
                continue
            stored: Aggregate.Event = self.mapper.to_domain_event(notification)  # type: ignore[assignment]
            account: StaffAccount = self.repository.get(stored.originator_id)
            at = stored.timestamp.timestamp()
            changes.append(AccountChange(notification.id, account.username, kind, at))
        return changes, position

    def _account(self, username: str) -> StaffAccount:
        try:
            account: StaffAccount = self.repository.get(StaffAccount.create_id(username))
        except AggregateNotFoundError:
            raise AccountError(f"there is no account '{username}'") from None
        return account

    def authenticate(self, username: str, password: str) -> StaffIdentity | None:
        try:
            account: StaffAccount = self.repository.get(StaffAccount.create_id(username))
        except AggregateNotFoundError:
            _verify(_DUMMY_HASH, password)
            return None
        if not account.active or not _verify(account.password_hash, password):
            return None
        return StaffIdentity(account.username, account.display_name, frozenset(account.roles))

    def list(self) -> list[StaffIdentity]:
        found = []
        for notification in self.notification_log.select(start=1, limit=1000):
            if notification.originator_version == 1:
                account: StaffAccount = self.repository.get(UUID(str(notification.originator_id)))
                found.append(
                    StaffIdentity(account.username, account.display_name, frozenset(account.roles))
                )
        return sorted(found, key=lambda s: s.staff_id)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
