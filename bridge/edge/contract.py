"""`GET /asyncapi.json`: the bridge's AsyncAPI document, for this deployment's prefix.

It is built from `schemas/` (`schemas.asyncapi`) once, at start-up: the AMQP side producers
publish to (the exchange `<prefix>.events`, routing keys and message schemas) and the WebSocket
and Socket.IO channels clients use. The checked-in `schemas/asyncapi.json` is the same document
for the default prefix.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from schemas.asyncapi import asyncapi_document


def contract_routes(prefix: str) -> APIRouter:
    """The route serving the AsyncAPI document of a bridge using `prefix`."""
    document: dict[str, Any] = asyncapi_document(prefix=prefix)
    router = APIRouter()

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "no-cache"})

    return router
