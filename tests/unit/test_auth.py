"""Authentication settings: what starts, what is refused with which sentence, and token checks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bridge.cli.logs import RedactTokens
from bridge.edge.auth import ANONYMOUS, Authenticator, Grant, check_exposure, is_loopback
from bridge.errors import AuthError, RequestError
from bridge.settings import Settings
from schemas.errors import EventBridgeError
from tests import tokens


def settings(**overrides: Any) -> Settings:
    """Settings of a bridge requiring HS256 tokens from the test issuer, with overrides."""
    values: dict[str, Any] = {"jwt_secret": tokens.SECRET, "jwt_issuer": tokens.ISSUER}
    values.update(overrides)
    return Settings(**values)


def pem_file(tmp_path: Path, key: Any) -> str:
    """Write `key`'s public half as PEM; return the path."""
    path = tmp_path / "key.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)


def refusal(config: Settings) -> str:
    """The sentence the bridge refuses to start with."""
    with pytest.raises(EventBridgeError) as caught:
        Authenticator(config)
    return str(caught.value)


def test_jwt_is_the_default_and_needs_a_key() -> None:
    """With nothing configured the bridge does not start, and says what to set."""
    message = refusal(Settings())
    assert "EVENTBRIDGE_JWT_SECRET" in message
    assert "EVENTBRIDGE_AUTH=anonymous" in message


def test_issuer_is_required() -> None:
    """A key without an issuer is refused: tokens must carry a checked iss."""
    assert "EVENTBRIDGE_JWT_ISSUER" in refusal(settings(jwt_issuer=None))


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_short_secrets_are_refused(algorithm: str, length: int) -> None:
    """A secret shorter than the hash is refused, naming the minimum."""
    message = refusal(settings(jwt_secret="s" * length, jwt_algorithm=algorithm))
    assert f"at least {length + 1}" in message


def test_secret_with_an_asymmetric_algorithm_is_refused() -> None:
    """A secret cannot verify RS256 tokens: the configuration is refused, not guessed."""
    assert "HS256, HS384 or HS512" in refusal(settings(jwt_algorithm="RS256"))


