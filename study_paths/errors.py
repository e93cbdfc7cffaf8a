"""Study-path errors with stable codes (tests assert the code, never the text)."""

from co_project.errors import Conflict, InvalidInput


class StudyPathConfigInvalid(InvalidInput):
    code = "study_path_config_invalid"
    default_message = "The study path config is not valid."


class ActiveStudyPathExists(Conflict):
    code = "study_path_active_exists"
    default_message = "You already have an active study path on this track; pause or archive it first."


class StudyPathNotActive(Conflict):
    code = "study_path_not_active"
    default_message = "This study path is not active."


class StudyTaskFinished(Conflict):
    code = "study_task_finished"
    default_message = "This study task is already finished."


# --- task attempts: submit and hint


class StudyTaskAwaitingVerdict(Conflict):
    """The same code as PATCH /v1/study-tasks/{id} answers for a task being graded."""

    code = "study_task_awaiting_verdict"
    default_message = "This study task has a submission being graded; wait for its verdict (GET /v1/submissions/{id})."
