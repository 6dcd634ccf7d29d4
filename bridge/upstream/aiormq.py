"""aiormq (under aio-pika): being told that the broker cancelled a consumer, consuming the log
without aio-pika's per-record wrapping, and taking its deliveries without a task per delivery.

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
from aiormq import spec
from aiormq.abc import AbstractChannel as UnderlayChannel
from aiormq.abc import DeliveredMessage
from pamqp.header import ContentHeader

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
        "aiormq.channel.Channel",
        why="aiormq runs every consumer callback in a task of its own (a task, a future-store "
        "entry and two done-callbacks per delivery); the log reader's deliveries are taken "
        "inline instead (`deliver_inline`)",
        methods={
            "_on_deliver_frame": ("frame",),
            "_get_frame": (),
            "_read_content": ("frame", "header"),
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


def deliver_inline(
    channel: UnderlayChannel, consumer_tag: str, take: Callable[[DeliveredMessage], None]
) -> None:
    """Hand the deliveries to `consumer_tag` on `channel` to `take`, called in the channel's
    reader, in delivery order, instead of in a task per delivery.

    aiormq's channel reader reads a `Basic.Deliver`'s content header and body frames and then
    starts a task for the consumer callback; for the log reader, whose callback only queues the
    delivery, that task cost 8-10 µs of about 52 µs per record taken in (tests/performance/
    README.md, "Inline deliveries, fuller batches, a raw in-process client"). This replaces the
    channel instance's `_on_deliver_frame` with one that reads the same frames the same way and
    calls `take` at once. Call it before `basic_consume` with the same tag, so no delivery goes
    the other way. Deliveries to any other consumer of the channel still go through aiormq's own
    handler. `take` must not raise: an exception would end the channel's reader, and the channel
    with it.
    """
    own = channel._on_deliver_frame  # type: ignore[attr-defined]
    get_frame = channel._get_frame  # type: ignore[attr-defined]
    read_content = channel._read_content  # type: ignore[attr-defined]

    async def on_deliver_frame(frame: spec.Basic.Deliver) -> None:
        if frame.consumer_tag != consumer_tag:
            await own(frame)
            return
        header = await get_frame()
        if not isinstance(header, ContentHeader):  # the check and error of aiormq's handler
            raise ValueError(f"unexpected frame {header!r} instead of a content header")  # noqa: TRY004
        take(await read_content(frame, header))

    channel._on_deliver_frame = on_deliver_frame  # type: ignore[attr-defined]
