"""Authentication and room authorization, for both transports.

With `EVENTBRIDGE_AUTH=jwt` (the default) every connection presents a JSON Web Token when it
connects: Socket.IO in its `auth` payload (`{"token": "<JWT>"}`), the native WebSocket in its
first message (`{"type": "auth", "token": "<JWT>"}`). Never in the URL: URLs end up in proxy
logs and browser history. The token is checked once, with one algorithm fixed by configuration
(never the token's own `alg`), and must carry `exp`, `aud` and `iss`; its claims say which rooms
the connection may join:

- `projects`: a list of project ids, or `"*"` for every project (missing: none);
- `activity_feed`: `true` to allow the activity feed (missing: false);
- `sub` and the optional `name`: who the connection is, for presence (docs/clients.md,
  "Presence").

A connection ends when its token expires (`token_expired`). With `EVENTBRIDGE_AUTH=anonymous`
every connection may join every room; the bridge refuses to serve that on an address other
than loopback unless `insecure` is set.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bridge.errors import AuthError, ConfigurationError, RequestError
from bridge.settings import Settings
from schemas.codes import ErrorCode
from schemas.routing import ACTIVITY_FEED, is_valid_project_id

ALL_PROJECTS = "*"
MAX_TOKEN_CHARS = 8192
MAX_NAME_CHARS = 128
"""The longest display name (the `name` claim) presence shows; longer ones are cut."""
SOCKETIO_AUTH_SHAPE = 'send auth as {"token": "<JWT>"}'
"""What a Socket.IO client that sent `auth` in another shape is told."""

_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_ALGORITHM_OF_CURVE = {curve: algorithm for algorithm, curve in _EC_CURVES.items()}
_CONFIGURE = (
    "set EVENTBRIDGE_JWT_SECRET (HS256) or EVENTBRIDGE_JWT_PUBLIC_KEY_FILE (RS256, ES256) and "
    "EVENTBRIDGE_JWT_ISSUER"
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one connection may do.

    Attributes:
        subject: the token's `sub` (for logs), or None.
        projects: the project ids it may join, or None for every project.
        activity_feed: whether it may join the activity feed.
        expires_at: when the connection must end (the token's `exp` plus the leeway, Unix
            seconds), or None.
        anonymous: granted by anonymous mode, not by a token.
        name: the token's display name (its `name` claim, for presence), or None.
    """

    subject: str | None
    projects: frozenset[str] | None
    activity_feed: bool
    expires_at: float | None = None
    anonymous: bool = False
    name: str | None = None

    def allows(self, room: str) -> bool:
        """Whether this grant covers `room` (`activity-feed` or `project:<id>`)."""
        if room == ACTIVITY_FEED:
            return self.activity_feed
        project_id = room.removeprefix("project:")
        return self.projects is None or project_id in self.projects

    def require(self, room: str) -> None:
        """Raise a `forbidden` `RequestError` unless this grant covers `room`."""
        if not self.allows(room):
            raise RequestError(
                ErrorCode.FORBIDDEN, f"this connection's token does not grant {room}"
            )

    def describe(self) -> dict[str, Any]:
        """The grant as the WebSocket `authenticated` reply shows it."""
        return {
            "subject": self.subject,
            "projects": ALL_PROJECTS if self.projects is None else sorted(self.projects),
            "activity_feed": self.activity_feed,
            "expires_at": self.expires_at,
            "anonymous": self.anonymous,
        }


ANONYMOUS = Grant(subject=None, projects=None, activity_feed=True, anonymous=True)
NOTHING = Grant(subject=None, projects=frozenset(), activity_feed=False)
"""What a connection holds before it has authenticated: no room."""


