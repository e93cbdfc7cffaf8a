"""Grading, the leaf (DESIGN §1): the sandbox, the evaluators (coding, math, rubric), output
comparison and verdicts. It takes plain data (code, problems as `grading.problems` values,
limits) and returns plain results; it imports no app of the project and no Django model, and
reads only `django.conf.settings` for its configuration."""
