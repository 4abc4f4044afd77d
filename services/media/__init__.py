"""Media service: each consultation's media room, hosted on one replica.

The service (domain, application, service, api, signalling, hosting, registry,
revocation, ice, telemetry) records and follows rooms; the forwarding itself is the
library in ``sfu/``.
"""
