from rest_framework.routers import SimpleRouter

from study_paths.views import StudyPathsViewSet, StudyTasksViewSet

router = SimpleRouter(trailing_slash=False)
# The read/list/change viewsets extend the create and next ones, so each prefix has one viewset.
router.register("study-paths", StudyPathsViewSet, basename="study-path")
router.register("study-tasks", StudyTasksViewSet, basename="study-task")

urlpatterns = router.urls
