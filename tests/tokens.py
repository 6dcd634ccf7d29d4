"""Tokens for tests: well-formed ones from PyJWT, and the forgeries PyJWT refuses to make."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://auth.test.example"
AUDIENCE = "eventbridge"
SECRET = "test-secret-" + "x" * 40
"""An HS256 secret of 52 bytes (the bridge wants at least 32)."""
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
"""The characters of a JWT's segments."""


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for project p1 (one hour), with overrides; an override of None drops it."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "projects": ["p1"],
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def hs256(secret: str = SECRET, **overrides: Any) -> str:
    """An HS256 token signed with `secret`."""
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(**overrides: Any) -> str:
    """An `alg: none` token: header and claims, empty signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims(**overrides)).encode())}."


def hmac_with(key: bytes, **overrides: Any) -> str:
    """An HS256 token whose secret is `key` (e.g. an RSA public key's PEM: key confusion)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims(**overrides)).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def tampered(token: str) -> str:
    """The same token with its claims changed (all projects) and the old signature kept."""
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["projects"] = "*"
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"


@dataclass(frozen=True)
class KeyPair:
    """A private key to sign with and its public key as PEM (what the bridge is given)."""

    private: Any
    public_pem: bytes
    algorithm: str

    def sign(self, **overrides: Any) -> str:
        """A token signed with the private key."""
        return jwt.encode(claims(**overrides), self.private, algorithm=self.algorithm)


def _pair(private: Any, algorithm: str) -> KeyPair:
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private, public, algorithm)


def rsa_pair() -> KeyPair:
    """A fresh RSA-2048 key pair for RS256."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def ec_pair() -> KeyPair:
    """A fresh P-256 key pair for ES256."""
    return _pair(ec.generate_private_key(ec.SECP256R1()), "ES256")
