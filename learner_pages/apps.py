from django.apps import AppConfig


class LearnerPagesConfig(AppConfig):
    name = "learner_pages"
    verbose_name = "Learner pages"
