from django.urls import path
from rest_framework.routers import SimpleRouter

from study_paths.export_views import StudyTaskExportView
from study_paths.views import (
    LearnerDashboardView,
    StudyPathProgressView,
    StudyPathsViewSet,
    StudyTaskHintView,
    StudyTaskSubmitView,
    StudyTasksViewSet,
)

router = SimpleRouter(trailing_slash=False)
# The read/list/change viewsets extend the create and next ones, so each prefix has one viewset.
router.register("study-paths", StudyPathsViewSet, basename="study-path")
router.register("study-tasks", StudyTasksViewSet, basename="study-task")

urlpatterns = [
    # Before the router's detail routes, which would take `dashboard` and `export` for ids.
    path("study-paths/dashboard", LearnerDashboardView.as_view(), name="study-path-dashboard"),
    path("study-paths/<str:path_id>/progress", StudyPathProgressView.as_view(), name="study-path-progress"),
    path("study-tasks/export", StudyTaskExportView.as_view(), name="study-task-export"),
    *router.urls,
    path("study-tasks/<str:task_id>/submit", StudyTaskSubmitView.as_view(), name="study-task-submit"),
    path("study-tasks/<str:task_id>/hint", StudyTaskHintView.as_view(), name="study-task-hint"),
]
