"""Submissions and their grading: the one evaluation pipeline, evaluators, runners, Celery task."""
