"""System checks for configuration that is allowed but risky (`manage.py check [--deploy]`, and
logged when the web server starts: gunicorn and uvicorn run no checks of their own)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

logger = logging.getLogger("co.checks")

JWT_AUDIENCE_MISSING = "co.W001"
METRICS_DIR_MISSING = "co.W002"


@register(Tags.security)
def jwt_audience_check(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Without an audience, every token the issuer signed is accepted, including one it issued
    to another service for its own use: whoever holds such a token (that service, its logs, a
    leak there) can act here as that learner."""
    if not settings.IS_PRODUCTION or settings.CO_JWT_AUDIENCE:
        return []
    return [
        CheckWarning(
            "CO_JWT_AUDIENCE is not set: learner tokens are accepted whatever audience (`aud`) they "
            "were issued for, so a token the issuer signed for another service can be replayed "
            "against this API.",
            hint="Set CO_JWT_AUDIENCE to the audience the issuer puts in tokens meant for this service.",
            id=JWT_AUDIENCE_MISSING,
        )
    ]


@register()
def metrics_directory_check(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Without the multiprocess directory each process keeps its own values: a scrape shows the
    one gunicorn worker that answered it, and nothing of the Celery worker's."""
    from co_project.metrics import METRICS_DIR

    if not settings.IS_PRODUCTION or settings.CO_METRICS_TOKEN is None or METRICS_DIR:
        return []
    return [
        CheckWarning(
            "/metrics is on (CO_METRICS_TOKEN) but CO_METRICS_DIR is not set: a scrape shows only the process that answered it.",
            hint="Set CO_METRICS_DIR to a directory shared by the web and worker processes of this host.",
            id=METRICS_DIR_MISSING,
        )
    ]


def startup_checks_log() -> None:
    """Log this module's warnings once when a serving process starts."""
    for message in [*jwt_audience_check(), *metrics_directory_check()]:
        logger.warning("%s: %s %s", message.id, message.msg, message.hint or "", extra={"check": message.id})
