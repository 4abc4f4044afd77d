"""Loaded at interpreter start (PYTHONPATH) by tests/media/test_aiortc_fence.py: an aiortc
whose jitter buffer no longer keeps the fields the forwarding hooks rely on."""

from aiortc.jitterbuffer import JitterBuffer


def _remove_frame(self: JitterBuffer, sequence_number: int) -> None:
    return None


JitterBuffer._remove_frame = _remove_frame  # type: ignore[method-assign,assignment]
