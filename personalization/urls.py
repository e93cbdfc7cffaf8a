from django.urls import path

from personalization.views import MasteryView, RecommendationNextView, ReviewQueueView

urlpatterns = [
    path("mastery", MasteryView.as_view(), name="mastery"),
    path("review-queue", ReviewQueueView.as_view(), name="review-queue"),
    path("recommendations/next", RecommendationNextView.as_view(), name="recommendations-next"),
]
