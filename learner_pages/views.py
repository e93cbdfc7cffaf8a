"""The learner pages: server-rendered shells whose scripts read and write everything through the
public `/v1/` API with the learner's Bearer token, plus the development sign-in (a form that
hands a development token to the pages the way the platform's login does in production)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csp import csp_override
from django.views.generic import TemplateView

from co_project.authentication import MAX_LEARNER_ID_LENGTH, SigningKeyMissing, dev_learner_token_issue
from learner_pages.csp import LEARNER_PAGES_POLICY

DEV_TOKEN_SECONDS = 24 * 3600


@method_decorator(csp_override(LEARNER_PAGES_POLICY), name="dispatch")
class LearnerPage(TemplateView):
    """A page shell; the URL's arguments (a slug) reach the page's script as data attributes."""

    page = ""

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        return {
            **super().get_context_data(**kwargs),
            "page": self.page,
            "development": settings.CO_ENV == "development",
            "platform_sign_in_url": settings.CO_LEARNER_SIGN_IN_URL,
        }


def _learner_page(path: str) -> str:
    """Where to go after signing in: a learner page of this site, never another site."""
    home = reverse("learner-home")
    return path if path.startswith(home) and "//" not in path and "\\" not in path else home


@method_decorator(csp_override(LEARNER_PAGES_POLICY), name="dispatch")
class DevSignInView(View):
    """Development only: pick a learner name, get a development token. Everywhere else the page
    explains the platform hand-off and a POST is refused, so no token is minted outside development."""

    template_name = "learner/sign_in.html"
    http_method_names = ["get", "post"]

    def _render(self, request: HttpRequest, *, status: int = 200, error: str = "", learner: str = "") -> HttpResponse:
        context = {
            "next": _learner_page(request.POST.get("next") or request.GET.get("next", "")),
            "page": "sign-in",
            "development": settings.CO_ENV == "development",
            "platform_sign_in_url": settings.CO_LEARNER_SIGN_IN_URL,
            "error": error,
            "learner": learner,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        if settings.CO_ENV != "development":
            return self._render(request, status=403, error="Development sign-in is off here: sign in through the platform.")
        learner = request.POST.get("learner", "").strip()
        if not learner or len(learner) > MAX_LEARNER_ID_LENGTH:
            return self._render(
                request, status=400, error=f"Enter a learner name of 1 to {MAX_LEARNER_ID_LENGTH} characters.", learner=learner
            )
        try:
            token = dev_learner_token_issue(sub=learner, ttl=DEV_TOKEN_SECONDS)
        except (SigningKeyMissing, OSError):
            return self._render(request, status=409, error="No development signing key: run `make run` once to create it.")
        # The same hand-off as production: the token travels in the fragment, which browsers
        # never send to a server, and the landing page moves it into sessionStorage.
        fragment = urlencode({"token": token, "next": _learner_page(request.POST.get("next", ""))})
        return HttpResponseRedirect(f"{reverse('learner-signed-in')}#{fragment}", status=303)
