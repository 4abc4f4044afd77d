"""Handing a finished mail over: to an SMTP server, or as an .eml file (the embedded default).

``send`` blocks (call it in a thread). It returns when the mail was accepted, raises
``TemporaryFailure`` when it may be tried again later (server down, refused with 4xx,
connection lost) and ``PermanentFailure`` when it never will be (5xx, e.g. an address
that does not exist).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from services.common.files import PRIVATE_FILE, private_directory
from services.common.settings import Settings

DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
TIMEOUT_SECONDS = 30.0


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


class Transport(Protocol):
    def send(self, message: EmailMessage, name: str) -> None:
        """Deliver ``message``; ``name`` is the outbox id (safe for a file name)."""


class SmtpTransport:
    def __init__(self, settings: Settings, tls_context: ssl.SSLContext | None = None) -> None:
        if not settings.booking_smtp_host:
            raise ValueError("no SMTP host configured")
        self.host = settings.booking_smtp_host
        self.security = settings.booking_smtp_security
        self.port = settings.booking_smtp_port or DEFAULT_PORTS[self.security]
        self.username = settings.booking_smtp_username
        self.password = settings.booking_smtp_password or ""
        self.tls_context = tls_context or ssl.create_default_context()

    def __str__(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.security})"

    def send(self, message: EmailMessage, name: str) -> None:
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self.tls_context)
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipient refused: {codes}") from error
            raise TemporaryFailure(f"recipient deferred: {codes}") from error
        except smtplib.SMTPResponseException as error:
            text = f"{error.smtp_code} {error.smtp_error!r}"
            if error.smtp_code >= 500 and not isinstance(error, smtplib.SMTPAuthenticationError):
                raise PermanentFailure(text) from error
            raise TemporaryFailure(text) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TemporaryFailure(f"{type(error).__name__}: {error}") from error

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT_SECONDS,
                                    context=self.tls_context)
        return smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)


class EmlTransport:
    """Each mail as ``<directory>/<outbox id>.eml`` (0600), written whole or not at all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __str__(self) -> str:
        return f"{self.directory}/*.eml"

    def send(self, message: EmailMessage, name: str) -> None:
        private_directory(self.directory)
        path = self.directory / f"{re.sub(r'[^A-Za-z0-9-]', '.', name)}.eml"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                                 PRIVATE_FILE)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)  # a resend after a crash writes the same file again
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise TemporaryFailure(f"{type(error).__name__}: {error}") from error


def transport_for(settings: Settings) -> Transport:
    if settings.booking_smtp_host:
        return SmtpTransport(settings)
    return EmlTransport(settings.data_dir / "mail")
