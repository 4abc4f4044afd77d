"""The NATS users: where a service finds its credentials, how `up` makes them, and that the
permission table names the consumers, buckets and subjects the services really use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.common import lease, outbox
from services.common.natsaccess import ACCESS, LEASE_BUCKET, SERVICES, inbox_prefix, permissions
from services.common.natsauth import (
    MissingCredentials,
    NatsCredentials,
    authorization,
    credentials_for,
    generate_credentials,
)


def test_a_credentials_directory_gives_each_service_its_own(tmp_path: Path) -> None:
    made = generate_credentials(tmp_path / "credentials")
    for service in SERVICES:
        found = credentials_for(service, "ignored", "ignored", tmp_path / "credentials")
        assert found == made[service] and found.user == service
    assert len({c.password for c in made.values()}) == len(SERVICES)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MissingCredentials, match="no NATS credentials for media"):
        credentials_for("media", credentials_dir=tmp_path)


def test_one_user_for_the_process_else_none() -> None:
    assert credentials_for("rooms", "bb", "secret") == NatsCredentials("bb", "secret")
    assert credentials_for("rooms") is None  # an external NATS without authentication


def test_credentials_are_private_and_new_at_every_start(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    first = generate_credentials(directory)
    assert directory.stat().st_mode & 0o777 == 0o700
    for service in SERVICES:
        path = directory / f"{service}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text())["user"] == service
    second = generate_credentials(directory)
    assert all(first[s].password != second[s].password for s in SERVICES)


def test_the_server_gets_hashes_only(tmp_path: Path) -> None:
    made = generate_credentials(tmp_path)
    block = json.dumps(authorization(made))
    for credentials in made.values():
        assert credentials.password not in block
    assert block.count('"$2b$') == len(SERVICES)


def test_the_table_names_what_the_services_use() -> None:
    from services.audit.ingest import DURABLE as AUDIT_DURABLE
    from services.media.registry import REPLICAS_BUCKET, ROOMS_BUCKET
    from services.media.service import CONSUMER as MEDIA_DURABLE
    from services.queue.floods import RATE_BUCKET
    from services.queue.service import (
        MESSAGES_SUBJECT,
        PRESENCE_SUBJECT,
        STAFF_STREAM_SLOTS_BUCKET,
        STREAM_SLOTS_BUCKET,
    )
    from services.queue.visits import VISITS_BUCKET

    assert LEASE_BUCKET == lease.BUCKET
    assert AUDIT_DURABLE in ACCESS["audit"].consumers
    assert MEDIA_DURABLE in ACCESS["media"].consumers
    assert set(ACCESS["media"].buckets) == {REPLICAS_BUCKET, ROOMS_BUCKET}
    assert set(ACCESS["queue"].buckets) == {
        VISITS_BUCKET, RATE_BUCKET, STREAM_SLOTS_BUCKET, STAFF_STREAM_SLOTS_BUCKET
    }
    assert set(ACCESS["queue"].ephemeral) == {f"{MESSAGES_SUBJECT}.>", PRESENCE_SUBJECT}
    for service in SERVICES:
        granted = permissions(service)
        assert outbox.wake_subject(service) in granted["publish"]["allow"]
        assert outbox.read_subject(service) in granted["subscribe"]["allow"]
        assert f"{inbox_prefix(service)}.>" in granted["subscribe"]["allow"]


def test_only_the_queue_may_touch_what_citizens_typed() -> None:
    for service in SERVICES:
        granted = json.dumps(permissions(service))
        assert ("bb_visits" in granted) == (service == "queue"), service