class Authenticator:
    """Checks tokens against the configured key; built once at start-up.

    Raises:
        ConfigurationError: (from the constructor) the configuration is incomplete or
            inconsistent; the message names the setting to fix.
    """

    def __init__(self, settings: Settings) -> None:
        self.required = settings.auth == "jwt"
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer or ""
        self._leeway = settings.jwt_leeway
        self._key: Any = None
        self.algorithm = ""
        if self.required:
            self.algorithm, self._key = _load_key(settings)
            if not settings.jwt_issuer:
                raise ConfigurationError(
                    "EVENTBRIDGE_JWT_ISSUER is not set: set it to the `iss` your tokens carry "
                    "(tokens without the right issuer are refused)"
                )

    def verify(self, token: object) -> Grant:
        """Check a token and return what it grants.

        Raises:
            AuthError: no token, a malformed or badly signed one, an expired or not yet valid
                one, the wrong audience or issuer, or claims that grant nothing readable.
        """
        if not self.required:
            return ANONYMOUS
        if token is None or token == "":
            raise AuthError(ErrorCode.AUTH_REQUIRED, "no token: send a JWT to connect")
        if not isinstance(token, str):
            raise AuthError(ErrorCode.INVALID_TOKEN, "the token must be a string (a compact JWT)")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError(
                ErrorCode.INVALID_TOKEN, f"the token is longer than {MAX_TOKEN_CHARS} characters"
            )
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "aud", "iss"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc, self) from None
        except (ValueError, TypeError, KeyError, OverflowError):
            # PyJWT lets a few of these through for odd headers; none is the client's business
            raise AuthError(ErrorCode.INVALID_TOKEN, "the token is not a well-formed JWT") from None
        return _grant_of(claims, self._leeway)

    def verify_socketio(self, auth: object) -> Grant:
        """Check a Socket.IO CONNECT's `auth` payload, `{"token": "<JWT>"}` (see `verify`)."""
        if self.required and auth is not None and not isinstance(auth, dict):
            raise AuthError(ErrorCode.INVALID_TOKEN, SOCKETIO_AUTH_SHAPE)
        return self.verify(auth.get("token") if isinstance(auth, dict) else None)

    def unreadable_connect(self) -> AuthError:
        """The refusal of a Socket.IO CONNECT packet that cannot be decoded at all (python-socketio
        clients encode `auth=1.5` as one, for instance)."""
        if self.required:
            return AuthError(ErrorCode.INVALID_TOKEN, f"unreadable CONNECT: {SOCKETIO_AUTH_SHAPE}")
        return AuthError(ErrorCode.INVALID_PAYLOAD, "unreadable CONNECT: send auth as an object")


def _refusal(exc: jwt.PyJWTError, authenticator: Authenticator) -> AuthError:
    """Our message for a PyJWT error (theirs can be terse; none of ours quotes the token)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return AuthError(ErrorCode.TOKEN_EXPIRED, "the token has expired")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return AuthError(ErrorCode.INVALID_TOKEN, f"the token has no {exc.claim!r} claim")
    messages: list[tuple[type[jwt.PyJWTError], str]] = [
        (jwt.ImmatureSignatureError, "the token is not valid yet (nbf is in the future)"),
        (jwt.InvalidAudienceError, f"the token's aud is not {authenticator.audience!r}"),
        (jwt.InvalidIssuerError, f"the token's iss is not {authenticator.issuer!r}"),
        (
            jwt.InvalidAlgorithmError,
            f"the token is not signed with {authenticator.algorithm}, the only algorithm this "
            "bridge accepts",
        ),
        (jwt.InvalidSignatureError, "the token's signature does not verify"),
        (jwt.DecodeError, "the token is not a well-formed JWT"),
    ]
    for kind, message in messages:
        if isinstance(exc, kind):
            return AuthError(ErrorCode.INVALID_TOKEN, message)
    return AuthError(ErrorCode.INVALID_TOKEN, f"the token is invalid: {type(exc).__name__}")


def _grant_of(claims: dict[str, Any], leeway: float) -> Grant:
    projects_claim = claims.get("projects", [])
    projects: frozenset[str] | None
    if projects_claim == ALL_PROJECTS:
        projects = None
    elif isinstance(projects_claim, list) and all(
        isinstance(item, str) and is_valid_project_id(item) for item in projects_claim
    ):
        projects = frozenset(projects_claim)
    else:
        raise AuthError(
            ErrorCode.INVALID_TOKEN,
            'the token\'s projects claim must be "*" or a list of project ids',
        )
    feed = claims.get("activity_feed", False)
    if not isinstance(feed, bool):
        raise AuthError(
            ErrorCode.INVALID_TOKEN, "the token's activity_feed claim must be true or false"
        )
    subject = claims.get("sub")
    exp = claims["exp"]
    return Grant(
        subject=subject if isinstance(subject, str) else None,
        projects=projects,
        activity_feed=feed,
        expires_at=float(exp) + leeway,
        name=name[:MAX_NAME_CHARS] if isinstance(name := claims.get("name"), str) else None,
    )


def _load_key(settings: Settings) -> tuple[str, Any]:
    """The one algorithm and its key, checked against each other."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    key_file = settings.jwt_public_key_file
    if secret and key_file:
        raise ConfigurationError(
            "both EVENTBRIDGE_JWT_SECRET and EVENTBRIDGE_JWT_PUBLIC_KEY_FILE are set: configure "
            "one key (a secret for HS256, a public key for RS256/ES256)"
        )
    if not secret and not key_file:
        raise ConfigurationError(
            "authentication is on (EVENTBRIDGE_AUTH=jwt, the default) but no key is configured: "
            f"{_CONFIGURE}; or set EVENTBRIDGE_AUTH=anonymous to let anyone who reaches the "
            "port read every room"
        )
    algorithm = settings.jwt_algorithm
    if secret:
        algorithm = algorithm or "HS256"
        if algorithm not in _HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"EVENTBRIDGE_JWT_ALGORITHM is {algorithm} but a secret is configured: a secret "
                "signs HS256, HS384 or HS512 tokens"
            )
        needed = _HMAC_KEY_BYTES[algorithm]
        if len(secret.encode()) < needed:
            raise ConfigurationError(
                f"EVENTBRIDGE_JWT_SECRET is too short for {algorithm}: use at least {needed} "
                "random bytes (e.g. `openssl rand -base64 48`)"
            )
        return algorithm, secret.encode()
    assert key_file is not None
    return _load_public_key(Path(key_file), algorithm)


