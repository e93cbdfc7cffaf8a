from django.apps import AppConfig


class CoProjectConfig(AppConfig):
    name = "co_project"
    verbose_name = "Curriculum Orchestrator"

    def ready(self) -> None:
        # Registers the OpenAPI description of the learner JWT scheme.
        from co_project import authentication  # noqa: F401
