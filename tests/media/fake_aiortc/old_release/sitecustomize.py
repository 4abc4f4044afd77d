"""Loaded at interpreter start (PYTHONPATH) by tests/media/test_aiortc_fence.py: an aiortc
like 1.12–1.15, which has no RTCIceTransportPolicy (importing the forwarding code
fails with ImportError before any check could run)."""

import aiortc.rtcconfiguration

del aiortc.rtcconfiguration.RTCIceTransportPolicy
