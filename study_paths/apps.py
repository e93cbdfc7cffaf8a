from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class StudyPathsConfig(AppConfig):
    name = "study_paths"
    verbose_name = "Study paths"

    def ready(self) -> None:
        checks.register(check_study_path_algorithm)
        from study_paths.attempts import StudyTaskHintOrigin, StudyTaskOrigin
        from submissions.origins import origin_register
        from tutoring.origins import hint_origin_register

        origin_register(StudyTaskOrigin())
        hint_origin_register(StudyTaskHintOrigin())
        from co_project.metrics import scrape_hook_register
        from study_paths.monitoring import learning_gauges_from_cache

        scrape_hook_register(learning_gauges_from_cache)


def check_study_path_algorithm(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """An unknown CO_STUDY_PATH_ALGORITHM fails `manage.py check` and startup, not a learner's request."""
    from study_paths.planner import PLANNERS

    if settings.CO_STUDY_PATH_ALGORITHM in PLANNERS:
        return []
    return [
        checks.Error(
            f"CO_STUDY_PATH_ALGORITHM={settings.CO_STUDY_PATH_ALGORITHM!r} is not a study-path planner version.",
            hint=f"Known versions: {', '.join(sorted(PLANNERS))}.",
            id="study_paths.E001",
        )
    ]
