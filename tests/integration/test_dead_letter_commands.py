"""`eventbridge dead-letters list | show | replay | purge`, run as operators run it."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import pty
import re
import signal
import sys
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue

from bridge.broker.topology import Names, declare_exchange
from tests.integration.conftest import RunningBridge, free_port
from tests.integration.test_dead_letters import INVALID, publish_raw

DEAD_LETTERS = [sys.executable, "-m", "bridge.cli.main", "dead-letters"]
REASON_HEADERS = (
    "x-eventbridge-reason",
    "x-eventbridge-error",
    "x-eventbridge-offset",
    "x-eventbridge-epoch",
    "x-eventbridge-routing-key",
)
SECOND_INVALID_JSON = ("project.p1.agent_status", b"\x00\xffnot json at all")


def environment(amqp_url: str, prefix: str) -> dict[str, str]:
    """The process environment pointing the CLI at this test's broker objects."""
    return {**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix}


async def dead_letters(
    amqp_url: str, prefix: str, *args: str, stdin: int | None = None
) -> tuple[int, str, str]:
    """Run `eventbridge dead-letters ...`; return its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *DEAD_LETTERS,
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(amqp_url, prefix),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def queue_state(connection: AbstractConnection, name: str) -> tuple[int, int]:
    """The (ready messages, consumers) of a queue right now."""
    async with connection.channel() as channel:
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def settled_count(connection: AbstractConnection, name: str) -> int:
    """The queue's ready count once no consumer holds messages of it any more."""
    state = (0, 1)

    async def probe() -> None:
        nonlocal state
        state = await queue_state(connection, name)

    for _ in range(500):
        await probe()
        if state[1] == 0:
            return state[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} still has a consumer")


async def produce_dead_letters(
    connection: AbstractConnection, prefix: str, messages: list[tuple[str, bytes]]
) -> None:
    """Publish invalid messages to the exchange; wait until the bridge dead-lettered them all."""
    for key, body in messages:
        await publish_raw(connection, prefix, key, body)
    count = 0

    async def poll() -> None:
        nonlocal count
        count, _ = await queue_state(connection, Names(prefix).dead_letters)

    for _ in range(250):
        await poll()
        if count >= len(messages):
            return
        await asyncio.sleep(0.04)
    raise AssertionError(f"only {count} of {len(messages)} messages were dead-lettered")


def every_kind() -> list[tuple[str, bytes]]:
    """One message of each dead-letter reason, plus a second `invalid_json`."""
    return [*INVALID.values(), SECOND_INVALID_JSON]


async def take_all(connection: AbstractConnection, name: str) -> list[AbstractIncomingMessage]:
    """Remove and return every message a queue holds."""
    taken = []
    async with connection.channel() as channel:
        queue = await channel.get_queue(name)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


def valid_event(number: int, project: str) -> tuple[str, bytes, str]:
    """A valid progress_update as (routing key, body, id)."""
    event_id = f"evt-{project}-{number:04d}"
    body = {
        "id": event_id,
        "type": "progress_update",
        "schema_version": 1,
        "project_id": project,
        "source": "tests",
        "occurred_at": "2026-11-26T12:00:00Z",
        "data": {"agent_id": "a", "progress": 0.5},
    }
    return f"project.{project}.progress_update", json.dumps(body).encode(), event_id


async def declare_topology(connection: AbstractConnection, prefix: str) -> AbstractQueue:
    """Declare the exchange and dead-letter queue as the bridge does, and an observer queue
    bound to the exchange with "#"; return the observer."""
    channel = await connection.channel()
    exchange = await declare_exchange(channel, prefix)
    await channel.declare_queue(Names(prefix).dead_letters, durable=True)
    observer = await channel.declare_queue(f"{prefix}.observer", exclusive=True)
    await observer.bind(exchange, routing_key="#")
    return observer


