"""Each transport's framing of an event, built once per event and shared by every recipient.

The hub hands one event to every member of its rooms in turn, so remembering the frame of the
event seen last (`LastFrame`) is enough: the first recipient builds it, all the others reuse
it, and nothing is kept per event afterwards (the history holds only the payload).

- Native WebSocket: the payload (the envelope plus `offset`) as one text frame.
- Socket.IO: an Engine.IO message carrying the Socket.IO EVENT packet `2["<name>",<payload>]`,
  whose name is the event's Socket.IO name (`schemas.events.socketio_event_name`).

Connections with a direct writer get ready WebSocket frames (bytes); the others (compression on,
Socket.IO over long-polling) get the text their library frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from bridge.core.events import Event
from bridge.upstream.uvicorn import text_frame
from schemas.events import EVENT_MODELS, socketio_event_name

FrameT = TypeVar("FrameT", str, bytes)

_NAMES = {
    event_type: json.dumps(socketio_event_name(event_type)).encode() for event_type in EVENT_MODELS
}
"""Each event type's Socket.IO event name, JSON-encoded."""


class LastFrame(Generic[FrameT]):
    """The frame of the event asked for last, rebuilt only when another event comes."""

    __slots__ = ("_build", "_event", "_frame")

    def __init__(self, build: Callable[[Event], FrameT]) -> None:
        self._build: Callable[[Event], FrameT] = build
        self._event: Event | None = None
        self._frame: FrameT | None = None

    def __call__(self, event: Event) -> FrameT:
        if event is not self._event or self._frame is None:
            self._frame = self._build(event)
            self._event = event
        return self._frame


def _socketio_packet(event: Event) -> bytes:
    name = _NAMES.get(event.type) or json.dumps(socketio_event_name(event.type)).encode()
    return b"2[" + name + b"," + event.payload + b"]"


websocket_frame = LastFrame(lambda event: text_frame(event.payload))
"""The native WebSocket frame of an event, ready for a direct writer."""

websocket_text = LastFrame(lambda event: event.payload.decode())
"""The native WebSocket text of an event, for ASGI."""

socketio_frame = LastFrame(lambda event: text_frame(b"4" + _socketio_packet(event)))
"""The WebSocket frame of an event's Engine.IO message, ready for a direct writer."""

socketio_text = LastFrame(lambda event: _socketio_packet(event).decode())
"""An event's Socket.IO packet, for Engine.IO to send."""


def message_text(message: dict[str, Any]) -> str:
    """A reply or notice as compact JSON text."""
    return json.dumps(message, separators=(",", ":"))


def socketio_message(name: str, payload: dict[str, Any]) -> str:
    """A bridge notice as a Socket.IO EVENT packet named `name`."""
    return "2" + json.dumps([name, payload], separators=(",", ":"))


def engineio_frame(packet: str) -> bytes:
    """The WebSocket frame of an Engine.IO message carrying a Socket.IO packet."""
    return text_frame(("4" + packet).encode())
