"""Guessing passwords is throttled per account and per client address, in every process.

Sign-in is the rooms service's (the core process); the queue processes pass it on and
say who asked in X-Forwarded-For. The test's client is on loopback, which the public
port trusts as a proxy, so its X-Forwarded-For stands for clients at other addresses.
"""

from __future__ import annotations

import re

import httpx
import pytest

from services.common.throttle import wait_seconds
from tests.conftest import SystemProcess
from tests.helpers import DEMO_PASSWORD

pytestmark = pytest.mark.timeout(240)

GUESSES = [f"guess number {n}!" for n in range(40)]


@pytest.fixture(params=["2", "0"], ids=["queue-processes-2", "queue-processes-0"])
def system(request: pytest.FixtureRequest, system_factory) -> SystemProcess:  # type: ignore[no-untyped-def]
    return system_factory(args=["up", "--queue-processes", request.param])  # type: ignore[no-any-return]


def _sign_in(system: SystemProcess, username: str, password: str, address: str) -> httpx.Response:
    # A fresh connection each time: either queue process may take it.
    with httpx.Client(base_url=f"{system.base}/api/v1", timeout=30) as client:
        return client.post(
            "/auth/login",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": address},
        )


def _metric(system: SystemProcess, name: str, labels: str) -> float:
    text = httpx.get(f"{system.base}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(rf"^{name}{{{labels}}} ([0-9.e+]+)$", text, re.M))


def test_guessing_one_account_is_stopped_and_the_right_password_waits(
    system: SystemProcess,
) -> None:
    attacker = "198.51.100.7"
    answers = [_sign_in(system, "anna", guess, attacker).status_code for guess in GUESSES]
    # Five wrong answers, then nothing more to learn: every further try is refused unchecked.
    assert answers == [401] * 5 + [429] * 35

    right = _sign_in(system, "anna", DEMO_PASSWORD, attacker)
    assert right.status_code == 429
    assert "bb_session" not in right.cookies
    retry_after = int(right.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    assert right.json()["retry_after_seconds"] == retry_after
    assert "try again in 15 minutes" in right.json()["detail"]
    # The account is locked, whoever asks: from another address the right password waits too.
    assert _sign_in(system, "anna", DEMO_PASSWORD, "203.0.113.50").status_code == 429

    # Another account from another address is not affected.
    other = _sign_in(system, "ben", DEMO_PASSWORD, "192.0.2.20")
    assert other.status_code == 200, other.text

    assert _metric(system, "bb_signin_failures_total", 'reason="wrong_credentials"') == 5
    assert _metric(system, "bb_signin_throttled_total", 'limit="account"') == 37
    # The JSON log lines (the banner before them names the demo password on purpose).
    log = "\n".join(line for line in system.log_path.read_text().splitlines() if line[:1] == "{")
    assert '"signin_throttled"' in log and '"limit": "account"' in log
    for password in [*GUESSES, DEMO_PASSWORD]:
        assert password not in log


def test_guessing_many_accounts_from_one_address_is_stopped(system: SystemProcess) -> None:
    attacker = "2001:db8:7:7::1"
    # Four wrong passwords for each of five accounts: no account reaches its limit, the
    # address (20) does.
    for account in ("anna", "ben", "carla", "dora", "otto"):
        for guess in GUESSES[:4]:
            assert _sign_in(system, account, guess, attacker).status_code == 401
    # From anywhere in the attacker's /64, even with a right password, nothing gets in.
    refused = _sign_in(system, "ben", DEMO_PASSWORD, "2001:db8:7:7::beef")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _metric(system, "bb_signin_throttled_total", 'limit="address"') == 1
    # The accounts themselves are not locked: their people sign in from elsewhere.
    assert _sign_in(system, "ben", DEMO_PASSWORD, "192.0.2.21").status_code == 200
    # And a success forgets the account's failures: four more wrong ones are still 401.
    for guess in GUESSES[:4]:
        assert _sign_in(system, "ben", guess, "192.0.2.21").status_code == 401


def test_the_window_arithmetic() -> None:
    window = 900.0
    failures = [1000.0, 1100.0, 1200.0, 1300.0, 1400.0]
    assert wait_seconds(failures[:4], 5, window, 1500.0) == 0
    # Five within the window: until the oldest of them leaves it.
    assert wait_seconds(failures, 5, window, 1500.0) == 1000.0 + window - 1500.0
    assert wait_seconds(failures, 5, window, 1901.0) == 0
    # More failures than the limit never lengthen the wait beyond the limit's worth.
    assert wait_seconds([1350.0, *failures], 5, window, 1500.0) == 1100.0 + window - 1500.0
