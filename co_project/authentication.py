"""Stateless learner authentication: RS256 JWTs issued by the platform's main API.

Learners have no Django user rows: the token's `sub` is the learner id. Only RS256 is accepted
(so `alg: none` and HS256-signed-with-the-public-key forgeries fail), `iss` must match,
`aud` is checked when configured, and `exp` is required and enforced with a small leeway.
Upstream tokens carry no `token_type`/`jti`, so simplejwt's token classes (which require them)
are not used; its TokenBackend does the cryptography.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken

MAX_LEARNER_ID_LENGTH = 255
JWT_ALGORITHM = "RS256"


@dataclass(frozen=True)
class Learner:
    """The authenticated caller of the public API, identified only by the token's `sub`."""

    id: str
    claims: dict

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    @property
    def pk(self) -> str:
        return self.id


def read_pem(value: str | None) -> str | None:
    """A setting holding a PEM inline, or the path of a PEM file; None when absent."""
    if not value:
        return None
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        status = os.stat(value)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    # Read again only when the file changes (a rotated key is picked up), not on every request.
    return _pem_file(value, status.st_mtime_ns, status.st_size)


@lru_cache(maxsize=8)
def _pem_file(path: str, modified_ns: int, size: int) -> str:
    return Path(path).read_text()


@lru_cache(maxsize=8)
def _token_backend(public_key: str, issuer: str, audience: str | None, leeway: int) -> TokenBackend:
    return TokenBackend(JWT_ALGORITHM, verifying_key=public_key, issuer=issuer, audience=audience, leeway=leeway)


# Verified tokens, so a learner's every request does not pay for an RSA signature check and a
# JWT parse again. Only tokens that passed every check are kept (a failure raises, which the cache
# does not store), keyed by everything the verdict depends on (key, issuer, audience, leeway), and
# expiry is checked again on every use.
@lru_cache(maxsize=4096)
def _verified_claims(raw_token: str, public_key: str, issuer: str, audience: str | None, leeway: int) -> dict:
    backend = _token_backend(public_key, issuer, audience, leeway)
    try:
        claims = backend.decode(raw_token)
    except TokenBackendExpiredToken as exc:
        raise exceptions.AuthenticationFailed("Token has expired.") from exc
    except TokenBackendError as exc:
        raise exceptions.AuthenticationFailed("Token is invalid.") from exc
    except ValueError as exc:  # an unusable key (e.g. not an RSA PEM)
        raise exceptions.AuthenticationFailed("Token is invalid.") from exc
    if "exp" not in claims:
        raise exceptions.AuthenticationFailed("Token has no expiry.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_LEARNER_ID_LENGTH:
        raise exceptions.AuthenticationFailed("Token subject must be a string of 1 to 255 characters.")
    return claims


def verify_learner_token(raw_token: str) -> Learner:
    """Verify a bearer token and return the learner it names; raises AuthenticationFailed."""
    public_key = read_pem(settings.CO_JWT_PUBLIC_KEY)
    if public_key is None:
        raise exceptions.AuthenticationFailed("The service has no token verification key configured.")
    leeway = settings.CO_JWT_LEEWAY_SECONDS
    claims = _verified_claims(raw_token, public_key, settings.CO_JWT_ISSUER, settings.CO_JWT_AUDIENCE, leeway)
    # As PyJWT decides it: expired once `exp` is `leeway` seconds in the past.
    if int(claims["exp"]) <= time.time() - leeway:
        raise exceptions.AuthenticationFailed("Token has expired.")
    return Learner(id=claims["sub"], claims=dict(claims))


class LearnerJWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Learner, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        return verify_learner_token(parts[1]), parts[1]

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="co"'


class IsLearner(permissions.BasePermission):
    """Only requests authenticated by a learner token reach the public API."""

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.user, Learner)


class LearnerJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "co_project.authentication.LearnerJWTAuthentication"
    name = "learnerJWT"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "RS256 JWT issued by the platform's main API; `sub` is the learner id.",
        }


class SigningKeyMissing(Exception):
    """No private key: tokens come only from the platform's main API (as in production)."""


def dev_learner_token_issue(*, sub: str, ttl: int) -> str:
    """A learner token signed with the development private key: what `issue_token` prints and
    the development sign-in page hands out, so both are tokens the API accepts like upstream ones."""
    private_key = read_pem(settings.CO_JWT_PRIVATE_KEY)
    if private_key is None:
        raise SigningKeyMissing
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + ttl}
    backend = TokenBackend(
        JWT_ALGORITHM, signing_key=private_key, issuer=settings.CO_JWT_ISSUER, audience=settings.CO_JWT_AUDIENCE
    )
    return backend.encode(claims)