def _load_public_key(path: Path, algorithm: str | None) -> tuple[str, Any]:
    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read EVENTBRIDGE_JWT_PUBLIC_KEY_FILE {str(path)!r}: {exc.strerror}"
        ) from None
    except ValueError:
        raise ConfigurationError(
            f"EVENTBRIDGE_JWT_PUBLIC_KEY_FILE {str(path)!r} is not a PEM public key "
            "(-----BEGIN PUBLIC KEY-----)"
        ) from None
    if isinstance(key, rsa.RSAPublicKey):
        algorithm = algorithm or "RS256"
        if algorithm[:2] not in ("RS", "PS"):
            raise ConfigurationError(
                f"EVENTBRIDGE_JWT_ALGORITHM is {algorithm} but {str(path)!r} holds an RSA key "
                "(RS256/PS256 and stronger)"
            )
        if key.key_size < 2048:
            raise ConfigurationError(f"the RSA key in {str(path)!r} is shorter than 2048 bits")
        return algorithm, key
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve_algorithm = _ALGORITHM_OF_CURVE.get(key.curve.name)
        algorithm = algorithm or curve_algorithm
        if algorithm is None or _EC_CURVES.get(algorithm) != key.curve.name:
            raise ConfigurationError(
                f"the EC key in {str(path)!r} (curve {key.curve.name}) does not fit "
                f"EVENTBRIDGE_JWT_ALGORITHM {algorithm or '(unset)'}: ES256 needs P-256, ES384 "
                "P-384, ES512 P-521"
            )
        return algorithm, key
    raise ConfigurationError(
        f"the key in {str(path)!r} is neither RSA nor EC; tokens must be signed with RS256, "
        "PS256 or ES256 (or stronger)"
    )


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the port reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse anonymous mode on an address other people can reach, unless told `insecure`.

    Raises:
        ConfigurationError: in one sentence saying what to do.
    """
    if settings.auth == "anonymous" and not is_loopback(settings.host) and not settings.insecure:
        raise ConfigurationError(
            f"refusing to serve anonymous clients on {settings.host}: anyone who reaches it "
            f"could read every room; {_CONFIGURE} to require tokens, or pass --insecure "
            "(EVENTBRIDGE_INSECURE=true) on a trusted network"
        )


def remaining_seconds(grant: Grant) -> float | None:
    """Seconds until a connection holding `grant` must end, or None if never."""
    if grant.expires_at is None:
        return None
    return grant.expires_at - time.time()