async def inject(
    connection: AbstractConnection, prefix: str, letters: list[tuple[str, str, bytes, str]]
) -> None:
    """Put (reason, routing key, body, id) dead letters straight into the queue, confirmed,
    with the headers the bridge's writer adds."""
    async with connection.channel(publisher_confirms=True) as channel:

        async def put(number: int, reason: str, key: str, body: bytes, event_id: str) -> None:
            headers: dict[str, Any] = {
                "x-eventbridge-reason": reason,
                "x-eventbridge-error": f"a {reason} problem",
                "x-eventbridge-offset": number,
                "x-eventbridge-epoch": "test-epoch",
                "x-eventbridge-routing-key": key,
                "x-producer-trace": "kept",
            }
            message = aio_pika.Message(
                body,
                headers=headers,
                message_id=event_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await channel.default_exchange.publish(message, routing_key=Names(prefix).dead_letters)

        for start in range(0, len(letters), 200):
            await asyncio.gather(
                *(
                    put(start + index, *letter)
                    for index, letter in enumerate(letters[start : start + 200])
                )
            )


def assert_redriven(message: AbstractIncomingMessage, key: str, body: bytes) -> None:
    """A re-driven message: original key, body, id and properties; reason headers gone."""
    headers = message.headers or {}
    assert message.routing_key == key
    assert message.body == body
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert headers["x-eventbridge-redriven"] is True
    assert headers["x-producer-trace"] == "kept"
    assert not set(REASON_HEADERS) & set(headers)


def counts_by_reason(listing: str) -> dict[str, int]:
    """The per-reason rows (and total) of `dead-letters list` output."""
    return {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^([a-z_]+)\s+(\d+)\s", listing, flags=re.MULTILINE)
    }


async def test_list_counts_each_reason_and_changes_nothing(
    bridge: RunningBridge, amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """`list` counts dead letters per reason with a total, and leaves every message in place."""
    await produce_dead_letters(amqp_connection, prefix, every_kind())
    name = Names(prefix).dead_letters

    code, out, err = await dead_letters(amqp_url, prefix, "list")
    assert code == 0, err
    assert counts_by_reason(out) == {
        "invalid_json": 2,
        "invalid_envelope": 1,
        "unknown_type": 1,
        "invalid_data": 1,
        "routing_key_mismatch": 1,
        "too_large": 1,
        "total": 7,
    }
    assert "the body is not UTF-8 JSON" in out
    code, out, err = await dead_letters(amqp_url, prefix, "list", "--project", "p2")
    assert code == 0, err
    assert counts_by_reason(out) == {"routing_key_mismatch": 1, "total": 1}

    assert await settled_count(amqp_connection, name) == 7
    remaining = await take_all(amqp_connection, name)
    assert sorted(m.body for m in remaining) == sorted(body for _, body in every_kind())


async def test_show_prints_only_the_selected_reason_with_headers_and_body(
    bridge: RunningBridge, amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """`show --reason invalid_json` prints those two messages with headers and body, nothing
    of the others, and removes nothing."""
    await produce_dead_letters(amqp_connection, prefix, every_kind())

    code, out, err = await dead_letters(amqp_url, prefix, "show", "--reason", "invalid_json")
    assert code == 0, err
    assert out.count("--- dead letter ") == 2
    assert out.count("reason       invalid_json") == 2
    assert "error        the body is not UTF-8 JSON" in out
    assert "routing key  project.p1.progress_update" in out
    assert "routing key  project.p1.agent_status" in out
    assert "message id   raw" in out
    assert re.search(r"offset       \d+ \(epoch \w+\)", out)
    assert repr(INVALID["invalid_json"][1]) in out
    assert repr(SECOND_INVALID_JSON[1]) in out
    for other in set(INVALID) - {"invalid_json"}:
        assert other not in out
    assert '"blob"' not in out  # the too_large body
    assert await settled_count(amqp_connection, Names(prefix).dead_letters) == 7


async def test_replay_killed_halfway_then_rerun_loses_nothing_and_empties_the_queue(
    amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """`replay` of 1,000 dead letters, SIGKILLed after >= 300 and run again: every message id
    reaches the exchange (a duplicate at most for the one in hand) and the queue ends empty."""
    observer = await declare_topology(amqp_connection, prefix)
    events = [valid_event(number, f"p{number % 7}") for number in range(1000)]
    reasons = ["invalid_data", "unknown_type", "routing_key_mismatch"]
    await inject(
        amqp_connection,
        prefix,
        [(reasons[n % 3], key, body, event_id) for n, (key, body, event_id) in enumerate(events)],
    )
    name = Names(prefix).dead_letters

    process = await asyncio.create_subprocess_exec(
        *DEAD_LETTERS,
        "replay",
        "--rate",
        "500",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(amqp_url, prefix),
    )
    try:
        assert process.stdout is not None
        done = 0
        while done < 300:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "replay ended before reporting 300 republished"
            if match := re.match(r"progress: (\d+) republished", line):
                done = int(match.group(1))
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    left = await settled_count(amqp_connection, name)
    assert 0 < left <= 1000 - done, "the first run was not stopped half-way"

    code, out, err = await dead_letters(amqp_url, prefix, "replay")
    assert code == 0, err
    assert re.search(rf"republished {left} dead letters? ", out)
    assert await settled_count(amqp_connection, name) == 0

    received = await take_all(amqp_connection, observer.name)
    ids = collections.Counter(m.message_id for m in received)
    duplicates = len(received) - len(ids)
    assert set(ids) == {event_id for _, _, event_id in events}
    assert duplicates <= 1, f"{duplicates} duplicates: more than the message in hand at the kill"
    originals = {event_id: (key, body) for key, body, event_id in events}
    for message in received:
        assert_redriven(message, *originals[str(message.message_id)])


async def test_replay_with_filters_republishes_only_matches_and_leaves_the_rest(
    amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """`replay --reason R --project P` re-drives exactly the matching dead letters; `--limit`
    caps them; every other message stays in the queue."""
    observer = await declare_topology(amqp_connection, prefix)
    letters = []
    for number in range(12):
        key, body, event_id = valid_event(number, ("p1", "p2")[number % 2])
        letters.append(
            (("invalid_data", "unknown_type", "too_large")[number % 3], key, body, event_id)
        )
    await inject(amqp_connection, prefix, letters)
    wanted = [
        event_id
        for reason, key, _, event_id in letters
        if reason in {"invalid_data", "too_large"} and key.startswith("project.p1.")
    ]
    assert len(wanted) == 4

    filters = ("--reason", "invalid_data", "--reason", "too_large", "--project", "p1")
    code, out, err = await dead_letters(amqp_url, prefix, "replay", *filters, "--limit", "3")
    assert code == 0, err
    assert "republished 3 dead letters" in out
    code, out, err = await dead_letters(amqp_url, prefix, "replay", *filters)
    assert code == 0, err
    assert "republished 1 dead letter " in out

    received = await take_all(amqp_connection, observer.name)
    assert sorted(str(m.message_id) for m in received) == sorted(wanted)
    for message in received:
        [(key, body)] = [(k, b) for _, k, b, i in letters if i == message.message_id]
        assert_redriven(message, key, body)
    left = await take_all(amqp_connection, Names(prefix).dead_letters)
    assert sorted(str(m.message_id) for m in left) == sorted(
        event_id for *_, event_id in letters if event_id not in wanted
    )
    assert all(m.headers and m.headers["x-eventbridge-reason"] for m in left)


async def test_replay_stops_cleanly_on_ctrl_c(
    amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """Ctrl-C during `replay` exits 130 after the message in hand: what it reports republished
    reached the exchange exactly once and left the queue; the rest is still there."""
    observer = await declare_topology(amqp_connection, prefix)
    events = [valid_event(number, "p1") for number in range(300)]
    await inject(amqp_connection, prefix, [("invalid_data", *event) for event in events])
    process = await asyncio.create_subprocess_exec(
        *DEAD_LETTERS,
        "replay",
        "--rate",
        "200",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(amqp_url, prefix),
    )
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert first.startswith(b"progress: 100 republished"), first
        process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, err
    match = re.search(r"republished (\d+) dead letter", rest.decode())
    assert match, rest
    republished = int(match.group(1))
    assert 100 <= republished < 300
    assert "stay in the queue" in err.decode()
    received = await take_all(amqp_connection, observer.name)
    assert len(received) == len({m.message_id for m in received}) == republished
    assert await settled_count(amqp_connection, Names(prefix).dead_letters) == 300 - republished


async def test_purge_refuses_without_yes_off_a_terminal_then_removes_only_matches(
    bridge: RunningBridge, amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """`purge` without --yes and without a TTY exits 2 and removes nothing; `purge --yes
    --reason invalid_json` removes exactly the two invalid_json dead letters."""
    await produce_dead_letters(amqp_connection, prefix, every_kind())
    name = Names(prefix).dead_letters

    code, out, err = await dead_letters(amqp_url, prefix, "purge")
    assert code == 2
    assert "--yes" in err
    assert "Traceback" not in err
    assert await settled_count(amqp_connection, name) == 7

    code, out, err = await dead_letters(
        amqp_url, prefix, "purge", "--yes", "--reason", "invalid_json"
    )
    assert code == 0, err
    assert "removed 2 dead letters" in out
    left = await take_all(amqp_connection, name)
    assert sorted(str((m.headers or {})["x-eventbridge-reason"]) for m in left) == sorted(
        set(INVALID) - {"invalid_json"}
    )


async def test_purge_on_a_terminal_asks_and_removes_only_after_yes(
    amqp_connection: AbstractConnection, amqp_url: str, prefix: str
) -> None:
    """On a TTY, `purge` asks "Remove N dead letters? [y/N]": "n" keeps them, "y" removes."""
    await declare_topology(amqp_connection, prefix)
    letters = [("invalid_data", *valid_event(number, "p1")) for number in range(5)]
    await inject(amqp_connection, prefix, letters)
    name = Names(prefix).dead_letters

    for answer, expected_left in ((b"n\n", 5), (b"y\n", 0)):
        controller, terminal = pty.openpty()
        try:
            os.write(controller, answer)
            code, out, err = await dead_letters(amqp_url, prefix, "purge", stdin=terminal)
        finally:
            os.close(terminal)
            os.close(controller)
        assert code == 0, err
        assert "Remove 5 dead letters? [y/N]" in out
        assert await settled_count(amqp_connection, name) == expected_left


async def test_unreachable_broker_and_missing_queue_fail_with_one_sentence(
    amqp_url: str, prefix: str
) -> None:
    """No broker, or no dead-letter queue yet: exit 1 with one line that says what to do."""
    code, _, err = await dead_letters(
        f"amqp://guest:guest@127.0.0.1:{free_port()}/", prefix, "list"
    )
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "cannot reach RabbitMQ" in err
    code, _, err = await dead_letters(amqp_url, prefix, "show")
    assert code == 1
    assert err.strip() == (
        f"eventbridge dead-letters show: no dead-letter queue {prefix}.dead-letters: "
        "start the bridge once"
    )
