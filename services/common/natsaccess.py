"""Who may do what on NATS: each service's publish and subscribe permissions.

Every service connects as its own NATS user. It may publish only its own events
(``bb.<service>.>``): so the subject of a stored event proves which service sent it,
and the audit log accepts an event only on the subject of the service that owns its
contract (services/audit/ownership.py). Beyond that each service reaches only what it
uses, listed in :data:`ACCESS`:

* its durable consumers on the shared stream, each pinned to its name and, where it has
  one filter, to that filter (``$JS.API.CONSUMER.CREATE.BB.<durable>.<filter>``): a
  service reads other services' events only through the filters below;
* core subscriptions to stored events it follows live;
* its own KV buckets (and read-only ones it is shown); the shared lease bucket only at
  its own key ``outbox.<service>``;
* its own core subjects outside ``bb.>`` (wake-ups, outbox reads, the queue's notes);
* replies only on its own inbox prefix ``_INBOX.<service>.>`` (:func:`inbox_prefix`), so
  one service cannot read another's replies (a KV read, a JetStream acknowledgement).

Any service may create the shared stream (whichever starts first) and raise its
replicas; none may delete or purge a stream or a consumer of another service.

This is used for the embedded server's configuration (services/common/natsauth.py) and
shown in the NATS Helm values (deploy/k8s/nats/values.yaml; tests/deploy checks both
agree). A service that starts using NATS in a new way needs its line here, or the
server refuses it ("Permissions Violation" in the server's log).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JS_API = "$JS.API"
LEASE_BUCKET = "bb_leases"  # services/common/lease.py
REPLY_EXPIRY = "1m"  # a request's reply must be sent within this (outbox reads)


@dataclass(frozen=True)
class BusAccess:
    """What one service does on NATS besides publishing its own events."""

    # durable consumer name -> its filter subjects on the shared stream
    consumers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # core subscriptions to stored events (live views)
    watches: tuple[str, ...] = ()
    # KV buckets it creates, reads and writes
    buckets: tuple[str, ...] = ()
    # KV buckets of another service it may read (never write)
    reads_buckets: tuple[str, ...] = ()
    # core subjects outside bb.> it both sends and receives
    ephemeral: tuple[str, ...] = ()
    # core subjects it sends requests to (answered by their owner)
    requests: tuple[str, ...] = ()


# Staff sessions ended early (services/common/sessions.py): rooms (sign-in, sign-out,
# account changes) writes them, every process serving staff routes follows them.
SESSIONS = "bb_sessions"

ACCESS: dict[str, BusAccess] = {
    "queue": BusAccess(
        consumers={"queue": ("bb.rooms.>",)},
        watches=("bb.queue.>", "bb.rooms.consultation_opened"),
        # bb_knock_rate, bb_ticket_streams, bb_staff_streams: limits shared by the queue
        # processes (floods.py, the live streams' slots).
        buckets=("bb_visits", "bb_knock_rate", "bb_ticket_streams", "bb_staff_streams"),
        reads_buckets=(SESSIONS,),
        ephemeral=("bbx.queue.message.>", "bbx.queue.presence"),
    ),
    "rooms": BusAccess(
        consumers={
            "rooms": ("bb.queue.admitted",),
            "rooms-denylist": ("bb.rooms.invitation_revoked",),
        },
        # withdrawn invitations, sessions, failed sign-ins (services/common/throttle.py)
        buckets=("bb_revoked", SESSIONS, "bb_signin"),
    ),
    "audit": BusAccess(
        consumers={"audit": ("bb.>",)},
        reads_buckets=(SESSIONS,),
        # The gap filler reads every publisher's outbox (services/common/outbox.py).
        requests=("bbx.outbox.*.read",),
    ),
    "media": BusAccess(
        consumers={"media": ("bb.rooms.consultation_opened", "bb.rooms.consultation_ended")},
        watches=(
            "bb.rooms.consultation_ended",
            "bb.media.media_room_closed",
            "bb.rooms.invitation_revoked",  # drops a withdrawn interpreter at once
        ),
        buckets=("bb_media_replicas", "bb_media_rooms"),
        # The shared denylist of withdrawn invitations (rooms writes it).
        reads_buckets=("bb_revoked", SESSIONS),
    ),
    "booking": BusAccess(
        # What booking knows of departments and their staff, from the rooms service.
        consumers={
            "booking": (
                "bb.rooms.department_registered",
                "bb.rooms.department_updated",
                "bb.rooms.staff_assigned",
                "bb.rooms.staff_unassigned",
            ),
        },
        # bb_booking_rate, bb_booking_streams: bookings per client address and staff's live
        # streams, limits shared by the booking processes.
        buckets=("bb_booking_rate", "bb_booking_streams"),
        reads_buckets=(SESSIONS,),
    ),
}

SERVICES = tuple(ACCESS)


def inbox_prefix(service: str) -> str:
    """Where the replies to one service's requests arrive; only it may subscribe there."""
    return f"_INBOX.{service}"


def permissions(service: str, stream: str = "BB") -> dict[str, Any]:
    """The nats-server ``permissions`` block of one service's user."""
    access = ACCESS[service]
    publish = [f"bb.{service}.>", *_stream(stream)]
    subscribe = [f"{inbox_prefix(service)}.>", *access.watches]
    for durable, filters in access.consumers.items():
        publish += _consumer(stream, durable, filters)
    for bucket in access.buckets:
        publish += _bucket_admin(bucket) + _bucket_read(bucket) + [f"$KV.{bucket}.>"]
    for bucket in access.reads_buckets:
        publish += _bucket_read(bucket)
    publish += _lease_key(service)
    own_core = [f"bbx.outbox.{service}.wake", f"bbx.outbox.{service}.read", *access.ephemeral]
    publish += [f"bbx.outbox.{service}.wake", *access.ephemeral, *access.requests]
    subscribe += own_core
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": subscribe},
        # Answering a request (an outbox read) without any right to publish on inboxes.
        "allow_responses": {"max": 1, "expires": REPLY_EXPIRY},
    }


def _stream(stream: str) -> list[str]:
    return [f"{JS_API}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]


def _consumer(stream: str, durable: str, filters: tuple[str, ...]) -> list[str]:
    # One filter: nats-py puts it in the subject, and the server checks it matches the
    # consumer's configuration; several: the consumer's name is as far as a subject goes.
    create = f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}"
    if len(filters) == 1:
        create += f".{filters[0]}"
    return [
        create,
        f"{JS_API}.CONSUMER.INFO.{stream}.{durable}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _bucket_admin(bucket: str) -> list[str]:
    return [f"{JS_API}.STREAM.{verb}.KV_{bucket}" for verb in ("CREATE", "UPDATE")]


def _bucket_read(bucket: str) -> list[str]:
    stream = f"KV_{bucket}"
    return [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
        # watch and keys(): an ordered (ephemeral) consumer and its flow control
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.>",
        f"{JS_API}.CONSUMER.DELETE.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _lease_key(service: str) -> list[str]:
    """The shared lease bucket: create it, read it (holder names only), write only this
    service's key."""
    stream, key = f"KV_{LEASE_BUCKET}", f"$KV.{LEASE_BUCKET}.outbox.{service}"
    return [
        *_bucket_admin(LEASE_BUCKET),
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.{key}",
        key,
    ]


if __name__ == "__main__":  # the permissions of deploy/k8s/nats/values.yaml, as JSON (YAML)
    import json
    import sys

    for name in sys.argv[1:] or SERVICES:
        print(f"# {name}\n{json.dumps(permissions(name), indent=2)}")
