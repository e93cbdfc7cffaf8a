"""ASGI entry point (uvicorn in development, gunicorn + uvicorn workers in production)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

application = get_asgi_application()
