"""Options shared by sub-commands, and turning them into `Settings`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from bridge.settings import JWT_ALGORITHMS, Settings

BROKER_OPTIONS = ("amqp_url", "prefix")
SERVER_OPTIONS = ("host", "port", "allowed_origins", "log_level")
AUTH_OPTIONS = (
    "auth",
    "insecure",
    "jwt_public_key_file",
    "jwt_algorithm",
    "jwt_issuer",
    "jwt_audience",
)


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    """--amqp-url and --prefix."""
    fields = Settings.model_fields
    parser.add_argument(
        "--amqp-url",
        help=f"{fields['amqp_url'].description} [env EVENTBRIDGE_AMQP_URL; default "
        f"{fields['amqp_url'].default}]",
    )
    parser.add_argument(
        "--prefix",
        help=f"{fields['prefix'].description} [env EVENTBRIDGE_PREFIX; default "
        f"{fields['prefix'].default}]",
    )


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --allowed-origins and --log-level."""
    fields = Settings.model_fields
    parser.add_argument(
        "--host", help=f"{fields['host'].description} [env EVENTBRIDGE_HOST; default 127.0.0.1]"
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"{fields['port'].description} [env EVENTBRIDGE_PORT; default 8000]",
    )
    parser.add_argument(
        "--allowed-origins",
        metavar="ORIGINS",
        help="Browser origins allowed to connect besides the bridge's own, comma-separated "
        "(e.g. https://app.example.com) [env EVENTBRIDGE_ALLOWED_ORIGINS; default none]",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="Log level [env EVENTBRIDGE_LOG_LEVEL; default info]",
    )


def add_auth_options(parser: argparse.ArgumentParser, *, default_auth: str = "jwt") -> None:
    """--auth, --insecure and the JWT options (the secret is read from the environment only)."""
    fields = Settings.model_fields
    parser.add_argument(
        "--auth",
        choices=["jwt", "anonymous"],
        default=None if default_auth == "jwt" else default_auth,
        help=f"{fields['auth'].description} [env EVENTBRIDGE_AUTH; default {default_auth}]",
    )
    parser.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        help=f"{fields['insecure'].description} [env EVENTBRIDGE_INSECURE]",
    )
    parser.add_argument(
        "--jwt-public-key-file",
        metavar="PEM",
        help=f"{fields['jwt_public_key_file'].description} [env EVENTBRIDGE_JWT_PUBLIC_KEY_FILE; "
        "an HS256 secret comes from EVENTBRIDGE_JWT_SECRET only, never the command line]",
    )
    parser.add_argument(
        "--jwt-algorithm",
        choices=list(JWT_ALGORITHMS),
        help=f"{fields['jwt_algorithm'].description} [env EVENTBRIDGE_JWT_ALGORITHM]",
    )
    parser.add_argument(
        "--jwt-issuer",
        help=f"{fields['jwt_issuer'].description} [env EVENTBRIDGE_JWT_ISSUER]",
    )
    parser.add_argument(
        "--jwt-audience",
        help=f"{fields['jwt_audience'].description} [env EVENTBRIDGE_JWT_AUDIENCE; default "
        "eventbridge]",
    )


def settings_from(args: argparse.Namespace, names: tuple[str, ...]) -> Settings:
    """Build the settings: environment first, then the options given on the command line.

    Exits with status 2 and one line per problem when a setting is invalid.
    """
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in names if getattr(args, name, None) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = ".".join(str(part) for part in error["loc"])
            print(
                f"eventbridge: invalid setting {name} (EVENTBRIDGE_{name.upper()}): {error['msg']}",
                file=sys.stderr,
            )
        raise SystemExit(2) from None
