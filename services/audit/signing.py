"""The log's signing key and the rule that it never signs a checkpoint that contradicts one.

Before each signature the log recomputes, from its stored tree, the root at the size of
the newest checkpoint it signed; only if that still matches (the stored log was not
rewritten or cut) does it sign the new, larger tree. At start (and with each online
verification) the whole log is recomputed from its records. A log that fails either check
stops signing and reports itself not ready, rather than publish a fork.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from services.audit._text import b64encode
from services.audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from services.audit.note import SignerKey, VerifierKey
from services.audit.store import LogStore
from services.common.files import create_private_file
from services.common.settings import Settings

KEY_FILE = "audit-signing.key"


class InconsistentLogError(RuntimeError):
    """The stored log no longer matches a checkpoint the log signed: it refuses to sign."""


class SigningKeyError(ValueError):
    """The configured signing key cannot be used."""


def load_signer(settings: Settings) -> SignerKey:
    """The configured key (``BB_AUDIT_SIGNING_KEY``, or the file ``BB_AUDIT_SIGNING_KEY_FILE``
    names), or for the embedded default one generated once into ``data_dir``."""
    if settings.audit_signing_key:
        key = SignerKey.parse(settings.audit_signing_key.strip())
    elif settings.audit_signing_key_file:
        key = SignerKey.parse(_read_key_file(settings.audit_signing_key_file))
    else:
        path = settings.data_dir / KEY_FILE
        if path.exists():
            text = path.read_text()
        else:
            text = create_private_file(path, SignerKey.generate(settings.audit_origin).encode()
                                       + "\n")
        key = SignerKey.parse(text.strip())
    if key.name != settings.audit_origin:
        raise SigningKeyError(
            f"the audit signing key is named {key.name!r}, but BB_AUDIT_ORIGIN is "
            f"{settings.audit_origin!r}: the key name must be the log's origin")
    return key


def _read_key_file(path: Path) -> str:
    """A key file must exist: a missing Secret must not silently start a log with a new key."""
    try:
        return path.read_text().strip()
    except OSError as error:
        raise SigningKeyError(
            f"BB_AUDIT_SIGNING_KEY_FILE={path}: {error.strerror or error}; make one with "
            f"`buergerbuero audit keygen --key-file {path}`") from error


@dataclass(frozen=True)
class Signed:
    size: int
    root_hash: bytes
    note: str

    @property
    def root_b64(self) -> str:
        return b64encode(self.root_hash)


class Checkpointer:
    """Signs the log's current tree head when it has grown, never contradicting an earlier one."""

    def __init__(self, store: LogStore, signer: SignerKey) -> None:
        self.store = store
        self.signer = signer
        self.verifier: VerifierKey = signer.verifier()
        self.origin = signer.name
        self.broken: str | None = None
        self._lock = threading.Lock()

    def latest(self) -> Signed | None:
        found = self.store.latest_checkpoint()
        if found is None:
            return None
        checkpoint = open_checkpoint(found[1], self.verifier)
        return Signed(checkpoint.size, checkpoint.root_hash, found[1])

    def sign_if_grown(self) -> Signed | None:
        """Sign the current tree if it is larger than the last checkpoint; the new one or None."""
        with self._lock:
            if self.broken:
                raise InconsistentLogError(self.broken)
            size, root = self.store.root()
            previous = self.latest()
            if previous is not None and previous.size >= size:
                if previous.size > size:
                    self._refuse(f"the log holds {size} records, but a checkpoint of size "
                                 f"{previous.size} was signed: the log was cut")
                return None
            if previous is not None:
                again = self.store.tree(size).root(previous.size)
                if again != previous.root_hash:
                    self._refuse(f"the stored log no longer leads to the root signed at size "
                                 f"{previous.size}: it was altered")
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
            self.store.save_checkpoint(size, note)
            return Signed(size, root, note)

    def check_store(self) -> bool:
        """Recompute the whole stored log (slow: at start and on demand); stop signing if bad.

        The check before each signature reads stored subtree hashes, so it catches a cut or
        rewritten tree but not one record rewritten together with its leaf hash; this does.
        """
        from services.audit.verify import verify_stored

        report = verify_stored(self.store, self.verifier)
        if not report.ok:
            self.broken = f"the stored log fails verification: {report.failure}"
        return report.ok

    def _refuse(self, reason: str) -> None:
        self.broken = reason
        raise InconsistentLogError(reason)
