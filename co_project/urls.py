"""Root URLs: `/v1/` (public API), `/learn/` (learner pages), `/health`, `/metrics` (Prometheus),
`/v1/schema` + `/docs` (OpenAPI), `/admin`."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from co_project.health import HealthView
from co_project.metrics_endpoint import metrics_view

admin.site.site_header = "Curriculum Orchestrator"
admin.site.site_title = "CO admin"
admin.site.index_title = "Curriculum authoring"

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("v1/schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs", SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]), name="docs"
    ),
    path("v1/", include("tracks.urls")),
    path("v1/", include("submissions.urls")),
    path("v1/", include("sessions_app.urls")),
    path("v1/", include("study_paths.urls")),
    path("v1/", include("personalization.urls")),
    path("v1/", include("tutoring.urls")),
    path("learn/", include("learner_pages.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "co_project.errors.handler400"
handler403 = "co_project.errors.handler403"
handler404 = "co_project.errors.handler404"
handler500 = "co_project.errors.handler500"