def test_both_keys_are_refused(tmp_path: Path) -> None:
    """Configuring a secret and a public key at once is refused."""
    key_file = pem_file(tmp_path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert "both" in refusal(settings(jwt_public_key_file=key_file))


def test_public_key_algorithms_follow_the_key(tmp_path: Path) -> None:
    """An RSA key means RS256, a P-256 key ES256, a P-384 key ES384, unless configured."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        (rsa_key, None, "RS256"),
        (rsa_key, "PS256", "PS256"),
        (ec.generate_private_key(ec.SECP256R1()), None, "ES256"),
        (ec.generate_private_key(ec.SECP384R1()), None, "ES384"),
    ]
    for key, configured, expected in cases:
        config = settings(
            jwt_secret=None, jwt_public_key_file=pem_file(tmp_path, key), jwt_algorithm=configured
        )
        assert Authenticator(config).algorithm == expected


@pytest.mark.parametrize(
    ("key", "algorithm", "words"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES384", "does not fit"),
        (ec.generate_private_key(ec.SECP256R1()), "RS256", "does not fit"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "ES256", "RSA key"),
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), None, "2048 bits"),
        (ed25519.Ed25519PrivateKey.generate(), None, "neither RSA nor EC"),
    ],
)
def test_mismatched_public_keys_are_refused(
    tmp_path: Path, key: Any, algorithm: str | None, words: str
) -> None:
    """A key that does not fit the configured algorithm (or is too weak) stops the start-up."""
    config = settings(
        jwt_secret=None, jwt_public_key_file=pem_file(tmp_path, key), jwt_algorithm=algorithm
    )
    assert words in refusal(config)


def test_unreadable_or_non_pem_key_files_are_refused(tmp_path: Path) -> None:
    """A missing file and a file that is not a PEM public key are named in the refusal."""
    missing = settings(jwt_secret=None, jwt_public_key_file=str(tmp_path / "nope.pem"))
    assert "No such file" in refusal(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    assert "not a PEM public key" in refusal(
        settings(jwt_secret=None, jwt_public_key_file=str(garbage))
    )


def test_leeway_is_capped_at_30_seconds() -> None:
    """A leeway above 30 s is an invalid setting."""
    with pytest.raises(ValidationError, match="less than or equal to 30"):
        settings(jwt_leeway=31)


def test_the_secret_never_shows_in_the_settings() -> None:
    """Printing or dumping the settings hides the secret."""
    config = settings()
    assert tokens.SECRET not in repr(config)
    assert tokens.SECRET not in str(config.model_dump())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("bridge.internal", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    """Only loopback addresses count as private to this machine."""
    assert is_loopback(host) is loopback


def test_anonymous_mode_is_refused_off_loopback_unless_insecure() -> None:
    """Anonymous on 0.0.0.0 is refused in one sentence; --insecure or loopback allow it."""
    with pytest.raises(EventBridgeError, match="--insecure") as caught:
        check_exposure(Settings(auth="anonymous", host="0.0.0.0"))
    assert str(caught.value).count(".") <= 3  # one sentence (dots only in the address)
    check_exposure(Settings(auth="anonymous", host="0.0.0.0", insecure=True))
    check_exposure(Settings(auth="anonymous", host="127.0.0.1"))
    check_exposure(settings(host="0.0.0.0"))  # tokens required: any address is fine


def test_anonymous_grants_every_room() -> None:
    """Anonymous mode grants every project and the feed, forever."""
    grant = Authenticator(Settings(auth="anonymous")).verify(None)
    assert grant is ANONYMOUS
    assert grant.allows("project:anything")
    assert grant.allows("activity-feed")
    assert grant.expires_at is None


def test_claims_become_the_grant() -> None:
    """projects and activity_feed say which rooms; exp plus leeway says until when."""
    authenticator = Authenticator(settings(jwt_leeway=5))
    exp = tokens.claims()["exp"]
    grant = authenticator.verify(tokens.hs256(projects=["p1", "p2"], activity_feed=True))
    assert grant == Grant("user-1", frozenset({"p1", "p2"}), True, exp + 5.0)
    everything = authenticator.verify(tokens.hs256(projects="*"))
    assert everything.allows("project:zzz")
    assert not everything.allows("activity-feed")
    nothing = authenticator.verify(tokens.hs256(projects=None))
    assert not nothing.allows("project:p1")
    with pytest.raises(RequestError, match="does not grant project:p3"):
        grant.require("project:p3")


@pytest.mark.parametrize(
    "overrides",
    [
        {"projects": ["bad id!"]},
        {"projects": [1]},
        {"projects": {"p1": True}},
        {"activity_feed": "yes"},
    ],
)
def test_malformed_claims_are_refused(overrides: dict[str, Any]) -> None:
    """A validly signed token whose grant claims have the wrong shape is refused."""
    with pytest.raises(AuthError) as caught:
        Authenticator(settings()).verify(tokens.hs256(**overrides))
    assert caught.value.code == "invalid_token"


PROPERTIES = hypothesis.settings(deadline=None, database=None)
"""No example database written into the repository, and no per-example deadline: an example
builds settings and verifies a token, which on a busy machine (the suite runs in parallel) can
take longer than Hypothesis's default 200 ms without anything being wrong."""


@PROPERTIES
@given(st.one_of(st.text(max_size=300), st.binary(max_size=100), st.integers(), st.none()))
def test_any_token_input_is_either_accepted_or_refused_with_a_code(token: object) -> None:
    """No input makes verification fail with anything but a refusal."""
    authenticator = Authenticator(settings())
    with pytest.raises(AuthError) as caught:
        authenticator.verify(token)
    assert caught.value.code in {"auth_required", "invalid_token"}


@PROPERTIES
@given(st.lists(st.text(alphabet=tokens.BASE64URL, max_size=60), min_size=3, max_size=3))
def test_jwt_shaped_garbage_is_refused(parts: list[str]) -> None:
    """Three base64url-looking segments that are not a signed token are refused, not crashed on."""
    with pytest.raises(AuthError):
        Authenticator(settings()).verify(".".join(parts))


def test_log_filter_redacts_anything_shaped_like_a_token() -> None:
    """A log line (or traceback) quoting a JWT shows `<token>` instead, whoever logs it, and a
    URL's query string is dropped whatever it holds."""
    token = tokens.hs256()
    record = logging.LogRecord(
        "uvicorn.error", logging.DEBUG, "", 0, "< GET /ws?t=%s", (token,), None
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == "< GET /ws?<query dropped>"
    bare = logging.LogRecord("x", logging.INFO, "", 0, "token %s; in use?", (token,), None)
    assert RedactTokens().filter(bare)
    assert bare.getMessage() == "token <token>; in use?"
    error = ValueError(f"bad {tokens.unsigned()}")
    failure = logging.LogRecord(
        "x", logging.ERROR, "", 0, "failed", None, (ValueError, error, None)
    )
    RedactTokens().filter(failure)
    assert "eyJ" not in (failure.exc_text or "")
    assert "ValueError: bad <token>" in (failure.exc_text or "")
