from rest_framework.routers import SimpleRouter

from submissions.views import SubmissionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("submissions", SubmissionViewSet, basename="submission")

urlpatterns = router.urls
