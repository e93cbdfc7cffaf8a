"""Print a learner token signed with the development private key (only the token, on stdout).

It refuses when there is no private key — as in production, where tokens come only from the
platform's main API.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from co_project.authentication import MAX_LEARNER_ID_LENGTH, SigningKeyMissing, dev_learner_token_issue


class Command(BaseCommand):
    help = "Print an RS256 learner JWT signed with the development key: issue_token --sub NAME [--ttl SECONDS]."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sub", required=True, help="Learner id (the token's sub claim).")
        parser.add_argument("--ttl", type=int, default=3600, help="Lifetime in seconds (default 3600).")

    def handle(self, *args: object, sub: str, ttl: int, **options: object) -> None:
        if not sub or len(sub) > MAX_LEARNER_ID_LENGTH:
            raise CommandError(f"--sub must be 1 to {MAX_LEARNER_ID_LENGTH} characters.")
        if ttl <= 0:
            raise CommandError("--ttl must be a positive number of seconds.")
        try:
            token = dev_learner_token_issue(sub=sub, ttl=ttl)
        except OSError as exc:
            raise CommandError(f"Cannot read the private key: {exc}") from exc
        except SigningKeyMissing:
            raise CommandError(
                "No private signing key: tokens are issued by the platform's main API. For local "
                "development run `make run` (it creates var/jwt-dev-private.pem) or set CO_JWT_PRIVATE_KEY."
            ) from None
        self.stdout.write(token)
