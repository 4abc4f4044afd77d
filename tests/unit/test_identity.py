"""Local staff accounts: argon2 hashes, and nothing that tells a wrong password from no user."""

from __future__ import annotations

import pytest

from services.common.identity import AccountError, LocalAccounts, StaffAccount

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def accounts() -> LocalAccounts:
    accounts = LocalAccounts()
    accounts.add("anna", "Anna Schmidt", PASSWORD, ["staff"])
    accounts.add("dora", "Dora Datenschutz", PASSWORD, ["dpo"])
    return accounts


def test_passwords_are_stored_as_argon2_hashes(accounts: LocalAccounts) -> None:
    account = accounts.repository.get(StaffAccount.create_id("anna"))
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    stored = [n.state for n in accounts.notification_log.select(start=1, limit=100)]
    assert all(PASSWORD.encode() not in state for state in stored)


def test_the_right_password_signs_in(accounts: LocalAccounts) -> None:
    identity = accounts.authenticate("anna", PASSWORD)
    assert identity is not None
    assert (identity.staff_id, identity.display_name) == ("anna", "Anna Schmidt")
    assert identity.roles == frozenset({"staff"})


@pytest.mark.parametrize(("username", "password"), [
    ("anna", PASSWORD.upper()),
    ("nobody", PASSWORD),
])
def test_wrong_password_or_unknown_user(accounts: LocalAccounts, username: str,
                                        password: str) -> None:
    assert accounts.authenticate(username, password) is None


def test_list(accounts: LocalAccounts) -> None:
    found = {s.staff_id: sorted(s.roles) for s in accounts.list()}
    assert set(found) == {"anna", "dora"} and found["anna"] == ["staff"]


def test_adding_again_changes_password_and_roles(accounts: LocalAccounts) -> None:
    accounts.add("dora", "Dora Datenschutz", "a new password!", ["dpo", "operator"])
    assert accounts.authenticate("dora", PASSWORD) is None
    identity = accounts.authenticate("dora", "a new password!")
    assert identity is not None and identity.roles == frozenset({"dpo", "operator"})
    assert len(accounts.list()) == 2


@pytest.mark.parametrize(("username", "password", "roles", "message"), [
    ("Anna", PASSWORD, ["staff"], "user names"),
    ("a", PASSWORD, ["staff"], "user names"),
    ("anna smith", PASSWORD, ["staff"], "user names"),
    ("anna", "short", ["staff"], "10 characters"),
    ("anna", PASSWORD, ["admin"], "unknown roles"),
])
def test_invalid_accounts_are_refused(username: str, password: str, roles: list[str],
                                      message: str) -> None:
    accounts = LocalAccounts()
    with pytest.raises(AccountError, match=message):
        accounts.add(username, "Someone", password, roles)
    assert accounts.list() == []
