"""WSGI entry point, for tooling that wants one; serve the ASGI app in production."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

application = get_wsgi_application()
