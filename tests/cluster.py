"""A private 3-node RabbitMQ cluster for tests, driven through `scripts/cluster.sh`.

The script owns the nodes (their files, ports and processes) and writes `cluster.env` in the
cluster's directory; this module reads that file and asks the script to start, stop and kill
nodes, so a cluster started by hand (`scripts/cluster.sh start`) and one started by a test
session are the same thing. Nodes are numbered 1 to 3, like their names (`ebc1@localhost`, ...).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "cluster.sh"
DEFAULT_DIRECTORY = Path("/tmp/eventbridge-cluster")
SIZE = 3

AlarmKind = Literal["memory", "disk"]

_SCRIPT_PREFIX = re.compile(r"^cluster: \[[0-9:]+\] ")

# How each alarm is raised and cleared with rabbitmqctl, and how `rabbitmq-diagnostics alarms`
# names it. A watermark of a millionth of the memory, or a free-disk limit of a petabyte, is
# exceeded at once; clearing restores RabbitMQ's defaults, which the nodes run with.
_ALARMS: dict[AlarmKind, tuple[list[str], list[str], str]] = {
    "memory": (
        ["set_vm_memory_high_watermark", "0.000001"],
        ["set_vm_memory_high_watermark", "0.4"],
        "Memory alarm on node",
    ),
    "disk": (
        ["set_disk_free_limit", "1000000GB"],
        ["set_disk_free_limit", "50MB"],
        "Free disk space alarm on node",
    ),
}


class ClusterError(RuntimeError):
    """A cluster operation failed; the message says which and what the script or tool said."""


@dataclass
class PrivateCluster:
    """Three RabbitMQ nodes on free local ports, apart from the machine's broker.

    Args:
        directory: where the script keeps the cluster's state (`EVENTBRIDGE_CLUSTER_DIR`).
        name: the node name stem (`EVENTBRIDGE_CLUSTER_NAME`; `ebc` gives `ebc1@localhost`).
    """

    directory: Path = DEFAULT_DIRECTORY
    name: str = "ebc"
    _down: set[int] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> PrivateCluster:
        """The cluster that `EVENTBRIDGE_CLUSTER_DIR` / `_NAME` name, else the default one."""
        return cls(
            Path(os.environ.get("EVENTBRIDGE_CLUSTER_DIR", str(DEFAULT_DIRECTORY))),
            os.environ.get("EVENTBRIDGE_CLUSTER_NAME", "ebc"),
        )

    # --- what the script wrote ------------------------------------------------------------------

    @property
    def env_file(self) -> Path:
        """The `cluster.env` the script writes once the cluster has formed."""
        return self.directory / "cluster.env"

    def _env(self) -> dict[str, str]:
        try:
            text = self.env_file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ClusterError(f"no cluster in {self.directory}: start() it first") from exc
        env: dict[str, str] = {}
        for line in text.splitlines():
            key, equals, value = line.partition("=")
            if equals:
                env[key] = value
        return env

    @property
    def urls(self) -> list[str]:
        """The AMQP URL of each node, node 1 first."""
        return self._env()["EVENTBRIDGE_CLUSTER_URLS"].split(",")

    @property
    def node_names(self) -> list[str]:
        """The Erlang node name of each node, node 1 first."""
        return self._env()["EVENTBRIDGE_CLUSTER_NODES"].split(",")

    def url_of(self, node: int) -> str:
        """The AMQP URL of node `node` (1 to 3)."""
        return self.urls[self._index(node)]

    def name_of(self, node: int) -> str:
        """The Erlang node name of node `node` (1 to 3)."""
        return self.node_names[self._index(node)]

    def number_of(self, node_name: str) -> int:
        """The number (1 to 3) of the node called `node_name`."""
        return self.node_names.index(node_name) + 1

    @staticmethod
    def _index(node: int) -> int:
        if not 1 <= node <= SIZE:
            raise ValueError(f"no node {node}: nodes are numbered 1 to {SIZE}")
        return node - 1

    # --- the whole cluster ----------------------------------------------------------------------

    async def is_running(self) -> bool:
        """Whether the cluster exists and all three nodes run."""
        if not self.env_file.is_file():
            return False
        code, _ = await self._script("status", check=False)
        return code == 0

    async def start(self) -> None:
        """Start the cluster (about 15 s), or do nothing if it already runs."""
        await self._script("start")
        self._down.clear()

    async def stop(self) -> None:
        """Stop every node of the cluster and delete its directory."""
        await self._script("stop")

    async def stop_all(self) -> None:
        """Stop the three nodes gracefully, one after the other; their data stays."""
        await self._script("stop-node", *(str(node) for node in range(1, SIZE + 1)))
        self._down.update(range(1, SIZE + 1))

    async def start_all(self) -> None:
        """Start the three nodes together and wait until they run as one cluster again.

        RabbitMQ 3.10 nodes wait at boot for the peers they last saw running, so the nodes of a
        stopped cluster start together, not one by one.
        """
        await self._script("start-node", *(str(node) for node in range(1, SIZE + 1)))
        self._down.clear()

    # --- one node -------------------------------------------------------------------------------

    async def stop_node(self, node: int) -> None:
        """Stop node `node` gracefully; returns once its Erlang VM has exited."""
        self._index(node)
        await self._script("stop-node", str(node))
        self._down.add(node)

    async def start_node(self, node: int) -> None:
        """Start node `node` again, as it was configured; returns once it runs in the cluster."""
        self._index(node)
        await self._script("start-node", str(node))
        self._down.discard(node)

    async def kill_node(self, node: int) -> None:
        """SIGKILL node `node`'s Erlang VM; returns once the process is gone."""
        self._index(node)
        await self._script("kill-node", str(node))
        self._down.add(node)

    # --- queries and alarms ---------------------------------------------------------------------

    async def ctl(self, node: int, *args: str) -> str:
        """Run `rabbitmqctl -q ARGS` against node `node`; return its output."""
        self._index(node)
        _, output = await self._script("ctl", str(node), "-q", *args)
        return output

    async def diagnostics(self, node: int, *args: str) -> str:
        """Run `rabbitmq-diagnostics -q ARGS` against node `node`; return its output."""
        self._index(node)
        _, output = await self._script("diagnostics", str(node), "-q", *args)
        return output

    async def queue_info(self, queue: str) -> dict[str, Any]:
        """A queue's `type`, `leader`, `members` and `online` members, asked of a running node."""
        failures: list[str] = []
        for node in self._running():
            try:
                output = await self.ctl(
                    node, "list_queues", "name", "type", "leader", "members", "online",
                    "--formatter", "json",
                )  # fmt: skip
            except ClusterError as exc:
                failures.append(str(exc))
                continue
            for row in json.loads(output):
                if row["name"] == queue:
                    return dict(row)
            raise ClusterError(f"no queue {queue!r} in the cluster")
        raise ClusterError(f"no node answered about {queue!r}: {'; '.join(failures)}")

    async def leader(self, queue: str) -> int:
        """The number of the node that leads the stream or quorum queue `queue`."""
        return self.number_of(str((await self.queue_info(queue))["leader"]))

    async def members(self, queue: str) -> list[int]:
        """The numbers of the nodes that hold a replica of the stream or quorum queue `queue`."""
        return sorted(self.number_of(name) for name in (await self.queue_info(queue))["members"])

    async def alarm(self, node: int, kind: AlarmKind) -> None:
        """Raise a memory or disk alarm on node `node`; returns once every running node knows.

        Either alarm blocks every publishing connection of the cluster, on every node, until
        cleared (consumers go on).
        """
        raise_args, _, label = _ALARMS[kind]
        await self.ctl(node, *raise_args)
        await self._await_alarm(f"{label} {self.name_of(node)}", present=True)

    async def clear_alarm(self, node: int, kind: AlarmKind) -> None:
        """Clear the alarm `alarm()` raised; returns once no running node reports it."""
        _, clear_args, label = _ALARMS[kind]
        await self.ctl(node, *clear_args)
        await self._await_alarm(f"{label} {self.name_of(node)}", present=False)

    async def _await_alarm(self, alarm: str, *, present: bool, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for node in self._running():
            while True:
                report = json.loads(await self.diagnostics(node, "alarms", "--formatter", "json"))
                alarms = [*report.get("global", []), *report.get("local", [])]
                alarms += [str(entry) for entry in report.get("alarms", [])]
                if (alarm in alarms) == present:
                    break
                if loop.time() > deadline:
                    state = "raised" if present else "cleared"
                    raise ClusterError(f"node {node} does not see {alarm!r} {state}: {alarms}")
                await asyncio.sleep(0.2)

    def _running(self) -> list[int]:
        return [node for node in range(1, SIZE + 1) if node not in self._down]

    async def _script(self, *args: str, check: bool = True) -> tuple[int, str]:
        """Run scripts/cluster.sh ARGS for this cluster; (exit code, stdout)."""
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            *args,
            env={
                **os.environ,
                "EVENTBRIDGE_CLUSTER_DIR": str(self.directory),
                "EVENTBRIDGE_CLUSTER_NAME": self.name,
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        code = process.returncode
        assert code is not None
        if check and code != 0:
            # The script's lines read "cluster: [time] what happened", its last one why it
            # failed; rabbitmqctl and rabbitmq-diagnostics explain over a few lines.
            lines = [
                _SCRIPT_PREFIX.sub("", line).strip()
                for line in err.decode(errors="replace").splitlines()
            ]
            keep = 3 if args[0] in ("ctl", "diagnostics") else 1
            said = " | ".join([line for line in lines if line][-keep:]) or "(nothing on stderr)"
            raise ClusterError(f"`scripts/cluster.sh {' '.join(args)}` failed: {said}")
        return code, out.decode(errors="replace")
