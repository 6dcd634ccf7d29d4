"""The typed publish helpers: one method per v1 event type, on top of a generic `publish`.

`TypedHelpers` is a mixin: `EventPublisher` inherits it and supplies `publish`. Each helper's
keyword arguments mirror the event type's data fields (README, "Publishing events").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from producers.encoding import HeaderValue
from producers.published import PublishedEvent


class TypedHelpers(ABC):
    """One `async` helper per event type, each returning the confirmed event.

    Keyword arguments mirror the type's data fields; extra keyword arguments become extra data
    fields. Any field given as None, extras included, is left out. Every helper raises what
    `publish` raises.
    """

    @abstractmethod
    async def publish(
        self,
        event_type: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        project_id: str | None,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        headers: Mapping[str, HeaderValue] | None = None,
    ) -> PublishedEvent:
        """Build, validate and publish one event; return it once the broker confirmed it."""

    async def _publish_fields(
        self, event_type: str, project_id: str | None, fields: dict[str, Any]
    ) -> PublishedEvent:
        """Publish `fields` as data, leaving out every field given as None."""
        data = {key: value for key, value in fields.items() if value is not None}
        return await self.publish(event_type, data, project_id=project_id)

    async def agent_status(
        self,
        project_id: str | None,
        *,
        agent_id: str,
        status: str,
        message: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `agent_status`: an agent entered `status` (idle, queued, running, ...)."""
        fields = {"agent_id": agent_id, "status": status, "message": message}
        return await self._publish_fields("agent_status", project_id, {**fields, **extra})

    async def progress_update(
        self,
        project_id: str | None,
        *,
        agent_id: str,
        progress: float,
        stage: str | None = None,
        message: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `progress_update`: an agent got `progress` (0.0-1.0) of the way."""
        fields = {"agent_id": agent_id, "progress": progress, "stage": stage, "message": message}
        return await self._publish_fields("progress_update", project_id, {**fields, **extra})

    async def generation_complete(
        self,
        project_id: str | None,
        *,
        agent_id: str,
        artifacts: Sequence[Mapping[str, Any] | BaseModel],
        generation_id: str | None = None,
        summary: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `generation_complete`: an agent produced `artifacts` ({name, uri?, kind?})."""
        fields = {
            "agent_id": agent_id,
            "generation_id": generation_id,
            "artifacts": [
                item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else dict(item)
                for item in artifacts
            ],
            "summary": summary,
        }
        return await self._publish_fields("generation_complete", project_id, {**fields, **extra})

    async def error(
        self,
        project_id: str | None,
        *,
        code: str,
        message: str,
        retryable: bool,
        agent_id: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `error`: something failed; `retryable` tells whether trying again may help."""
        fields = {"agent_id": agent_id, "code": code, "message": message, "retryable": retryable}
        return await self._publish_fields("error", project_id, {**fields, **extra})

    async def activity_created(
        self,
        project_id: str | None,
        *,
        actor: str,
        action: str,
        target: str | None = None,
        activity_type: str | None = None,
        priority: str = "normal",
        summary: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `activity_created` (also to the activity feed); `project_id` may be None."""
        fields = {
            "actor": actor,
            "action": action,
            "target": target,
            "activity_type": activity_type,
            "priority": priority,
            "summary": summary,
        }
        return await self._publish_fields("activity_created", project_id, {**fields, **extra})

    async def step_updated(
        self,
        project_id: str | None,
        *,
        workflow_id: str,
        step_id: str,
        changes: Mapping[str, Any],
        user_id: str | None = None,
        status: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `step_updated`: a workflow step changed (`changes` may be empty)."""
        fields = {
            "workflow_id": workflow_id,
            "step_id": step_id,
            "user_id": user_id,
            "status": status,
            "changes": dict(changes),
        }
        return await self._publish_fields("step_updated", project_id, {**fields, **extra})

    async def step_completed(
        self,
        project_id: str | None,
        *,
        workflow_id: str,
        step_id: str,
        user_id: str | None = None,
        result: Any = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `step_completed`: a workflow step finished, with an optional `result`."""
        fields = {
            "workflow_id": workflow_id,
            "step_id": step_id,
            "user_id": user_id,
            "result": result,
        }
        return await self._publish_fields("step_completed", project_id, {**fields, **extra})

    async def deployment_status(
        self,
        project_id: str | None,
        *,
        deployment_id: str,
        status: str,
        progress: float | None = None,
        message: str | None = None,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `deployment_status`: a deployment entered `status` or progressed."""
        fields = {
            "deployment_id": deployment_id,
            "status": status,
            "progress": progress,
            "message": message,
        }
        return await self._publish_fields("deployment_status", project_id, {**fields, **extra})

    async def deployment_log(
        self,
        project_id: str | None,
        *,
        deployment_id: str,
        stream: str,
        line: str,
        **extra: Any,
    ) -> PublishedEvent:
        """Publish `deployment_log`: one `line` a deployment wrote to `stream` (stdout/stderr)."""
        fields = {"deployment_id": deployment_id, "stream": stream, "line": line}
        return await self._publish_fields("deployment_log", project_id, {**fields, **extra})
