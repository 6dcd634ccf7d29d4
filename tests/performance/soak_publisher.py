"""The soak benchmark's publisher, in a process of its own so the receiving side cannot slow it.

    python -m tests.performance.soak_publisher --amqp-url URL[,URL...] --prefix P \\
        --projects soak-0,soak-1 --rate 300 --seconds 1200

It publishes `--rate` events/s spread over the projects with the SDK (`publish_batch` every
0.1 s, confirms, failover over the node list), each event's data carrying its project's `seq`
(from 0) and the time it was built (`sent_at`). After each batch it prints one JSON line:
`next_seq` per project (every lower seq has settled) and the `(project, seq)` pairs of that
batch whose publish raised (in doubt: they may or may not be in the log), with the error. It
ends with `{"done": true}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import uvloop

from producers import BatchPublishError, EventPublisher, PublishError
from tests.performance.publisher_child import bench_envelope


async def publish(urls: str, prefix: str, projects: list[str], rate: float, seconds: float) -> None:
    """Publish for `seconds`, printing one line per batch."""
    next_seq = dict.fromkeys(projects, 0)
    async with EventPublisher(
        urls, prefix=prefix, source="bench-soak", publish_timeout=15, retry_attempts=10
    ) as publisher:
        started, sent = time.monotonic(), 0
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * rate) - sent
            if due > 0:
                batch = []
                for n in range(due):
                    project = projects[(sent + n) % len(projects)]
                    seq = next_seq[project]
                    batch.append((project, seq, bench_envelope(project, seq)))
                    next_seq[project] = seq + 1
                sent += due
                line = await _send(publisher, batch)
                print(json.dumps({"next_seq": next_seq, **line}), flush=True)
            await asyncio.sleep(0.1)
    print(json.dumps({"done": True}), flush=True)


async def _send(publisher: EventPublisher, batch: list[tuple[str, int, Any]]) -> dict[str, Any]:
    """Publish one batch; what was in doubt, and why."""
    by_id = {envelope.id: (project, seq) for project, seq, envelope in batch}
    try:
        await publisher.publish_batch([envelope for _, _, envelope in batch])
    except BatchPublishError as exc:
        return {"in_doubt": [by_id[event_id] for event_id in exc.failed], "error": str(exc)[:300]}
    except PublishError as exc:
        return {"in_doubt": list(by_id.values()), "error": str(exc)[:300]}
    return {"in_doubt": [], "error": None}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the publisher process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--projects", required=True, help="comma-separated")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    uvloop.run(
        publish(args.amqp_url, args.prefix, args.projects.split(","), args.rate, args.seconds)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
