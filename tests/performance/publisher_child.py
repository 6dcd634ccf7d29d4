"""The benchmark's publisher in a process of its own, so 100 receiving clients don't starve it.

Run by `bench_live` as `python -m tests.performance.publisher_child --prefix P --project X
--count N`. The child connects an `EventPublisher` and prints `ready`; on `go` (stdin) it builds
N `progress_update` envelopes (each `data` carrying `seq` and `sent_at`) and publishes them with
one `publish_batch`, then prints one JSON line: when it started and finished, and its CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from types import TracebackType
from typing import Any

import uvloop

from producers import EventPublisher
from schemas import Envelope, new_event_id, utc_now
from tests.performance.processes import die_with_parent


def bench_envelope(project: str, seq: int) -> Envelope:
    """A `progress_update` for `project` whose data carries `seq` and `sent_at` (extra fields)."""
    now = time.time()
    return Envelope(
        id=new_event_id(now),
        type="progress_update",
        schema_version=1,
        project_id=project,
        source="bench-live",
        occurred_at=utc_now(),
        data={
            "agent_id": "agent-1",
            "progress": 0.5,
            "stage": "benchmark",
            "sent_at": now,
            "seq": seq,
        },
    )


async def publish(amqp_url: str, prefix: str, project: str, count: int) -> None:
    """The child's work: connect, say `ready`, wait for `go`, publish, print the result."""
    async with EventPublisher(
        amqp_url,
        prefix=prefix,
        source="bench-live",
        connection_name="bench-live-publisher-child",
        retry_attempts=1,
        publish_timeout=30,
    ) as publisher:
        print("ready", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() != "go":
            return
        cpu_before = time.process_time()
        started = time.time()
        await publisher.publish_batch([bench_envelope(project, seq) for seq in range(count)])
        result = {
            "started": started,
            "published": time.time(),
            "cpu_seconds": time.process_time() - cpu_before,
        }
        print(json.dumps(result), flush=True)


class PublisherProcess:
    """Parent side: a publisher child, started and connected on entry, killed on exit.

    Args:
        amqp_url: the broker.
        prefix: the topology prefix of the bridge under test.
        project: the project the events belong to.
        count: how many events to publish.
    """

    def __init__(self, amqp_url: str, prefix: str, project: str, count: int) -> None:
        self._argv = [
            sys.executable,
            "-m",
            "tests.performance.publisher_child",
            "--amqp-url",
            amqp_url,
            "--prefix",
            prefix,
            "--project",
            project,
            "--count",
            str(count),
        ]
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> PublisherProcess:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            env=dict(os.environ),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        try:
            line = await self._line(timeout=30)
        except BaseException:
            await self._kill()
            raise
        if line != "ready":
            await self._kill()
            raise RuntimeError(f"the publisher child did not start: {line!r}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._kill()

    def go(self) -> None:
        """Tell the child to publish now."""
        if self._process is None or self._process.stdin is None:
            raise RuntimeError("the publisher child is not running")
        self._process.stdin.write(b"go\n")

    async def result(self, timeout: float) -> dict[str, Any]:
        """Wait for the child's result line: `started`, `published` and `cpu_seconds`."""
        line = await self._line(timeout)
        try:
            result: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise RuntimeError(f"the publisher child failed: {line!r}") from exc
        return result

    async def _line(self, timeout: float) -> str:
        if self._process is None or self._process.stdout is None:
            raise RuntimeError("the publisher child is not running")
        raw = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        return raw.decode(errors="replace").strip()

    async def _kill(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the publisher child process."""
    parser = argparse.ArgumentParser(description="benchmark publisher child")
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(publish(args.amqp_url, args.prefix, args.project, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
