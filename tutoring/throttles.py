"""The tutor's own rate: hints per learner, shared by every front door that asks for one
(session hints and study-task hints count against one budget)."""

from django.conf import settings

from co_project.throttles import LearnerRateThrottle


class TutorHintThrottle(LearnerRateThrottle):
    """Hint requests per learner (`CO_TUTOR_HINT_RATE`), on top of the general rate."""

    scope = "tutor-hint"

    def rate(self) -> str:
        return settings.CO_TUTOR_HINT_RATE
