"""Every error the bridge raises on purpose: one tree under `EventBridgeError`.

```
EventBridgeError                      (schemas.errors: the root of everything eventbridge raises)
├── ConfigurationError                a setting is missing, wrong or unsafe; nothing started
├── TopologyError                     a broker object exists with settings the bridge cannot use
├── LogError                          the event log cannot be read as asked
│   ├── LogMissingError               no log exists under this prefix
│   ├── LogGapError                   retention removed the start of the range
│   └── LogUnavailableError           reading stopped early (the connection was lost)
├── TooManyEventsError                a resume would send more than the catch-up limit
├── RequestError(code)                a client's request is refused; the connection stays open
│   └── AuthError(code)               a connection could not be authenticated
├── ReplayError                       a replay cannot go on
├── DeadLetterQueueError              the dead-letter queue cannot be used as asked
└── producers.errors.PublishError     the SDK's errors, among them BrokerUnavailableError
```

Only the edges translate other libraries' errors into these (`raise ... from exc`); the CLI
prints their message, which says what happened and what to do next.
"""

from __future__ import annotations

from producers.errors import BrokerUnavailableError
from schemas.codes import ErrorCode
from schemas.errors import EventBridgeError

__all__ = [
    "AuthError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "DeadLetterQueueError",
    "EventBridgeError",
    "LogError",
    "LogGapError",
    "LogMissingError",
    "LogUnavailableError",
    "ReplayError",
    "RequestError",
    "TooManyEventsError",
    "TopologyError",
]


class ConfigurationError(EventBridgeError):
    """A setting is missing, inconsistent or unsafe; the message names the setting to fix."""


class TopologyError(EventBridgeError):
    """A broker object exists with settings the bridge cannot use."""


class LogError(EventBridgeError):
    """The event log cannot be read as asked."""


class LogMissingError(LogError):
    """The event log does not exist under this prefix."""


class LogGapError(LogError):
    """The log no longer holds the start of the requested range (retention removed it)."""


class LogUnavailableError(LogError):
    """The log could not be read to the end of the range (the broker connection was lost)."""


class TooManyEventsError(EventBridgeError):
    """More events than the catch-up limit would have to be sent."""


class RequestError(EventBridgeError):
    """A client's request is malformed or not allowed; the connection stays open.

    Attributes:
        code: the stable, machine-readable code clients switch on.
        message: what was wrong and what to do, for people.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AuthError(RequestError):
    """A connection could not be authenticated: `code` is `auth_required`, `invalid_token` or
    `token_expired`, and `message` says what was wrong (never the token)."""


class ReplayError(EventBridgeError):
    """A replay cannot go on; the message says what happened and what to do."""


class DeadLetterQueueError(EventBridgeError):
    """The dead-letter queue (or the exchange to re-drive to) cannot be used as asked."""
