"""The eventbridge service: consume the event log, decode, route to rooms, deliver to browsers."""
