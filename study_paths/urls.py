from django.urls import path
from rest_framework.routers import SimpleRouter

from study_paths.views import StudyPathViewSet, StudyTaskHintView, StudyTaskSubmitView, StudyTaskViewSet

router = SimpleRouter(trailing_slash=False)
router.register("study-paths", StudyPathViewSet, basename="study-path")
router.register("study-tasks", StudyTaskViewSet, basename="study-task")

urlpatterns = [
    *router.urls,
    path("study-tasks/<str:task_id>/submit", StudyTaskSubmitView.as_view(), name="study-task-submit"),
    path("study-tasks/<str:task_id>/hint", StudyTaskHintView.as_view(), name="study-task-hint"),
]
