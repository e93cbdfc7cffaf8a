from django.apps import AppConfig


class StudyPathsConfig(AppConfig):
    name = "study_paths"
    verbose_name = "Study paths"
