"""The bridge's errors: a small flat tree under `EventBridgeError`."""

from __future__ import annotations

from schemas.errors import EventBridgeError


class BrokerUnavailableError(EventBridgeError):
    """The broker could not be reached, even after retrying."""


class TopologyError(EventBridgeError):
    """A broker object exists with settings the bridge cannot use."""


class RequestError(EventBridgeError):
    """A client's request is malformed or not allowed; the connection stays open.

    Attributes:
        code: a stable, machine-readable code (e.g. `invalid_project_id`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
