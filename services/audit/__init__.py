"""Audit service: a tamper-evident transparency log of every consultation (issue 5).

The pure core lives here without any dependency on NATS, storage or the web layer:

- :mod:`services.audit.merkle`: RFC 6962/9162 Merkle tree hashing, proofs and verification.
- :mod:`services.audit.note`: C2SP signed notes with Ed25519 keys.
- :mod:`services.audit.checkpoint`: C2SP tlog-checkpoints, consistency and fork detection.
- :mod:`services.audit.proofs`: self-contained per-record proofs (C2SP tlog-proof).
"""
