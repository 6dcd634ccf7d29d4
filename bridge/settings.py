"""The one typed settings object, from `EVENTBRIDGE_*` environment variables and CLI options."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from producers.connection import parse_urls
from schemas.origins import ANY_ORIGIN, normalize_origin

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_AGE = re.compile(r"^[0-9]+[YMDhms]$")

JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512",
]  # fmt: skip
JWT_ALGORITHMS: tuple[str, ...] = get_args(JwtAlgorithm)


class Settings(BaseSettings):
    """Every setting of the bridge; each is also an environment variable `EVENTBRIDGE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="EVENTBRIDGE_", extra="ignore", frozen=True)

    amqp_url: str = Field(
        DEFAULT_AMQP_URL,
        description="RabbitMQ URL (AMQP 0.9.1), or the comma-separated URLs of one cluster's "
        "nodes: the bridge connects to one that answers (starting at a random one) and moves "
        "on to the next when its connection is lost.",
    )
    heartbeat_timeout: float = Field(
        30.0,
        ge=6,
        le=600,
        description="Seconds without a frame from the broker after which its connection counts "
        "as dead (a stopped node, a cut or half-open link) and the next node is tried; the AMQP "
        "heartbeat is set to fit (about a third of it).",
    )
    prefix: str = Field(
        "eventbridge",
        description="Topology prefix: names the exchange, the log stream and the dead-letter "
        "queue.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP/WebSocket server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP/WebSocket server binds to.")

    log_max_age: str = Field(
        "7D",
        description="Retention of the event log by age (RabbitMQ x-max-age: a number and one of "
        "Y M D h m s).",
    )
    log_max_bytes: int = Field(
        1_000_000_000, ge=1, description="Retention of the event log by size, in bytes."
    )
    log_segment_bytes: int = Field(
        8_000_000,
        ge=4096,
        description="Size of one log segment; retention removes whole segments.",
    )
    log_replicas: int = Field(
        3,
        ge=1,
        le=9,
        description="Nodes the log stream is replicated on, when the bridge creates it "
        "(RabbitMQ uses every node if the cluster has fewer; with 3, the log survives the loss "
        "of any one node).",
    )
    max_message_bytes: int = Field(
        65_536, ge=256, description="Largest accepted event body; larger ones are dead-lettered."
    )
    consumer_prefetch: int = Field(
        500, ge=10, le=10_000, description="Unacknowledged log messages in flight to the bridge."
    )
    history_max_events: int = Field(
        100_000,
        ge=0,
        description="Recent events kept in memory (all rooms together) to serve short resumes "
        "without reading the log.",
    )
    history_max_bytes: int = Field(
        32 * 1024 * 1024,
        ge=0,
        description="Bytes of memory the recent-events buffer may use (both frames of each "
        "event); the oldest events are dropped first, and resumes beyond it read the log.",
    )
    state_max_entries: int = Field(
        100_000,
        ge=0,
        description="Latest-state entries (agent status, progress, deployment status) kept for "
        "snapshots; the least recently updated are dropped first.",
    )
    state_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="Bytes of memory the latest-state entries may use; the least recently "
        "updated are dropped first.",
    )
    catchup_max_events: int = Field(
        10_000,
        ge=0,
        description="Most events one resume may send; past it the client gets resync-required "
        "(too_many).",
    )
    catchup_max_records: int = Field(
        50_000,
        ge=1,
        description="Most log records one resume may read (a quiet room's resume reads only "
        "up to that room's newest event); one that would read more gets resync-required "
        "(too_many) at once.",
    )
    room_index_max: int = Field(
        100_000,
        ge=1,
        description="Rooms whose newest event offset is remembered, so a resume knows how far "
        "to read (the least recently active are forgotten first).",
    )
    snapshot_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between state checkpoints, which let a restarting bridge rebuild "
        "the snapshot state from one checkpoint and a short tail of the log (written by the "
        "dead-letter writer replica; 0 turns them off).",
    )
    snapshot_wait: float = Field(
        30.0,
        gt=0,
        description="Seconds a fresh join waits for a starting bridge to rebuild the snapshot "
        "state before it gets resync-required (unavailable) instead.",
    )
    catchup_concurrency: int = Field(
        2, ge=1, description="Resumes reading the log (not memory) at the same time."
    )
    warm_start_events: int = Field(
        100_000,
        ge=0,
        description="How many of the log's newest records a starting bridge reads into its "
        "recent history, in the background (it reports ready at once).",
    )
    outbox_size: int = Field(
        2_000,
        ge=10,
        description="Events queued for one client connection before it is disconnected as slow.",
    )
    outbox_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=65_536,
        description="Bytes of live events queued for one client connection before it is "
        "disconnected as slow (a catch-up in progress does not count).",
    )
    publish_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the broker to confirm one publish."
    )
    startup_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds to keep retrying the broker at start-up before giving up.",
    )
    shutdown_timeout: float = Field(
        5.0, gt=0, description="Seconds allowed for a graceful shutdown after SIGTERM."
    )
    dead_letter_writer: bool = Field(
        True,
        description="Whether this replica writes invalid messages to the dead-letter queue. With "
        "several replicas, enable it on one so each invalid message is dead-lettered once.",
    )
    ws_compression: bool = Field(
        False,
        description="Offer permessage-deflate on WebSocket connections (costs CPU per delivery).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="Browser origins (scheme://host[:port]) allowed to connect besides the "
        "bridge's own; comma-separated or a JSON list; * allows any. Requests without an Origin "
        "header (non-browser clients) are always accepted.",
    )
    max_frame_bytes: int = Field(
        65_536,
        ge=1024,
        description="Largest WebSocket frame (native or Socket.IO) or Socket.IO long-polling "
        "request body a client may send; a larger one ends its connection (WebSocket close "
        "1009).",
    )
    max_messages_per_second: float = Field(
        50.0,
        gt=0,
        description="Messages one connection may send per second (bursts of one second's "
        "worth); the excess is refused with rate_limited, and a client sending more than five "
        "times this is disconnected.",
    )
    max_rooms_per_connection: int = Field(
        100, ge=1, description="Rooms one connection may be in at once (too_many_rooms)."
    )
    presence: bool = Field(
        True,
        description="Tell the clients of a project room who else is in it (presence-joined, "
        "presence-left, presence-updated; GET /api/projects/<id>/presence); false turns "
        "presence off.",
    )
    presence_heartbeat: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Seconds between the snapshots of its members each replica sends the others "
        "(changes are sent at once).",
    )
    presence_expiry: float = Field(
        6.0,
        gt=0,
        le=600,
        description="Seconds after which the members of a replica that fell silent (no snapshot, "
        "no change) are forgotten; more than presence_heartbeat.",
    )
    presence_state_max_bytes: int = Field(
        1024,
        ge=2,
        le=1024,
        description="The largest presence state a member may set, in bytes of compact JSON "
        "(larger: too_large).",
    )
    presence_max_members: int = Field(
        1_000,
        ge=1,
        description="Users a project room's presence lists at most: a connection of a new user "
        "joining a room that lists that many joins for its events but is not listed (nor may "
        "it set a state), so a crowd in one room costs presence nothing.",
    )
    presence_state_per_second: float = Field(
        5.0,
        gt=0,
        description="Presence state updates one connection may make per second, in bursts of "
        "one second's worth (more: rate_limited).",
    )
    ping_interval: float = Field(
        25.0,
        gt=0,
        description="Seconds between the server's pings on every connection (WebSocket ping "
        "frames; Engine.IO pings on Socket.IO).",
    )
    ping_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds to wait for the answer to a ping before closing the connection.",
    )
    idle_timeout: float = Field(
        300.0,
        ge=0,
        description="Seconds a native WebSocket connection may stay in no room without sending "
        "anything before it is closed (1000, reason idle); 0 turns this off.",
    )
    auth: Literal["jwt", "anonymous"] = Field(
        "jwt",
        description="How clients authenticate: jwt (a signed token at connect; its claims grant "
        "rooms) or anonymous (anyone who reaches the port may join every room; only on loopback "
        "unless insecure is set).",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="Shared secret of HS256/HS384/HS512 tokens (at least 32/48/64 bytes). Never "
        "logged; set it in the environment, not on a command line.",
    )
    jwt_public_key_file: str | None = Field(
        None,
        description="PEM file with the public key of RS256/PS256/ES256 (and stronger) tokens.",
    )
    jwt_algorithm: JwtAlgorithm | None = Field(
        None,
        description="The one signature algorithm accepted; by default HS256 with a secret, RS256 "
        "with an RSA key, ES256/ES384/ES512 with an EC key of the matching curve.",
    )
    jwt_audience: str = Field(
        "eventbridge", min_length=1, description="Required `aud` claim of every token."
    )
    jwt_issuer: str | None = Field(
        None, description="Required `iss` claim of every token (must be set with auth=jwt)."
    )
    jwt_leeway: float = Field(
        10.0,
        ge=0,
        le=30,
        description="Seconds of clock difference tolerated on exp and nbf (at most 30).",
    )
    auth_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a native WebSocket client has to send its auth message after the "
        "connection opens.",
    )
    insecure: bool = Field(
        False,
        description="Allow anonymous mode on an address other than loopback (a trusted network "
        "only: every room is open to whoever reaches the port).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the service."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text`: one readable line per record; `json`: one JSON object per line "
        "(time, level, logger, message, and the ids involved), for log collectors.",
    )
    metrics: bool = Field(
        True,
        description="Serve the Prometheus metrics at `/metrics` (docs/observability.md).",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Serve `/metrics` on this port (on the same address) instead of the main "
        "port, e.g. to scrape on an internal port; 0: on the main port.",
    )

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                "must be 1-64 characters of letters, digits, '_', '-' or '.', starting with a "
                "letter or digit"
            )
        return value

    @field_validator("log_max_age")
    @classmethod
    def _check_age(cls, value: str) -> str:
        if not _AGE.match(value):
            raise ValueError("must be a number followed by one of Y M D h m s, e.g. '7D' or '12h'")
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item for item in text.split(",") if item.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        origins: list[str] = []
        for item in value:
            if item.strip() == ANY_ORIGIN:
                origins.append(ANY_ORIGIN)
            elif item.strip().lower() == "null":
                raise ValueError(
                    "'null' cannot be allowed: it is the origin of every sandboxed frame and "
                    "file: page; serve the page from a real origin and list that"
                )
            else:
                origins.append(normalize_origin(item))
        return origins

    @field_validator(
        "jwt_secret", "jwt_public_key_file", "jwt_issuer", "jwt_algorithm", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `EVENTBRIDGE_JWT_SECRET=` (empty) means "not set", never "an empty secret"
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("amqp_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return ",".join(parse_urls(value))

    @model_validator(mode="after")
    def _check_presence_timing(self) -> Settings:
        if self.presence_expiry <= self.presence_heartbeat:
            raise ValueError(
                "presence_expiry must be longer than presence_heartbeat (say three heartbeats), "
                "or live replicas' members would expire between two snapshots"
            )
        return self
