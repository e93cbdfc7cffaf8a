from django.urls import path
from rest_framework.routers import SimpleRouter

from submissions.views import SubmissionViewSet, TrackResultsView

router = SimpleRouter(trailing_slash=False)
router.register("submissions", SubmissionViewSet, basename="submission")

urlpatterns = [
    # Under the track it is about; read from the submissions, which this app owns.
    path("tracks/<str:reference>/my-results", TrackResultsView.as_view(), name="track-my-results"),
    *router.urls,
]
