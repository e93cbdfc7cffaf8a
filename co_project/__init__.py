"""Curriculum Orchestrator project package: settings, root URLs, Celery app, cross-cutting concerns."""

from co_project.celery import app as celery_app

__all__ = ("celery_app",)
