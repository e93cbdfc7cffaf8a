from django.urls import path
from rest_framework.routers import SimpleRouter

from study_paths.export_views import StudyTaskExportView
from study_paths.views import StudyPathsViewSet, StudyTaskHintView, StudyTaskSubmitView, StudyTasksViewSet

router = SimpleRouter(trailing_slash=False)
# The read/list/change viewsets extend the create and next ones, so each prefix has one viewset.
router.register("study-paths", StudyPathsViewSet, basename="study-path")
router.register("study-tasks", StudyTasksViewSet, basename="study-task")

urlpatterns = [
    # Before the router: its `study-tasks/{id}` detail route would take `export` as an id.
    path("study-tasks/export", StudyTaskExportView.as_view(), name="study-task-export"),
    *router.urls,
    path("study-tasks/<str:task_id>/submit", StudyTaskSubmitView.as_view(), name="study-task-submit"),
    path("study-tasks/<str:task_id>/hint", StudyTaskHintView.as_view(), name="study-task-hint"),
]
