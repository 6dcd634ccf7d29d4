"""`eventbridge topology`: an earlier deployment's classic queues are refused with the command
that migrates them, the migration loses no dead letter even when killed half-way, and delete
removes a prefix's objects only once confirmed and while no bridge reads them."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys

import aio_pika
import httpx
from aio_pika.abc import AbstractRobustConnection

from tests.integration.conftest import free_port, serve_process, wait_ready

EVENTBRIDGE = [sys.executable, "-m", "bridge.cli.main"]
LETTERS = 1000


async def eventbridge(
    *args: str, amqp_url: str, prefix: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run an `eventbridge` command to its end: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def earlier_deployment(connection: AbstractRobustConnection, prefix: str) -> None:
    """What an earlier eventbridge left: the log stream, and classic queues with dead letters,
    an epoch and a checkpoint in them."""
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(f"{prefix}.log", durable=True, arguments={"x-queue-type": "stream"})
    single = {"x-max-length": 1, "x-overflow": "drop-head"}
    await channel.declare_queue(f"{prefix}.dead-letters", durable=True)
    for name in (f"{prefix}.epoch", f"{prefix}.checkpoint"):
        await channel.declare_queue(name, durable=True, arguments=single)
    await channel.default_exchange.publish(
        aio_pika.Message(b"epoch-of-old"), routing_key=f"{prefix}.epoch"
    )
    await channel.default_exchange.publish(
        aio_pika.Message(b"epoch-of-old:41"), routing_key=f"{prefix}.checkpoint"
    )
    for number in range(LETTERS):
        await channel.default_exchange.publish(
            aio_pika.Message(
                b"not json",
                message_id=f"letter-{number}",
                headers={"x-eventbridge-reason": "invalid_json", "x-eventbridge-offset": number},
            ),
            routing_key=f"{prefix}.dead-letters",
        )
    await channel.close()


async def queue_kind(connection: AbstractRobustConnection, name: str) -> str:
    """`classic` or `quorum`: declared again as a quorum queue, a classic one is refused."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(
            name,
            durable=True,
            arguments={"x-queue-type": "quorum"}
            if name.endswith("dead-letters")
            else {"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "drop-head"},
        )
    except aio_pika.exceptions.ChannelPreconditionFailed:
        return "classic"
    await channel.close()
    return "quorum"


async def stored_ids(connection: AbstractRobustConnection, name: str) -> list[str]:
    """The message ids in a queue, read and put back."""
    channel = await connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    ids: list[str] = []
    messages = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        ids.append(message.message_id or "")
        messages.append(message)
    for message in messages:
        await message.nack(requeue=True)
    await channel.close()
    return ids


async def test_serve_refuses_classic_queues_naming_the_migration(
    amqp_url: str, prefix: str, amqp_connection: AbstractRobustConnection
) -> None:
    """A prefix with an earlier version's classic queues: serve exits 1 with one sentence that
    names the queues and the command to run."""
    await earlier_deployment(amqp_connection, prefix)
    async with serve_process(amqp_url, prefix, free_port()) as process:
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    line = stderr.decode().strip().splitlines()[-1]
    assert process.returncode == 1
    assert f"{prefix}.dead-letters" in line
    assert f"eventbridge topology migrate --prefix {prefix}" in line


