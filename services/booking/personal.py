"""What a citizen typed for an appointment, kept only until it is over plus a retention.

Chosen: crypto-shredding *and* deletion. Each appointment's personal data (display name,
e-mail, language, topic id) is encrypted with AES-256-GCM under a key of its own (the
appointment id is the associated data, so a ciphertext cannot be passed off as another
appointment's). The ciphertexts are in the table ``personal_data``, the keys in the
small table ``personal_keys`` with the time each is to be erased. Erasing deletes the
key and the ciphertext; destroying the key alone already makes every copy of the
ciphertext unreadable (a backup, a replica, a page the database has not overwritten
yet), and is the one thing that must succeed. The events of the booking store and the
bus carry only the appointment id, never any of this.

So that the bytes are in no file afterwards: SQLite (``<data_dir>/booking-personal.sqlite``,
0600) runs with ``secure_delete`` and a rollback journal that is deleted at each commit
(no ``-wal`` file), and after every erasure VACUUM rebuilds the file. With
``BB_DATABASE_URL`` the tables are in the PostgreSQL schema ``booking`` and VACUUM
frees the dead row versions (PostgreSQL's WAL keeps them until its next checkpoint).

The service calls ``put`` *before* saving the appointment (a mail for it looks here), with
``erase_after = personal.erase_after_for(appointment end)``; the mail outbox moves it when
the appointment is moved, and brings it forward to the cancellation plus the retention
when it is cancelled (a cancelled appointment is over; its cancellation mail goes first);
a periodic task calls ``erase_due(now)``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.booking.sidestore import SideStore
from services.common.settings import Settings

TABLES = ("personal_keys", "personal_data")


def _epoch(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("a point in time needs its time zone")
    return at.timestamp()


class PersonalData:
    def __init__(self, settings: Settings) -> None:
        self.retention = timedelta(days=settings.booking_personal_retention_days)
        self.store = SideStore(settings, "booking-personal")
        blob = self.store.blob()
        self.store.create_tables(
            "CREATE TABLE IF NOT EXISTS personal_keys (appointment_id TEXT PRIMARY KEY,"
            f" key {blob} NOT NULL, erase_after DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS personal_data (appointment_id TEXT PRIMARY KEY,"
            f" nonce {blob} NOT NULL, ciphertext {blob} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS personal_keys_erase_after ON personal_keys (erase_after)",
        )

    def erase_after_for(self, appointment_end: datetime) -> datetime:
        """When the data of an appointment ending at ``appointment_end`` is to be erased."""
        return appointment_end + self.retention

    def put(self, appointment_id: UUID, data: dict[str, Any], erase_after: datetime) -> None:
        """Keep ``data`` (JSON values) under a new key; a second put replaces the first."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = AESGCM(key).encrypt(
            nonce, json.dumps(data).encode(), str(appointment_id).encode()
        )
        with self.store.transaction() as cursor:
            cursor.execute(
                "INSERT INTO personal_keys (appointment_id, key, erase_after) VALUES (?, ?, ?)"
                " ON CONFLICT (appointment_id) DO UPDATE SET key = excluded.key,"
                " erase_after = excluded.erase_after",
                (str(appointment_id), key, _epoch(erase_after)),
            )
            cursor.execute(
                "INSERT INTO personal_data (appointment_id, nonce, ciphertext) VALUES (?, ?, ?)"
                " ON CONFLICT (appointment_id) DO UPDATE SET nonce = excluded.nonce,"
                " ciphertext = excluded.ciphertext",
                (str(appointment_id), nonce, ciphertext),
            )

    def get(self, appointment_id: UUID) -> dict[str, Any] | None:
        """The data, or None when there was none or it is erased."""
        with self.store.transaction() as cursor:
            cursor.execute(
                "SELECT k.key, d.nonce, d.ciphertext FROM personal_keys k"
                " JOIN personal_data d ON d.appointment_id = k.appointment_id"
                " WHERE k.appointment_id = ?",
                (str(appointment_id),),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        key, nonce, ciphertext = (bytes(value) for value in row)
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, str(appointment_id).encode())
        data: dict[str, Any] = json.loads(plaintext)
        return data

    def extend(self, appointment_id: UUID, erase_after: datetime) -> None:
        """A moved appointment: erase at the new time (earlier or later)."""
        with self.store.transaction() as cursor:
            cursor.execute(
                "UPDATE personal_keys SET erase_after = ? WHERE appointment_id = ?",
                (_epoch(erase_after), str(appointment_id)),
            )

    def shorten(self, appointment_id: UUID, erase_after: datetime) -> None:
        """A cancelled appointment is over: erase at ``erase_after`` if that is sooner."""
        with self.store.transaction() as cursor:
            cursor.execute(
                "UPDATE personal_keys SET erase_after = ? WHERE appointment_id = ?"
                " AND erase_after > ?",
                (_epoch(erase_after), str(appointment_id), _epoch(erase_after)),
            )

    def erase(self, appointment_id: UUID) -> None:
        with self.store.transaction() as cursor:
            removed = self._delete(cursor, [str(appointment_id)])
        if removed:
            self.store.scrub(*TABLES)

    def erase_due(self, now: datetime) -> int:
        """Erase every appointment's data whose time has come; how many were erased."""
        with self.store.transaction() as cursor:
            cursor.execute(
                "SELECT appointment_id FROM personal_keys WHERE erase_after <= ?", (_epoch(now),)
            )
            due = [str(row[0]) for row in cursor.fetchall()]
            removed = self._delete(cursor, due)
        if removed:
            self.store.scrub(*TABLES)
        return removed

    @staticmethod
    def _delete(cursor: Any, appointment_ids: list[str]) -> int:
        removed = 0
        for appointment_id in appointment_ids:
            cursor.execute("DELETE FROM personal_keys WHERE appointment_id = ?", (appointment_id,))
            removed += max(cursor.rowcount, 0)
            cursor.execute("DELETE FROM personal_data WHERE appointment_id = ?", (appointment_id,))
        return removed

    def close(self) -> None:
        self.store.close()
