"""The forwarding jitter buffer hands frames on as soon as they are complete."""

from aiortc.rtp import RtpPacket

from services.media.sfu.jitter import ForwardingJitterBuffer


def packet(sequence_number: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    rtp = RtpPacket(
        payload_type=96, marker=int(marker), sequence_number=sequence_number, timestamp=timestamp
    )
    rtp._data = data
    return rtp


def test_a_video_frame_leaves_with_its_marked_last_packet() -> None:
    buffer = ForwardingJitterBuffer("video")
    assert buffer.add(packet(100, 3000, b"a"))[1] is None
    assert buffer.add(packet(101, 3000, b"b"))[1] is None
    _, frame = buffer.add(packet(102, 3000, b"c", marker=True))
    assert (frame.data, frame.timestamp) == (b"abc", 3000)
    _, frame = buffer.add(packet(103, 6000, b"d", marker=True))
    assert (frame.data, frame.timestamp) == (b"d", 6000)


def test_a_video_frame_with_a_hole_waits_for_the_retransmission() -> None:
    buffer = ForwardingJitterBuffer("video")
    buffer.add(packet(100, 3000, b"a"))
    assert buffer.add(packet(102, 3000, b"c", marker=True))[1] is None
    _, frame = buffer.add(packet(101, 3000, b"b"))
    assert frame.data == b"abc"


def test_a_frame_without_marker_still_leaves_when_the_next_one_starts() -> None:
    buffer = ForwardingJitterBuffer("video")
    buffer.add(packet(100, 3000, b"a"))
    _, frame = buffer.add(packet(101, 6000, b"b"))
    assert frame.data == b"a"


def test_every_audio_packet_is_a_frame() -> None:
    buffer = ForwardingJitterBuffer("audio")
    for sequence_number in range(10):
        _, frame = buffer.add(packet(sequence_number, 960 * sequence_number, b"opus"))
        assert frame is not None and frame.timestamp == 960 * sequence_number