async def test_a_migration_killed_half_way_then_run_again_loses_no_dead_letter(
    amqp_url: str, prefix: str, amqp_connection: AbstractRobustConnection
) -> None:
    """1,000 dead letters in a classic queue: the migration is SIGKILLed while it moves them,
    run again, and ends with quorum queues holding every dead letter (at least once), the
    epoch and the checkpoint; then the bridge starts on it and keeps the epoch."""
    await earlier_deployment(amqp_connection, prefix)
    process = await asyncio.create_subprocess_exec(
        *EVENTBRIDGE,
        "topology",
        "migrate",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
    )
    assert process.stdout is not None
    while line := await asyncio.wait_for(process.stdout.readline(), 60):
        if b"dead-letters: classic" in line:
            break
    holding = f"{prefix}.dead-letters.migrating"

    async def moving() -> bool:
        channel = await amqp_connection.channel()
        try:
            queue = await channel.declare_queue(holding, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        await channel.close()
        return (queue.declaration_result.message_count or 0) > 100

    for _ in range(400):
        if await moving():
            break
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    code, out, err = await eventbridge("topology", "migrate", amqp_url=amqp_url, prefix=prefix)
    assert code == 0, out + err
    assert "migrated to quorum queues" in out
    for name in ("dead-letters", "epoch", "checkpoint"):
        assert await queue_kind(amqp_connection, f"{prefix}.{name}") == "quorum"
    ids = await stored_ids(amqp_connection, f"{prefix}.dead-letters")
    assert set(ids) == {f"letter-{number}" for number in range(LETTERS)}
    print(f"\n  {len(ids)} dead letters after the migration ({len(ids) - LETTERS} copied twice)")
    code, out, _ = await eventbridge("topology", "migrate", amqp_url=amqp_url, prefix=prefix)
    assert (code, "nothing to migrate" in out) == (0, True)
    port = free_port()
    async with serve_process(amqp_url, prefix, port), httpx.AsyncClient() as http:
        await wait_ready(port)
        health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
    assert health["log"]["epoch"] == "epoch-of-old"


async def test_delete_needs_confirmation_then_removes_every_object(
    amqp_url: str, prefix: str, amqp_connection: AbstractRobustConnection
) -> None:
    """Off a terminal `topology delete` refuses without --yes and removes nothing; with --yes it
    removes the log, the queues and the exchange, and `show` then lists none of them."""
    port = free_port()
    async with serve_process(amqp_url, prefix, port) as process:
        await wait_ready(port)
        process.send_signal(signal.SIGTERM)
        await process.wait()
    code, _, err = await eventbridge("topology", "delete", amqp_url=amqp_url, prefix=prefix)
    assert code == 2
    assert "add --yes" in err
    code, out, _ = await eventbridge("topology", "show", amqp_url=amqp_url, prefix=prefix)
    assert f"{prefix}.log" in out
    assert "stream" in out
    assert "quorum queue" in out
    code, out, err = await eventbridge(
        "topology", "delete", "--yes", amqp_url=amqp_url, prefix=prefix
    )
    assert code == 0, err
    assert f"{prefix}.log" in out
    code, out, _ = await eventbridge("topology", "show", amqp_url=amqp_url, prefix=prefix)
    assert out.count("does not exist") == 6, out


async def stopped_bridge_left(amqp_url: str, prefix: str) -> None:
    """Run `eventbridge serve` until ready, then stop it: the prefix's objects stay behind."""
    port = free_port()
    async with serve_process(amqp_url, prefix, port) as process:
        await wait_ready(port)
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def test_delete_refuses_while_a_bridge_consumes_unless_forced(
    amqp_url: str, prefix: str
) -> None:
    """While a bridge reads the prefix, `topology delete --yes` lists the objects, refuses
    (exit 1) naming --force and deletes nothing; with --force it deletes them all (the bridge
    then declares its topology afresh)."""
    port = free_port()
    async with serve_process(amqp_url, prefix, port):
        await wait_ready(port)
        code, out, err = await eventbridge(
            "topology", "delete", "--yes", amqp_url=amqp_url, prefix=prefix
        )
        assert code == 1, err
        assert f"{prefix}.log" in out
        assert f"{prefix}.events" in out
        assert "a bridge of it is probably running" in err
        assert "--force" in err
        code, out, _ = await eventbridge("topology", "show", amqp_url=amqp_url, prefix=prefix)
        assert "does not exist" not in out
        code, out, err = await eventbridge(
            "topology", "delete", "--yes", "--force", amqp_url=amqp_url, prefix=prefix
        )
        assert code == 0, err
        assert "deleting anyway (--force)" in err
        assert f"deleted {prefix}.log, " in out


async def delete_on_a_terminal(amqp_url: str, prefix: str, answer: str) -> tuple[int, str]:
    """Run `topology delete` with a terminal as stdin, typing `answer`; exit status and
    stdout."""
    leader, follower = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            *EVENTBRIDGE,
            "topology",
            "delete",
            stdin=follower,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix},
        )
        os.write(leader, f"{answer}\n".encode())
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        os.close(leader)
        os.close(follower)
    assert process.returncode is not None, err
    return process.returncode, out.decode()


async def test_delete_on_a_terminal_lists_the_objects_and_asks_for_the_prefix(
    amqp_url: str, prefix: str
) -> None:
    """On a terminal, delete lists what it would remove and asks for the prefix: another answer
    deletes nothing, the prefix deletes everything and says what."""
    await stopped_bridge_left(amqp_url, prefix)
    code, out = await delete_on_a_terminal(amqp_url, prefix, "no")
    assert code == 0
    assert f"{prefix}.dead-letters  queue, 0 messages" in out
    assert f"Type the prefix ({prefix})" in out
    assert out.rstrip().endswith("nothing deleted")
    code, out, _ = await eventbridge("topology", "show", amqp_url=amqp_url, prefix=prefix)
    assert "does not exist" not in out
    code, out = await delete_on_a_terminal(amqp_url, prefix, prefix)
    assert code == 0
    assert f"deleted {prefix}.log, {prefix}.snapshots, " in out
    assert out.rstrip().endswith(f"{prefix}.events")
    code, out, _ = await eventbridge(
        "topology", "delete", "--yes", amqp_url=amqp_url, prefix=prefix
    )
    assert (code, out) == (
        0,
        f"nothing to delete: prefix {prefix!r} has no object on this broker\n",
    )


async def test_delete_refuses_when_it_cannot_count_the_log_readers(
    amqp_url: str, prefix: str
) -> None:
    """Where rabbitmqctl cannot be asked (RabbitMQ 3.10 reports no stream consumers over AMQP),
    delete cannot rule out a running bridge: it refuses naming --force, which then deletes."""
    await stopped_bridge_left(amqp_url, prefix)
    no_rabbitmqctl = {**os.environ, "PATH": "/nonexistent"}
    command = [*EVENTBRIDGE, "topology", "delete", "--yes"]
    env = {**no_rabbitmqctl, "EVENTBRIDGE_AMQP_URL": amqp_url, "EVENTBRIDGE_PREFIX": prefix}
    for extra, expected in (([], 1), (["--force"], 0)):
        process = await asyncio.create_subprocess_exec(
            *command,
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == expected, err.decode()
        assert "cannot tell whether a bridge reads" in err.decode()
    assert f"deleted {prefix}.log" in out.decode()
