"""Personal data of appointments: encrypted per appointment, erased after its retention
with neither the plaintext nor the key left in any file of the data directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.booking.personal import PersonalData
from services.common.settings import Settings

NAME = "Xaverius Quenzelmann-Oberhuber"
EMAIL = "xaverius.quenzel@example.org"
END = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def personal(tmp_path: Path) -> PersonalData:
    return PersonalData(Settings(data_dir=tmp_path, database_url=None))


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def stored_key(personal: PersonalData, appointment_id: object) -> bytes:
    with personal.store.transaction() as cursor:
        cursor.execute(
            "SELECT key FROM personal_keys WHERE appointment_id = ?", (str(appointment_id),)
        )
        row = cursor.fetchone()
    assert row is not None
    return bytes(row[0])


def test_kept_encrypted_and_read_back(personal: PersonalData, tmp_path: Path) -> None:
    appointment = uuid4()
    data = {"display_name": NAME, "email": EMAIL, "language": "de", "topic_id": "t1"}
    personal.put(appointment, data, personal.erase_after_for(END))
    assert personal.get(appointment) == data
    assert personal.get(uuid4()) is None
    assert files_containing(tmp_path, NAME.encode()) == []
    assert files_containing(tmp_path, EMAIL.encode()) == []


def test_erased_after_the_retention_from_every_file(personal: PersonalData, tmp_path: Path) -> None:
    planted, other = uuid4(), uuid4()
    personal.put(planted, {"display_name": NAME, "email": EMAIL, "language": "en"},
                 personal.erase_after_for(END))
    personal.put(other, {"display_name": "Ann", "email": "ann@example.org"},
                 personal.erase_after_for(END + timedelta(days=30)))
    key = stored_key(personal, planted)
    assert len(key) == 32 and files_containing(tmp_path, key)

    assert personal.erase_due(END + timedelta(days=2, hours=23)) == 0
    assert personal.get(planted) is not None
    assert personal.erase_due(END + timedelta(days=3)) == 1

    assert personal.get(planted) is None
    assert personal.get(other) == {"display_name": "Ann", "email": "ann@example.org"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["booking-personal.sqlite"]
    for needle in (NAME.encode(), EMAIL.encode(), key):
        assert files_containing(tmp_path, needle) == []


def test_a_moved_appointment_is_kept_until_its_new_end(personal: PersonalData) -> None:
    appointment = uuid4()
    personal.put(appointment, {"email": EMAIL}, personal.erase_after_for(END))
    personal.extend(appointment, personal.erase_after_for(END + timedelta(days=7)))
    assert personal.erase_due(END + timedelta(days=4)) == 0
    assert personal.get(appointment) == {"email": EMAIL}
    personal.erase(appointment)
    assert personal.get(appointment) is None


def test_files_are_private(personal: PersonalData, tmp_path: Path) -> None:
    personal.put(uuid4(), {"email": EMAIL}, END)
    assert (tmp_path / "booking-personal.sqlite").stat().st_mode & 0o077 == 0


def test_a_cancelled_appointment_is_erased_its_retention_after_the_cancellation(
    personal: PersonalData,
) -> None:
    appointment, cancelled_at = uuid4(), END - timedelta(days=20)
    personal.put(appointment, {"email": EMAIL}, personal.erase_after_for(END))
    personal.shorten(appointment, personal.erase_after_for(cancelled_at))
    personal.shorten(appointment, personal.erase_after_for(END))  # never later again
    assert personal.erase_due(cancelled_at + timedelta(days=2, hours=23)) == 0
    assert personal.erase_due(cancelled_at + timedelta(days=3)) == 1
    assert personal.get(appointment) is None
