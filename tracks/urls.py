from rest_framework.routers import SimpleRouter

from tracks.views import ProblemViewSet, TrackViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tracks", TrackViewSet, basename="track")
router.register("problems", ProblemViewSet, basename="problem")

urlpatterns = router.urls
