"""Learner authentication: only RS256 tokens from the configured issuer, unexpired, with a sub."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

URL = "/v1/tracks"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _get(token: str | None, header: str | None = None) -> object:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(URL)


def _assert_401(response: object, code: str) -> None:
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["fields"] == {}
    assert body["request_id"] == response["X-Request-ID"]
    assert response["WWW-Authenticate"] == 'Bearer realm="co"'


def test_valid_upstream_token_without_token_type_or_jti_is_accepted(make_token) -> None:
    token = make_token("learner-42")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "token_type" not in claims and "jti" not in claims
    response = _get(token)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next": None}


def test_no_token(make_token) -> None:
    _assert_401(_get(None), "not_authenticated")


@pytest.mark.parametrize("header", ["Bearer", "Token abc", "Bearer a b", "bearer x.y.z"])
def test_malformed_authorization_header(header: str) -> None:
    _assert_401(_get(None, header=header), "authentication_failed")


def test_garbage_token() -> None:
    _assert_401(_get("not-a-jwt"), "authentication_failed")


def test_expired_token(make_token) -> None:
    response = _get(make_token(ttl=-120))
    _assert_401(response, "authentication_failed")
    assert response.json()["error"]["message"] == "Token has expired."


def test_expiry_leeway_is_small_but_allowed(make_token, settings) -> None:
    settings.CO_JWT_LEEWAY_SECONDS = 30
    assert _get(make_token(ttl=-5)).status_code == 200
    _assert_401(_get(make_token(ttl=-60)), "authentication_failed")


def test_token_without_exp_is_rejected(jwt_keys) -> None:
    token = jwt.encode({"sub": "a", "iss": "https://api.scimigo.com"}, jwt_keys[0], algorithm="RS256")
    _assert_401(_get(token), "authentication_failed")


def test_wrong_issuer(make_token) -> None:
    _assert_401(_get(make_token(iss="https://evil.example")), "authentication_failed")


def test_missing_issuer(jwt_keys) -> None:
    token = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, jwt_keys[0], algorithm="RS256")
    _assert_401(_get(token), "authentication_failed")


def test_alg_none_token() -> None:
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": "alice", "iss": "https://api.scimigo.com", "exp": int(time.time()) + 600})
    _assert_401(_get(f"{header}.{payload}."), "authentication_failed")


def test_hs256_signed_with_the_public_key_as_secret(jwt_keys) -> None:
    """The classic algorithm-confusion forgery."""
    public_pem = jwt_keys[1].encode()
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"sub": "alice", "iss": "https://api.scimigo.com", "exp": int(time.time()) + 600})
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()).rstrip(
        b"="
    )
    _assert_401(_get(f"{header}.{payload}.{signature.decode()}"), "authentication_failed")


def test_token_signed_by_another_key() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "a", "iss": "https://api.scimigo.com", "exp": int(time.time()) + 60}, other, algorithm="RS256")
    _assert_401(_get(token), "authentication_failed")


@pytest.mark.parametrize("sub", ["", "x" * 256, 42, None])
def test_subject_must_be_a_short_string(jwt_keys, sub) -> None:
    claims = {"iss": "https://api.scimigo.com", "exp": int(time.time()) + 60}
    if sub is not None:
        claims["sub"] = sub
    token = jwt.encode(claims, jwt_keys[0], algorithm="RS256")
    _assert_401(_get(token), "authentication_failed")


def test_subject_of_255_characters_is_accepted(make_token) -> None:
    assert _get(make_token("x" * 255)).status_code == 200


def test_audience_is_checked_when_configured(make_token, settings) -> None:
    settings.CO_JWT_AUDIENCE = "co"
    assert _get(make_token(aud="co")).status_code == 200
    _assert_401(_get(make_token(aud="someone-else")), "authentication_failed")
    _assert_401(_get(make_token()), "authentication_failed")


def test_audience_is_ignored_when_not_configured(make_token) -> None:
    assert _get(make_token(aud="anything")).status_code == 200


def test_no_verification_key_configured_rejects_every_token(make_token, settings) -> None:
    settings.CO_JWT_PUBLIC_KEY = None
    _assert_401(_get(make_token()), "authentication_failed")


def test_public_key_from_a_file_path(make_token, settings, jwt_keys, tmp_path) -> None:
    path = tmp_path / "public.pem"
    path.write_text(jwt_keys[1])
    settings.CO_JWT_PUBLIC_KEY = str(path)
    assert _get(make_token()).status_code == 200


def test_a_token_verified_before_is_refused_once_it_expires(make_token, settings, monkeypatch) -> None:
    """Verified tokens are remembered; their expiry is checked again on every request."""
    from co_project import authentication

    settings.CO_JWT_LEEWAY_SECONDS = 30
    token = make_token(ttl=60)
    assert _get(token).status_code == 200
    assert _get(token).status_code == 200  # the remembered verification
    later = time.time() + 60 + 30
    monkeypatch.setattr(authentication.time, "time", lambda: later)
    response = _get(token)
    _assert_401(response, "authentication_failed")
    assert response.json()["error"]["message"] == "Token has expired."


def test_a_remembered_token_is_checked_against_the_current_key(make_token, settings) -> None:
    token = make_token()
    assert _get(token).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    settings.CO_JWT_PUBLIC_KEY = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    _assert_401(_get(token), "authentication_failed")


def test_a_rotated_key_file_is_read_again(make_token, settings, jwt_keys, tmp_path) -> None:
    path = tmp_path / "public.pem"
    path.write_text(jwt_keys[1])
    settings.CO_JWT_PUBLIC_KEY = str(path)
    token = make_token()
    assert _get(token).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    path.write_text(other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    _assert_401(_get(token), "authentication_failed")
