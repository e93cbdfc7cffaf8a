"""The Content-Security-Policy of the learner pages (Django's own CSP middleware applies it).

Scripts come only from our own static files: no inline script, no eval, no CDN. Styles allow
inline style attributes because the editor positions its cursor and gutters with them; no style
can run code. Data comes only from this origin's `/v1/` API (fetch and the tutor's EventSource).
"""

from __future__ import annotations

from django.utils.csp import CSP

LEARNER_PAGES_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
