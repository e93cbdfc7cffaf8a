"""Create the development RS256 key pair under var/ (what `make run` does). Never in production."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def write_key_pair(private_path: Path, public_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: never readable by others, not even briefly.
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


class Command(BaseCommand):
    help = "Create var/jwt-dev-private.pem and var/jwt-dev-public.pem for local development (kept if present)."

    def handle(self, *args: object, **options: object) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("Refusing to create development keys with CO_ENV=production.")
        private_path = settings.VAR_DIR / "jwt-dev-private.pem"
        public_path = settings.VAR_DIR / "jwt-dev-public.pem"
        if private_path.is_file() and public_path.is_file():
            self.stdout.write(f"Development keys already exist in {settings.VAR_DIR}.")
            return
        write_key_pair(private_path, public_path)
        self.stdout.write(f"Created development keys in {settings.VAR_DIR}.")
