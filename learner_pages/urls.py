from django.urls import path

from learner_pages.views import DevSignInView, LearnerPage


def _page(template: str, page: str) -> LearnerPage:
    return LearnerPage.as_view(template_name=f"learner/{template}.html", page=page)


urlpatterns = [
    path("", _page("home", "home"), name="learner-home"),
    path("sign-in", DevSignInView.as_view(), name="learner-sign-in"),
    path("signed-in", _page("signed_in", "signed-in"), name="learner-signed-in"),
    path("tracks/<slug:track>", _page("track", "track"), name="learner-track"),
    path("problems/<slug:problem>", _page("problem", "problem"), name="learner-problem"),
    path("study-path", _page("study_path", "study-path"), name="learner-study-path"),
    path("progress", _page("progress", "progress"), name="learner-progress"),
    path("reviews", _page("reviews", "reviews"), name="learner-reviews"),
]
