"""The root of every error eventbridge raises on purpose."""

from __future__ import annotations


class EventBridgeError(Exception):
    """Base class of every error eventbridge raises; catch it to handle them all."""
