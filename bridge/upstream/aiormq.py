"""aiormq (under aio-pika): being told that the broker cancelled a consumer, and consuming the
log without aio-pika's per-record wrapping.

A stream consumer is cancelled by the broker when the stream is deleted (or its leader goes
away for good). aio-pika's plain channel offers no callback for that, only its robust channel
restores consumers, which a log reader must not do (it would silently start over). aiormq's
channel declares `on_consumer_cancel_callbacks` in its abstract interface; aio-pika hands out
that channel through the public `get_underlay_channel()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aio_pika.abc import AbstractChannel

from bridge.upstream.seams import Seam

SEAMS = (
    Seam(
        "aiormq.abc.AbstractChannel",
        why="aio-pika's channel has no public callback for a consumer cancelled by the broker",
        attributes=("on_consumer_cancel_callbacks",),
    ),
    Seam(
        "aiormq.channel.Channel",
        why="the channel that calls those callbacks with the broker's Basic.Cancel frame",
        methods={"_on_cancel_frame": ("frame",)},
    ),
    Seam(
        "aio_pika.channel.Channel",
        why="aio-pika's way to the aiormq channel under a channel",
        methods={"get_underlay_channel": ()},
    ),
    Seam(
        "aiormq.abc.AbstractChannel",
        why="the log reader consumes on the aiormq channel, without aio-pika's per-record "
        "IncomingMessage and task (bridge.broker.logmessage)",
        methods={
            "basic_consume": (
                "queue",
                "consumer_callback",
                "no_ack",
                "exclusive",
                "arguments",
                "consumer_tag",
                "timeout",
            ),
            "basic_cancel": ("consumer_tag", "nowait", "timeout"),
            "basic_ack": ("delivery_tag", "multiple", "wait"),
        },
    ),
    Seam(
        "aiormq.abc.DeliveredMessage",
        why="what the log reader reads of each delivery",
        attributes=("header", "body", "routing_key", "delivery_tag"),
    ),
)


async def on_consumer_cancelled(channel: AbstractChannel, callback: Callable[..., Any]) -> None:
    """Call `callback` when the broker cancels a consumer of `channel`."""
    underlay = await channel.get_underlay_channel()
    underlay.on_consumer_cancel_callbacks.add(callback)
