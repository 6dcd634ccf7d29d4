"""`eventbridge token`: sign a client token, for trying the bridge and for services without an
identity provider.

The token is what the bridge checks (bridge/edge/auth.py): `iss` and `aud` from the settings, `exp`
after `--ttl`, and the grant claims `projects` and `activity_feed`. HS256 tokens are signed with
EVENTBRIDGE_JWT_SECRET (the bridge's own secret); RS256/ES256 tokens need the private key that
belongs to the bridge's public key (`--private-key-file`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bridge.cli.options import settings_from
from bridge.edge.auth import ALL_PROJECTS
from bridge.settings import JWT_ALGORITHMS, Settings
from schemas.routing import is_valid_project_id

_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def add_parser(commands: Any, name: str) -> None:
    """Register the sub-command."""
    parser = commands.add_parser(
        name,
        help="sign a client token (JWT) granting rooms",
        description="Print a JWT the bridge accepts: iss and aud from the settings "
        "(EVENTBRIDGE_JWT_ISSUER, EVENTBRIDGE_JWT_AUDIENCE), exp after --ttl, and the rooms it "
        "grants. Signed with EVENTBRIDGE_JWT_SECRET (HS256), or with --private-key-file "
        "(RS256/ES256: the private half of EVENTBRIDGE_JWT_PUBLIC_KEY_FILE).",
        epilog="example: eventbridge token --project proj-123 --activity-feed --ttl 3600",
    )
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="ID",
        help="a project the token grants (repeatable)",
    )
    parser.add_argument(
        "--all-projects", action="store_true", help='grant every project (projects: "*")'
    )
    parser.add_argument("--activity-feed", action="store_true", help="grant the activity feed")
    parser.add_argument("--subject", default="eventbridge-cli", help="the sub claim [%(default)s]")
    parser.add_argument(
        "--ttl", type=float, default=3600.0, help="seconds until the token expires [3600]"
    )
    parser.add_argument(
        "--private-key-file", metavar="PEM", help="sign with this RSA or EC private key (PEM)"
    )
    parser.add_argument("--jwt-issuer", help="the iss claim [env EVENTBRIDGE_JWT_ISSUER]")
    parser.add_argument(
        "--jwt-audience", help="the aud claim [env EVENTBRIDGE_JWT_AUDIENCE; default eventbridge]"
    )
    parser.add_argument(
        "--jwt-algorithm",
        choices=list(JWT_ALGORITHMS),
        help="the algorithm [env EVENTBRIDGE_JWT_ALGORITHM; default: HS256 with the secret, "
        "RS256 or ES256 after the private key]",
    )
    parser.set_defaults(handler=run)


class TokenError(Exception):
    """The token cannot be signed as asked; the message says why."""


def signing_key(settings: Settings, private_key_file: str | None) -> tuple[str, Any]:
    """The algorithm and key to sign with.

    Raises:
        TokenError: no key, or a key that does not fit the configured algorithm.
    """
    if private_key_file:
        try:
            key = load_pem_private_key(Path(private_key_file).read_bytes(), password=None)
        except OSError as exc:
            raise TokenError(f"cannot read {private_key_file!r}: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise TokenError(
                f"{private_key_file!r} is not an unencrypted PEM private key"
            ) from None
        algorithm: str
        family: tuple[str, ...]
        if isinstance(key, rsa.RSAPrivateKey):
            algorithm, family = settings.jwt_algorithm or "RS256", ("RS", "PS")
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            curve_algorithm = _CURVE_ALGORITHMS.get(key.curve.name, "ES256")
            algorithm, family = settings.jwt_algorithm or curve_algorithm, ("ES",)
        else:
            raise TokenError(f"the key in {private_key_file!r} is neither RSA nor EC")
        if not algorithm.startswith(family):
            raise TokenError(f"the key in {private_key_file!r} cannot sign {algorithm} tokens")
        return algorithm, key
    if settings.jwt_secret is None:
        raise TokenError(
            "no signing key: set EVENTBRIDGE_JWT_SECRET (HS256) or pass --private-key-file"
        )
    algorithm = settings.jwt_algorithm or "HS256"
    if not algorithm.startswith("HS"):
        raise TokenError(f"a secret signs HS256/HS384/HS512 tokens, not {algorithm}")
    return algorithm, settings.jwt_secret.get_secret_value().encode()


def build_claims(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The token's claims.

    Raises:
        TokenError: no issuer, a bad project id, a non-positive TTL, or no room granted.
    """
    if not settings.jwt_issuer:
        raise TokenError("no issuer: set EVENTBRIDGE_JWT_ISSUER or pass --jwt-issuer")
    if args.ttl <= 0:
        raise TokenError("--ttl must be more than 0 seconds")
    bad = [project for project in args.project if not is_valid_project_id(project)]
    if bad:
        raise TokenError(f"invalid project id {bad[0][:80]!r}: 1-64 letters, digits, '_' or '-'")
    if not (args.project or args.all_projects or args.activity_feed):
        raise TokenError(
            "the token would grant nothing: give --project, --all-projects or --activity-feed"
        )
    now = int(time.time())
    return {
        "sub": args.subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + round(args.ttl),
        "projects": ALL_PROJECTS if args.all_projects else sorted(set(args.project)),
        "activity_feed": bool(args.activity_feed),
    }


def run(args: argparse.Namespace) -> int:
    """Run `eventbridge token`."""
    settings = settings_from(args, ("jwt_issuer", "jwt_audience", "jwt_algorithm"))
    try:
        algorithm, key = signing_key(settings, args.private_key_file)
        claims = build_claims(args, settings)
    except TokenError as exc:
        print(f"eventbridge token: {exc}", file=sys.stderr)
        return 2
    print(jwt.encode(claims, key, algorithm=algorithm))
    return 0
