"""The live dashboard: a static page at `/` and the `/api/projects` list its project picker uses.

The page itself (`bridge/dashboard/index.html`, `dashboard.css`, `dashboard.js`) is plain HTML,
CSS and JavaScript with no build step; it follows one project over the native WebSocket at `/ws`
(see docs/operators/dashboard.md). Only the files named here are served: a request for any other
name, such as `/dashboard/../settings.py`, is answered 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import FileResponse

from bridge.core.hub import Hub
from bridge.edge.auth import Authenticator, Grant
from bridge.errors import AuthError
from schemas.routing import project_room

STATIC_DIR = Path(__file__).resolve().parents[1] / "dashboard"
"""Where the page's files live (shipped as package data of `bridge`)."""

ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "eventbridge-client.js": "text/javascript; charset=utf-8",
    "operator.js": "text/javascript; charset=utf-8",
}
"""The files served under `/dashboard/`, with their content types: nothing else is served."""

NO_CACHE = {"Cache-Control": "no-cache"}

PROJECT_ROOM_PREFIX = project_room("")
"""Browsers revalidate every load, so an upgraded bridge never runs with a stale script."""


def dashboard_routes() -> APIRouter:
    """`GET /` (the page) and `GET /dashboard/{name}` (its stylesheet and script)."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return _static("index.html", "text/html; charset=utf-8")

    @router.get("/dashboard/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, f"no dashboard file named {name[:80]!r}")
        return _static(name, media_type)

    return router


def _static(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=NO_CACHE)


def known_projects(hub: Hub, limit: int, grant: Grant | None = None) -> list[dict[str, Any]]:
    """The projects the bridge holds history or snapshot state for, most recently active first
    (only those `grant` covers, when given).

    Each is `{"project_id", "last_offset"}`: the offset of its newest event still in memory.
    """
    newest = hub.state.newest_offsets()
    for room, offset in hub.history.newest_offsets().items():
        if room.startswith(PROJECT_ROOM_PREFIX):
            project = room.removeprefix(PROJECT_ROOM_PREFIX)
            newest[project] = max(offset, newest.get(project, offset))
    if grant is not None and grant.projects is not None:
        granted = grant.projects
        newest = {project: offset for project, offset in newest.items() if project in granted}
    ranked = sorted(newest.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"project_id": project, "last_offset": offset} for project, offset in ranked]


def project_routes(hub: Hub, authenticator: Authenticator) -> APIRouter:
    """`GET /api/projects`: the projects known to this bridge, for the dashboard's picker.

    With tokens required it needs `Authorization: Bearer <JWT>` and lists only the projects
    the token grants (401 without a valid token).
    """
    router = APIRouter()

    @router.get("/api/projects")
    async def projects(
        limit: int = Query(100, ge=1, le=1000, description="the most projects to list"),
        authorization: str | None = Header(None, include_in_schema=False),
    ) -> dict[str, list[dict[str, Any]]]:
        token = None
        if authorization is not None and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        try:
            grant = authenticator.verify(token)
        except AuthError as exc:
            raise HTTPException(
                401,
                {"code": exc.code, "message": exc.message},
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        return {"projects": known_projects(hub, limit, grant)}

    return router
