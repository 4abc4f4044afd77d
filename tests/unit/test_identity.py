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


def test_a_password_change_and_disabling_are_changes_that_end_sessions() -> None:
    accounts = LocalAccounts()
    accounts.add("anna", "Anna Schmidt", PASSWORD, ["staff"])
    _, start = accounts.changes_after(0)

    accounts.change_password("anna", "another long password")
    assert accounts.authenticate("anna", PASSWORD) is None
    assert accounts.authenticate("anna", "another long password") is not None
    accounts.set_active("anna", False)
    assert accounts.authenticate("anna", "another long password") is None
    assert not accounts.is_active("anna")
    accounts.set_active("anna", True)
    assert accounts.authenticate("anna", "another long password") is not None

    changes, end = accounts.changes_after(start)
    assert [(c.staff_id, c.kind) for c in changes] == [
        ("anna", "PasswordChanged"), ("anna", "Disabled")  # enabling ends no session
    ]
    assert changes[0].at <= changes[1].at and end > changes[1].position
    assert accounts.changes_after(end) == ([], end)


@pytest.mark.parametrize("change", [
    lambda a: a.change_password("nobody", PASSWORD),
    lambda a: a.set_active("nobody", False),
])
def test_changing_an_unknown_account_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AccountError, match="no account 'nobody'"):
        change(LocalAccounts())


def test_a_short_new_password_is_refused(accounts: LocalAccounts) -> None:
    with pytest.raises(AccountError, match="10 characters"):
        accounts.change_password("anna", "short")
