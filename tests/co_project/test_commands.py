"""The operator commands `issue_token` and `create_dev_keys`."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

# --- issue_token ------------------------------------------------------------------------------


def _issue(*args: str) -> str:
    buffer = io.StringIO()
    call_command("issue_token", *args, stdout=buffer)
    return buffer.getvalue()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.django_db
def test_issue_token_prints_one_jwt_the_api_accepts(settings) -> None:
    output = _issue("--sub", "bob")

    assert output.endswith("\n")
    lines = output.splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert len(token.split(".")) == 3
    assert all(part for part in token.split("."))

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/v1/tracks")
    assert response.status_code == 200, response.content
    assert response.json() == {"items": [], "next": None}


def test_issue_token_claims(settings) -> None:
    token = _issue("--sub", "bob").strip()

    claims = _claims(token)
    assert set(claims) == {"sub", "iss", "iat", "exp"}
    assert claims["sub"] == "bob"
    assert claims["iss"] == settings.CO_JWT_ISSUER
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_issue_token_is_signed_with_the_configured_private_key(settings, jwt_keys) -> None:
    token = _issue("--sub", "bob").strip()

    claims = jwt.decode(token, jwt_keys[1], algorithms=["RS256"], issuer=settings.CO_JWT_ISSUER)
    assert claims["sub"] == "bob"


def test_issue_token_ttl(settings) -> None:
    claims = _claims(_issue("--sub", "carol", "--ttl", "60").strip())

    assert claims["sub"] == "carol"
    assert claims["exp"] - claims["iat"] == 60


def test_issue_token_includes_the_audience_when_configured(settings) -> None:
    settings.CO_JWT_AUDIENCE = "co-api"

    claims = _claims(_issue("--sub", "bob").strip())

    assert claims["aud"] == "co-api"


def test_issue_token_accepts_a_255_character_subject(settings) -> None:
    subject = "s" * 255

    assert _claims(_issue("--sub", subject).strip())["sub"] == subject


@pytest.mark.parametrize("private_key", [None, "/nonexistent/jwt-private.pem"])
def test_issue_token_refuses_without_a_private_key(settings, private_key: str | None) -> None:
    settings.CO_JWT_PRIVATE_KEY = private_key
    buffer = io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("issue_token", "--sub", "bob", stdout=buffer)

    message = str(caught.value)
    assert "private signing key" in message
    assert "CO_JWT_PRIVATE_KEY" in message
    assert buffer.getvalue() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--sub", "x" * 256), "--sub must be 1 to 255 characters.", id="subject-too-long"),
        pytest.param(("--sub", ""), "--sub must be 1 to 255 characters.", id="subject-empty"),
        pytest.param(("--sub", "bob", "--ttl", "0"), "--ttl must be a positive number of seconds.", id="ttl-zero"),
        pytest.param(("--sub", "bob", "--ttl", "-5"), "--ttl must be a positive number of seconds.", id="ttl-negative"),
    ],
)
def test_issue_token_rejects_bad_arguments(args: tuple[str, ...], message: str) -> None:
    buffer = io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("issue_token", *args, stdout=buffer)

    assert str(caught.value) == message
    assert buffer.getvalue() == ""


def test_issue_token_requires_sub() -> None:
    with pytest.raises(CommandError) as caught:
        call_command("issue_token", stdout=io.StringIO())

    assert "--sub" in str(caught.value)


# --- create_dev_keys ----------------------------------------------------------------------------


def _create_dev_keys() -> str:
    buffer = io.StringIO()
    call_command("create_dev_keys", stdout=buffer)
    return buffer.getvalue()


def test_create_dev_keys_writes_a_key_pair(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"

    output = _create_dev_keys()

    private_path = tmp_path / "var" / "jwt-dev-private.pem"
    public_path = tmp_path / "var" / "jwt-dev-public.pem"
    assert sorted(path.name for path in (tmp_path / "var").iterdir()) == ["jwt-dev-private.pem", "jwt-dev-public.pem"]
    assert output == f"Created development keys in {tmp_path / 'var'}.\n"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")

    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    public_key = serialization.load_pem_public_key(public_path.read_bytes())
    assert private_key.public_key().public_numbers() == public_key.public_numbers()
    assert public_key.key_size == 2048


def test_create_dev_keys_keeps_existing_keys(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    _create_dev_keys()
    private_before = (tmp_path / "jwt-dev-private.pem").read_bytes()
    public_before = (tmp_path / "jwt-dev-public.pem").read_bytes()

    output = _create_dev_keys()

    assert output == f"Development keys already exist in {tmp_path}.\n"
    assert (tmp_path / "jwt-dev-private.pem").read_bytes() == private_before
    assert (tmp_path / "jwt-dev-public.pem").read_bytes() == public_before


def test_create_dev_keys_tokens_verify_with_the_written_public_key(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    _create_dev_keys()
    settings.CO_JWT_PRIVATE_KEY = str(tmp_path / "jwt-dev-private.pem")

    token = _issue("--sub", "dave").strip()

    claims = jwt.decode(token, (tmp_path / "jwt-dev-public.pem").read_text(), algorithms=["RS256"], issuer=settings.CO_JWT_ISSUER)
    assert claims["sub"] == "dave"


def test_create_dev_keys_refuses_in_production(settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.IS_PRODUCTION = True

    with pytest.raises(CommandError) as caught:
        _create_dev_keys()

    assert str(caught.value) == "Refusing to create development keys with CO_ENV=production."
    assert not (tmp_path / "var").exists()
