from django.urls import path

from tutoring.views import TutorMessageView, tutor_stream

urlpatterns = [
    path("tutor/messages", TutorMessageView.as_view(), name="tutor-messages"),
    path("tutor/stream", tutor_stream, name="tutor-stream"),
]
