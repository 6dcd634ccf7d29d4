"""The benchmarks' raw client reads each event it receives right: its offset, seq and send time,
from the frames the bridge and the baselines send (tests/performance/rawreceiver.py)."""

from __future__ import annotations

import json

from bridge.core.events import decode
from tests.performance.rawreceiver import RawReceiver, arrival_in


def bridge_payload(offset: int, seq: int) -> bytes:
    """An event as the bridge sends it: the producer's envelope with `offset` added last."""
    body = json.dumps(
        {
            "id": "evt-1",
            "type": "progress_update",
            "schema_version": 1,
            "project_id": "p1",
            "source": "bench",
            "occurred_at": "2026-12-07T09:00:00Z",
            "data": {"agent_id": "a", "progress": 0.5, "sent_at": 1765098000.25, "seq": seq},
        }
    ).encode()
    event = decode(body, "project.p1.progress_update", offset, max_bytes=1 << 20)
    return event.payload  # type: ignore[union-attr]  # a valid envelope decodes to an Event


def test_an_event_frame_gives_its_offset_seq_and_send_time() -> None:
    """A native WebSocket event frame, read in place, gives the bridge's offset and the data's
    seq and sent_at."""
    frame = bytearray(b"xx" + bridge_payload(4_321, 17) + b"yy")
    arrival = arrival_in(frame, 2, len(frame) - 2, 5.0)
    assert arrival is not None
    assert (arrival.offset, arrival.seq, arrival.sent_at, arrival.received_at) == (
        4_321,
        17,
        1765098000.25,
        5.0,
    )


def test_the_offset_read_is_the_one_the_bridge_added_last() -> None:
    """An `offset` member a producer put inside the event does not pass for the bridge's."""
    payload = bridge_payload(99, 3).replace(b'"seq": 3', b'"seq": 3, "offset": 5')
    frame = bytearray(payload)
    arrival = arrival_in(frame, 0, len(frame), 0.0)
    assert arrival is not None
    assert (arrival.offset, arrival.seq) == (99, 3)


def test_a_socketio_event_is_recorded_and_a_notice_is_not_taken_for_one() -> None:
    """Socket.IO packets of the recorded event become arrivals; a `resync-required` notice is
    kept as a notice; another event name is ignored."""
    receiver = RawReceiver("socketio", "progress_update")
    payload = bridge_payload(10, 0).decode()
    for packet in (
        f'42["progress_update",{payload}]',
        '42["resync-required",{"room":"project:p1","reason":"expired"}]',
        f'42["other_event",{payload}]',
    ):
        frame = bytearray(packet.encode())
        receiver.on_socketio_event(frame, 0, len(frame))
    assert [(a.offset, a.seq) for a in receiver.arrivals] == [(10, 0)]
    assert receiver.notices == [{"room": "project:p1", "reason": "expired"}]
