"""Simulated agents, workflows and deployments that publish a realistic demo event stream.

Each demo project is a small state machine: a generator of `Step`s (which `EventPublisher`
helper to call, and with what) that interleaves several tracks — one lifecycle per agent
(queued → running → progress → generation_complete + succeeded, or error + failed, then queued
again), a review workflow, terraform-like deployments with their log lines, and activity-feed
entries. `run_demo` draws from these generators and publishes at a steady rate.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from producers.publisher import EventPublisher, PublishedEvent
from schemas import is_valid_project_id

log = logging.getLogger(__name__)

Helper = Literal[
    "agent_status",
    "progress_update",
    "generation_complete",
    "error",
    "activity_created",
    "step_updated",
    "step_completed",
    "deployment_status",
    "deployment_log",
]

DEFAULT_PROJECTS = ("demo-web", "demo-data", "demo-infra")
AGENT_FAILURE_RATE = 0.15
DEPLOYMENT_FAILURE_RATE = 0.2
GLOBAL_ACTIVITY_SHARE = 0.03
MAX_LAG = 1.0
"""Seconds the pacing may fall behind before it re-anchors instead of bursting to catch up."""

_AGENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "terraform-planner": (("main.tf", "terraform"), ("variables.tf", "terraform")),
    "k8s-manifest-writer": (("deployment.yaml", "kubernetes/Deployment"),),
    "cost-estimator": (("cost-estimate.json", "report/cost"),),
    "security-scanner": (("findings.sarif", "report/sarif"),),
}
_STAGES = ("analyzing", "generating", "validating")
_AGENT_ERRORS = (
    ("PROVIDER_TIMEOUT", True, "the cloud provider API did not answer within 30 s"),
    ("RATE_LIMITED", True, "the model endpoint is rate limited; retry in a few seconds"),
    ("INVALID_PLAN", False, "the plan references an undeclared variable: var.region"),
)
_PEOPLE = ("alice", "bob", "carol", "dmitri")
_ACTIONS = (
    ("generated", "generation"),
    ("approved", "review"),
    ("commented", "comment"),
    ("requested changes", "review"),
    ("deployed", "deployment"),
)
_TARGETS = ("main.tf", "deployment.yaml", "network module", "staging environment", "cost report")
_PRIORITIES = ("low", "normal", "high", "critical")
_WORKFLOW_STEPS = ("requirements", "architecture", "generate-iac", "security-review", "approve")
_COMMENTS = ("use t3.medium for the workers", "tag every resource with owner", "looks good")
_RESOURCES = (
    ("aws_vpc.main", "vpc"),
    ("aws_subnet.private[0]", "subnet"),
    ("aws_security_group.web", "sg"),
    ("aws_iam_role.node", "role"),
    ("aws_eks_cluster.this", "eks"),
    ("aws_db_instance.primary", "db"),
    ("aws_s3_bucket.artifacts", "bucket"),
)
_APPLY_ERRORS = (
    "api error RequestLimitExceeded: Request limit exceeded.",
    "api error UnauthorizedOperation: You are not authorized to perform this operation.",
)


class Step(NamedTuple):
    """One event to publish: the `EventPublisher` helper, the project (None: global), its data."""

    helper: Helper
    project_id: str | None
    kwargs: dict[str, Any]


@dataclass
class DemoStats:
    """What a demo run published.

    Attributes:
        published: How many events the broker confirmed.
        by_type: How many of each event type.
    """

    published: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def _agent(project: str, agent: str, rng: random.Random) -> Iterator[Step]:
    """One agent's lifecycle, forever: queued, running, progress, then success or failure."""
    ident = {"agent_id": agent}
    while True:
        generation_id = f"gen-{rng.getrandbits(32):08x}"
        yield Step("agent_status", project, {**ident, "status": "queued"})
        yield Step("agent_status", project, {**ident, "status": "running"})
        updates = rng.randint(3, 6)
        fail_at = rng.randint(1, updates - 1) if rng.random() < AGENT_FAILURE_RATE else None
        for i in range(1, updates + 1):
            # Strictly rising: the i-th value lies in ((i - 0.5) / n, i / n]; the last is 1.0.
            progress = 1.0 if i == updates else round((i - rng.random() / 2) / updates, 3)
            stage = _STAGES[(i - 1) * len(_STAGES) // updates]
            yield Step("progress_update", project, {**ident, "progress": progress, "stage": stage})
            if i == fail_at:
                code, retryable, message = rng.choice(_AGENT_ERRORS)
                error = {"code": code, "message": message, "retryable": retryable}
                yield Step("error", project, {**ident, **error})
                yield Step("agent_status", project, {**ident, "status": "failed", "message": code})
                break
        else:
            artifacts = [
                {"name": name, "kind": kind, "uri": f"s3://iac/{project}/{generation_id}/{name}"}
                for name, kind in _AGENTS[agent]
            ]
            summary = f"{agent} produced {len(artifacts)} artifact(s)"
            done = {"generation_id": generation_id, "artifacts": artifacts, "summary": summary}
            yield Step("generation_complete", project, {**ident, **done})
            yield Step("agent_status", project, {**ident, "status": "succeeded"})


def _workflow(project: str, rng: random.Random) -> Iterator[Step]:
    """A review workflow, forever: each step is assigned, maybe commented on, then completed."""
    for run in itertools.count(1):
        workflow_id = f"wf-{project}-{run}"
        for step_id in _WORKFLOW_STEPS:
            user = rng.choice(_PEOPLE)
            ident = {"workflow_id": workflow_id, "step_id": step_id, "user_id": user}
            assigned = {"status": "in_progress", "changes": {"assignee": user}}
            yield Step("step_updated", project, {**ident, **assigned})
            if rng.random() < 0.5:
                commented = {"status": "in_review", "changes": {"comment": rng.choice(_COMMENTS)}}
                yield Step("step_updated", project, {**ident, **commented})
            result = {"approved": True, "duration_s": rng.randint(30, 900)}
            yield Step("step_completed", project, {**ident, "result": result})


def _deploy_log(project: str, deployment_id: str, line: str, stream: str = "stdout") -> Step:
    data = {"deployment_id": deployment_id, "stream": stream, "line": line}
    return Step("deployment_log", project, data)


def _deploy_status(
    project: str, deployment_id: str, state: str, progress: float, message: str | None = None
) -> Step:
    data = {"deployment_id": deployment_id, "status": state, "progress": round(progress, 3)}
    return Step("deployment_status", project, {**data, "message": message})


def _deployment(project: str, rng: random.Random) -> Iterator[Step]:
    """Terraform-like deployments, forever: pending, in_progress with log lines, then an end."""
    for run in itertools.count(1):
        dep = f"dep-{project}-{run}"
        resources = rng.sample(_RESOURCES, k=rng.randint(3, 5))
        fail_at = rng.randrange(len(resources)) if rng.random() < DEPLOYMENT_FAILURE_RATE else None
        yield _deploy_status(project, dep, "pending", 0.0, "waiting for a runner")
        yield _deploy_log(project, dep, "Initializing the backend...")
        yield _deploy_status(project, dep, "in_progress", 0.0, "terraform apply")
        for i, (address, kind) in enumerate(resources):
            yield _deploy_log(project, dep, f"{address}: Creating...")
            if i == fail_at:
                reason = rng.choice(_APPLY_ERRORS)
                yield _deploy_log(project, dep, f"Error: creating {address}: {reason}", "stderr")
                progress = i / len(resources)
                yield _deploy_status(project, dep, "failed", progress, f"apply failed: {address}")
                break
            took, resource_id = rng.randint(1, 90), f"{kind}-{rng.getrandbits(40):010x}"
            done = f"{address}: Creation complete after {took}s [id={resource_id}]"
            yield _deploy_log(project, dep, done)
            yield _deploy_status(project, dep, "in_progress", (i + 1) / len(resources))
        else:
            summary = f"Apply complete! Resources: {len(resources)} added, 0 changed, 0 destroyed."
            yield _deploy_log(project, dep, summary)
            yield _deploy_status(project, dep, "succeeded", 1.0, "apply complete")


def _activity(project: str | None, rng: random.Random) -> Iterator[Step]:
    """Activity-feed entries by people and agents, forever; `project` None makes them global."""
    while True:
        actor = rng.choice((*_PEOPLE, *_AGENTS))
        action, activity_type = rng.choice(_ACTIONS)
        target = rng.choice(_TARGETS)
        priority = rng.choices(_PRIORITIES, weights=(3, 10, 3, 1))[0]
        data = {"actor": actor, "action": action, "target": target, "priority": priority}
        data |= {"activity_type": activity_type, "summary": f"{actor} {action} {target}"}
        yield Step("activity_created", project, data)


def _project(project: str, rng: random.Random) -> Iterator[Step]:
    """Interleave one project's tracks: its agents, a workflow, deployments and activity."""
    tracks = [_agent(project, agent, rng) for agent in _AGENTS]
    weights = [14] * len(tracks)
    tracks += [_workflow(project, rng), _deployment(project, rng), _activity(project, rng)]
    weights += [14, 20, 10]
    while True:
        yield next(rng.choices(tracks, weights)[0])


def _stream(projects: Sequence[str], rng: random.Random) -> Iterator[Step]:
    """Every project's steps, interleaved at random, with an occasional global activity."""
    per_project = [_project(project, rng) for project in projects]
    global_feed = _activity(None, rng)
    while True:
        if rng.random() < GLOBAL_ACTIVITY_SHARE:
            yield next(global_feed)
        else:
            yield next(rng.choice(per_project))


async def _stopped_within(delay: float, stop: asyncio.Event | None) -> bool:
    """Wait `delay` seconds; return early with True if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(delay)
        return False
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        return False
    return True


async def run_demo(
    publisher: EventPublisher,
    *,
    projects: Sequence[str] = DEFAULT_PROJECTS,
    rate: float = 5.0,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    seed: int | None = None,
    on_event: Callable[[PublishedEvent], None] | None = None,
) -> DemoStats:
    """Publish a simulated stream for `projects` until `duration` elapses or `stop` is set.

    Args:
        publisher: An open publisher; each event is published with its typed helper.
        projects: The demo project ids.
        rate: Events per second overall, paced against a monotonic clock (no drift).
        duration: Seconds to run; None runs until `stop` is set (or forever).
        stop: Set it to end the demo promptly, even during a pause.
        seed: Makes the sequence of events (types, projects, data) reproducible.
        on_event: Called with every event once the broker confirmed it.

    Returns:
        How many events of each type were published.

    Raises:
        ValueError: `rate`, `duration` or `projects` is invalid.
        PublishError: the broker did not take an event (see `producers.errors`).
    """
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of events per second, not {rate!r}")
    if duration is not None and duration < 0:
        raise ValueError(f"duration must be zero or more seconds, not {duration!r}")
    invalid = [project for project in projects if not is_valid_project_id(project)]
    if not projects or invalid:
        raise ValueError(f"projects must be 1-64 characters of [A-Za-z0-9_-]; bad: {invalid}")
    log.info("demo: %.1f events/s for projects %s", rate, ", ".join(projects))
    steps = _stream(projects, random.Random(seed))
    stats = DemoStats()
    loop = asyncio.get_running_loop()
    due = start = loop.time()
    deadline = math.inf if duration is None else start + duration
    while stop is None or not stop.is_set():
        now = loop.time()
        if now - due > MAX_LAG:  # far behind (e.g. a blocked broker): re-anchor, do not burst
            due = now
        wake = min(due, deadline)
        if wake > now and await _stopped_within(wake - now, stop):
            break
        if loop.time() >= deadline:
            break
        step = next(steps)
        helper: Callable[..., Awaitable[PublishedEvent]] = getattr(publisher, step.helper)
        event = await helper(step.project_id, **step.kwargs)
        stats.published += 1
        stats.by_type[step.helper] += 1  # every helper is named after its event type
        if on_event is not None:
            on_event(event)
        due += 1.0 / rate
    return stats
