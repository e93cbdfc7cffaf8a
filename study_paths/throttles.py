"""The export's own rate: each export reads the learner's whole history, so it has a budget of
its own (`CO_EXPORT_RATE`) on top of the general per-learner rate."""

from django.conf import settings

from co_project.throttles import LearnerRateThrottle


class StudyTaskExportThrottle(LearnerRateThrottle):
    """Exports per learner (`CO_EXPORT_RATE`, default 5/hour)."""

    scope = "study-task-export"

    def rate(self) -> str:
        return settings.CO_EXPORT_RATE
