from rest_framework.routers import SimpleRouter

from study_paths.views import StudyPathViewSet, StudyTaskViewSet

router = SimpleRouter(trailing_slash=False)
router.register("study-paths", StudyPathViewSet, basename="study-path")
router.register("study-tasks", StudyTaskViewSet, basename="study-task")

urlpatterns = router.urls
