"""WSGI entry point, for tooling that wants one (`manage.py runserver`); serve the ASGI app in production."""

import os

import django
from django.core.handlers.wsgi import WSGIHandler

from co_project.tracing import tracing_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "co_project.settings")

django.setup(set_prefix=False)
tracing_install("co-web", web=True)  # before the handler loads the middleware chain
application = WSGIHandler()
