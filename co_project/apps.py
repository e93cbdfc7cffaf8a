from django.apps import AppConfig


class CoProjectConfig(AppConfig):
    name = "co_project"
    verbose_name = "Curriculum Orchestrator"

    def ready(self) -> None:
        # Registers the OpenAPI description of the learner JWT scheme and the system checks.
        from co_project import authentication, checks  # noqa: F401
        from co_project.access_log import access_log_redaction_install

        # Here, because every serving process (uvicorn of `make run`, gunicorn's uvicorn workers)
        # starts Django before it serves a request.
        access_log_redaction_install()
